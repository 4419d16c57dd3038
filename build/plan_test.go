package build

import (
	"reflect"
	"strings"
	"testing"
)

func newTestPlan(t *testing.T, src string) *plan {
	t.Helper()
	p, err := newPlan(parse(t, src))
	if err != nil {
		t.Fatalf("newPlan: %v", err)
	}
	return p
}

func stageIndexes(ss []*stage) []int {
	var out []int
	for _, s := range ss {
		out = append(out, s.index)
	}
	return out
}

func TestStageSelection(t *testing.T) {
	p := newTestPlan(t, `ARG BASE=busybox
ARG FROMSTAGE=deps
FROM $BASE AS deps
RUN echo deps
FROM busybox AS unused
RUN echo unused
FROM deps AS build
COPY --from=tools /x /y
FROM busybox AS tools
FROM scratch AS copier
COPY --from=0 /a /a
COPY --from=${FROMSTAGE} /b /b
FROM build
COPY --from=copier / /
`)
	meta := &expander{escape: '\\', lookup: func(n string) (string, bool) {
		v, ok := map[string]string{"BASE": "busybox", "FROMSTAGE": "deps"}[n]
		return v, ok
	}}
	for _, tc := range []struct {
		target string
		want   []int
	}{
		{"", []int{0, 2, 4, 5}}, // "tools" is defined after build: an image there
		{"build", []int{0, 2}},
		{"unused", []int{1}},
		{"copier", []int{0, 4}},
		{"TOOLS", []int{3}}, // names are case-insensitive
		{"3", nil},          // --target takes names only
	} {
		target, err := p.target(tc.target)
		if tc.want == nil {
			if err == nil {
				t.Errorf("target %q found", tc.target)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		got, err := p.needed(target, meta)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(stageIndexes(got), tc.want) {
			t.Errorf("target %q: stages %v, want %v", tc.target, stageIndexes(got), tc.want)
		}
	}
	if _, err := p.target("nope"); err == nil || !strings.Contains(err.Error(), `"nope" could not be found`) {
		t.Errorf("missing target: %v", err)
	}
}

func TestPlanErrors(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"RUN x\nFROM a\n", "line 1: RUN comes before the first FROM"},
		{"ARG A\n", "no FROM"},
		{"FROM a AS x\nFROM b AS x\n", `line 2: stage name "x" is already used on line 1`},
		{"FROM a AS 1x\n", "invalid stage name"},
		{"FROM a b\n", "expected FROM"},
		{"FROM a\nCOPY --from=0 /a /b\n", "only an earlier stage"},
		{"FROM a\nRUN --mount=type=cache,target=/x true\n", "--mount is a BuildKit feature"},
		{"FROM a\nCOPY --link a b\n", "--link is a BuildKit feature"},
		{"FROM a\nCOPY --bogus=1 a b\n", "unknown flag --bogus"},
		{"FROM a\nCOPY --chmod=9 a b\n", "not an octal mode"},
		{"FROM a\nCOPY a\n", "at least one source and a destination"},
		{"FROM a\nSHELL sh -c\n", "JSON array"},
		{"FROM a\nENV\n", "at least one KEY=VALUE"},
		{"FROM a\nENV A\n", "has no value"},
		{"FROM a\nLABEL =x\n", "is not KEY=VALUE"},
		{"FROM a\nARG 1A\n", "invalid name"},
		{"FROM a\nUSER a b\n", "exactly one"},
		{"FROM a\nHEALTHCHECK --interval=1ns CMD true\n", "less than 1ms"},
		{"FROM a\nHEALTHCHECK --retries=-1 CMD true\n", "--retries"},
		{"FROM a\nHEALTHCHECK ls\n", "NONE or CMD"},
		{"FROM a\nONBUILD FROM b\n", "not allowed as an ONBUILD trigger"},
		{"FROM a\nONBUILD ONBUILD RUN x\n", "not allowed"},
		{"FROM a\nONBUILD NOPE x\n", `unknown instruction "NOPE"`},
	} {
		_, err := newPlan(parse(t, tc.src))
		if tc.want == "" {
			if err != nil {
				t.Errorf("%q: %v", tc.src, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.src, err, tc.want)
		}
	}
}

func TestArgUsedBeforeDefinition(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{"FROM a\nWORKDIR /app/$V\nARG V=1\n", "line 2: $V is used before its ARG (line 3)"},
		{"FROM a\nRUN echo ${V:-x}\nARG V\n", "line 2: $V is used before its ARG (line 3)"},
		{"FROM a\nCOPY <<EOF /x\n$V\nEOF\nARG V\n", "line 2: $V is used before"},
		{"FROM a\nARG A=$B B=1\n", "$B is used before"},
		{"FROM a\nARG T\nFROM b:$T\n", "FROM uses $T, declared by the ARG on line 2 inside a stage"},
		// fine: declared first, ENV first, quoted from the shell, exec form, another stage
		{"FROM a\nARG V=1\nRUN echo $V\n", ""},
		{"FROM a\nENV V=1\nRUN echo $V\nARG V\n", ""},
		{"FROM a\nRUN echo '$V'\nARG V\n", ""},
		{"FROM a\nRUN [\"echo\", \"$V\"]\nARG V\n", ""},
		{"FROM a\nARG V\nFROM b\nRUN echo $V\n", ""},
		{"ARG T=1\nFROM b:$T\nARG T\n", ""},
	} {
		_, err := newPlan(parse(t, tc.src))
		if tc.want == "" {
			if err != nil {
				t.Errorf("%q: %v", tc.src, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.src, err, tc.want)
		}
	}
}

func TestExpandPortsAndSignals(t *testing.T) {
	got, err := expandPorts("8000-8002/udp")
	if err != nil || !reflect.DeepEqual(got, []string{"8000/udp", "8001/udp", "8002/udp"}) {
		t.Fatalf("range: %v %v", got, err)
	}
	if got, _ := expandPorts("80"); !reflect.DeepEqual(got, []string{"80/tcp"}) {
		t.Fatalf("80: %v", got)
	}
	for _, bad := range []string{"0", "x", "70000", "80/icmp", "9-1"} {
		if _, err := expandPorts(bad); err == nil {
			t.Errorf("port %q accepted", bad)
		}
	}
	for _, ok := range []string{"SIGTERM", "term", "9", "SIGRTMIN+3", "SIGRTMAX"} {
		if err := checkSignal(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"SIGNOPE", "0", "65", "RTMIN+99"} {
		if err := checkSignal(bad); err == nil {
			t.Errorf("signal %q accepted", bad)
		}
	}
}
