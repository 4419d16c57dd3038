package build

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func parse(t *testing.T, src string) *Dockerfile {
	t.Helper()
	df, err := Parse(strings.NewReader(src))
	if err != nil {
		t.Fatalf("Parse: %v\n%s", err, src)
	}
	return df
}

func TestParseInstructionsAndContinuations(t *testing.T) {
	df := parse(t, "# a comment\n"+
		"\n"+
		"from busybox AS Build\n"+
		"RUN echo a \\\n"+
		"  # comment inside\n"+
		"\n"+
		"    && echo b\n"+
		"COPY --chown=1:2 --from=x a b /dst/\n"+
		"\tCMD [\"sh\"]\r\n"+
		"ENV A=1 \\   \n  B=2\n")
	type row struct {
		line, end int
		cmd       string
		flags     []string
		args      string
	}
	var got []row
	for _, ins := range df.Instructions {
		got = append(got, row{ins.Line, ins.EndLine, ins.Cmd, ins.Flags, ins.Args})
	}
	want := []row{
		{3, 3, "FROM", nil, "busybox AS Build"},
		{4, 7, "RUN", nil, "echo a     && echo b"},
		{8, 8, "COPY", []string{"--chown=1:2", "--from=x"}, "a b /dst/"},
		{9, 9, "CMD", nil, `["sh"]`},
		{10, 11, "ENV", nil, "A=1   B=2"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}
	if df.Instructions[1].Original != "RUN echo a     && echo b" {
		t.Errorf("Original = %q", df.Instructions[1].Original)
	}
}

func TestParseDirectives(t *testing.T) {
	df := parse(t, "# syntax=docker/dockerfile:1\n#escape=`\nFROM busybox\nRUN echo a `\n b\\c\n")
	if df.Escape != '`' || df.Syntax != "docker/dockerfile:1" {
		t.Fatalf("escape %q syntax %q", df.Escape, df.Syntax)
	}
	if got := df.Instructions[1].Args; got != `echo a  b\c` {
		t.Fatalf("RUN args %q", got)
	}
	// after a comment or an instruction, a directive is a comment
	df = parse(t, "# hello\n# escape=`\nFROM busybox\nRUN a \\\n b\n")
	if df.Escape != '\\' || df.Instructions[1].Args != "a  b" {
		t.Fatalf("late directive acted on: %q %q", df.Escape, df.Instructions[1].Args)
	}
	for _, bad := range []string{"# escape=x\nFROM a\n", "# escape=\\\n# escape=`\nFROM a\n"} {
		if _, err := Parse(strings.NewReader(bad)); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestParseErrorsNameTheLine(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"FROM busybox\n\nFOO bar\n", `line 3: unknown instruction "FOO"`},
		{"FROM busybox\nRUN <<EOF\necho\n", `line 2: here-document "EOF" is not terminated`},
		{"", "no instructions"},
		{"# only a comment\n", "no instructions"},
	} {
		_, err := Parse(strings.NewReader(tc.src))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.src, err, tc.want)
		}
	}
	_, err := Parse(strings.NewReader("FROM busybox\nNOPE\n"))
	var le *LineError
	if !errors.As(err, &le) || le.Line != 2 {
		t.Fatalf("error %v is not a LineError for line 2", err)
	}
}

func TestParseTooLarge(t *testing.T) {
	big := "FROM busybox\n" + strings.Repeat("# padding padding padding\n", MaxDockerfileSize/20)
	_, err := Parse(strings.NewReader(big))
	if err == nil || !strings.Contains(err.Error(), "10 MiB") {
		t.Fatalf("%d bytes: error %v", len(big), err)
	}
	// just under the limit is fine
	ok := "FROM busybox\n" + strings.Repeat("#", MaxDockerfileSize-20) + "\n"
	if _, err := Parse(strings.NewReader(ok)); err != nil {
		t.Fatal(err)
	}
}

func TestParseHeredocs(t *testing.T) {
	df := parse(t, "FROM busybox\n"+
		"RUN <<EOF\n"+
		"echo one\n"+
		"echo two\n"+
		"EOF\n"+
		"COPY <<a.txt <<'b.txt' /dst/\n"+
		"A $X\n"+
		"a.txt\n"+
		"B $X\n"+
		"b.txt\n"+
		"RUN <<-END cat > /f\n"+
		"\t\tindented\n"+
		"\tEND\n"+
		"RUN echo '<<NOT' \"<<NOPE\" 2<<<x\n")
	run := df.Instructions[1]
	if len(run.Heredocs) != 1 || run.Heredocs[0] != (Heredoc{Name: "EOF", Content: "echo one\necho two\n", Expand: true}) {
		t.Fatalf("RUN heredocs %+v", run.Heredocs)
	}
	if run.EndLine != 5 {
		t.Errorf("EndLine %d", run.EndLine)
	}
	cp := df.Instructions[2]
	want := []Heredoc{{Name: "a.txt", Content: "A $X\n", Expand: true}, {Name: "b.txt", Content: "B $X\n"}}
	if !reflect.DeepEqual(cp.Heredocs, want) {
		t.Fatalf("COPY heredocs %+v", cp.Heredocs)
	}
	chomp := df.Instructions[3].Heredocs
	if len(chomp) != 1 || chomp[0].Content != "indented\n" || !chomp[0].Chomp {
		t.Fatalf("<<- heredoc %+v", chomp)
	}
	if h := df.Instructions[4].Heredocs; len(h) != 0 {
		t.Fatalf("quoted << taken as heredocs: %+v", h)
	}
}
