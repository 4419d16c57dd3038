package build

import (
	"reflect"
	"testing"
)

func testExpander(vars map[string]string) *expander {
	return &expander{escape: '\\', lookup: func(n string) (string, bool) {
		v, ok := vars[n]
		return v, ok
	}}
}

func TestExpanderWord(t *testing.T) {
	e := testExpander(map[string]string{"HOME": "/root", "EMPTY": "", "SP": "a  b"})
	for _, tc := range []struct{ in, want string }{
		{"plain", "plain"},
		{"$HOME/x", "/root/x"},
		{"${HOME}x", "/rootx"},
		{"$UNSET-$HOME", "-/root"},
		{"${UNSET:-dflt}", "dflt"},
		{"${EMPTY:-dflt}", "dflt"},
		{"${EMPTY-dflt}", ""},
		{"${UNSET-dflt}", "dflt"},
		{"${HOME:+alt}", "alt"},
		{"${EMPTY:+alt}", ""},
		{"${EMPTY+alt}", "alt"},
		{"${UNSET:+alt}", ""},
		{"${UNSET:-${HOME:-no}}", "/root"},
		{"${UNSET:-$HOME}", "/root"},
		{"${HOME:?must be set}", "/root"},
		{`'$HOME'`, "$HOME"},
		{`"$HOME"`, "/root"},
		{`"a b"c`, "a bc"},
		{`"$SP"`, "a  b"},
		{`\$HOME`, "$HOME"},
		{`"\$HOME"`, "$HOME"},
		{`"a\b"`, `a\b`},
		{`"a\"b"`, `a"b`},
		{`a\ b`, "a b"},
		{`end\`, "end"},
		{`'it''s'`, "its"},
		{"$", "$"},
		{"$.", "$."},
		{"$1x", "x"},
		{"${UNSET:-a b}", "a b"},
		{`${UNSET:-\}}`, "}"},
	} {
		got, err := e.word(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("word(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"${}", "${HOME", `"open`, "'open", "${UNSET:?}", "${UNSET?no}", "${HOME:=x}", "${HOME/a/b}", "${.}"} {
		if got, err := e.word(bad); err == nil {
			t.Errorf("word(%q) = %q, want an error", bad, got)
		}
	}
}

func TestExpanderBacktickEscape(t *testing.T) {
	e := &expander{escape: '`'}
	got, err := e.word("C:\\dir` x`$y")
	if err != nil || got != `C:\dir x$y` {
		t.Fatalf("got %q, %v", got, err)
	}
}

func TestExpanderText(t *testing.T) {
	e := testExpander(map[string]string{"X": "1"})
	got, err := e.text("say \"$X\" it's ${X:+set} \\$X \\n\n")
	if err != nil || got != "say \"1\" it's set $X \\n\n" {
		t.Fatalf("text = %q, %v", got, err)
	}
}

func TestRawWords(t *testing.T) {
	got := rawWords(`a "b c" 'd e'f g\ h  "i\"j"`, '\\')
	want := []string{"a", `"b c"`, `'d e'f`, `g\ h`, `"i\"j"`}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q want %q", got, want)
	}
}

func TestReferencedNames(t *testing.T) {
	got := referencedNames(`echo $A ${B:-x} '$C' \$D "$E" $$ ${F}`, '\\')
	want := []string{"A", "B", "E", "F"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q want %q", got, want)
	}
}
