package trace

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// A text line holds the process, the step, the function that made the
// call, the call, its result and why.
func TestTextLine(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "trace"))
	if err != nil {
		t.Fatal(err)
	}
	tr := New(f, "runtime")
	tr.Call("createCgroup", "mkdir", "/sys/fs/cgroup/x, 0755", "a new cgroup", unix.EEXIST)
	data, _ := os.ReadFile(f.Name())
	line := strings.TrimSpace(string(data))
	for _, want := range []string{
		fmt.Sprintf("[runtime %d] ", os.Getpid()), " createCgroup ", " trace.TestTextLine ",
		"mkdir /sys/fs/cgroup/x, 0755 = EEXIST (file exists)  # a new cgroup",
	} {
		if !strings.Contains(line, want) {
			t.Errorf("line %q lacks %q", line, want)
		}
	}
}

func TestResult(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{nil, "ok"},
		{unix.ENOENT, "ENOENT (no such file or directory)"},
		{fmt.Errorf("open x: %w", unix.EPERM), "EPERM (open x: operation not permitted)"},
		{errors.New("nft: syntax"), "error: nft: syntax"},
	} {
		if got := Result(c.err); got != c.want {
			t.Errorf("Result(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}

// writeVia is a tracing helper: events name its caller.
func writeVia(tr *Tracer) {
	tr.Helper()
	tr.Call("s", "write", "x", "", nil)
}

func TestHelperNamesItsCaller(t *testing.T) {
	tr := NewMemory("test")
	writeVia(tr)
	func() { tr.Call("s", "write", "y", "", nil) }()
	ev := tr.Events()
	if len(ev) != 2 || ev[0].Func != "trace.TestHelperNamesItsCaller" || ev[1].Func != "trace.TestHelperNamesItsCaller" {
		t.Errorf("events %+v: want both made by trace.TestHelperNamesItsCaller", ev)
	}
	if got := shortFunc("minidock/runtime.(*initProcess).pivotRoot.func1.2"); got != "runtime.initProcess.pivotRoot" {
		t.Errorf("shortFunc: %q", got)
	}
	if got := shortFunc("minidock/x.(*T).functional"); got != "x.T.functional" {
		t.Errorf("shortFunc keeps a name that starts with func: %q", got)
	}
}

// Several processes append to one file; the timeline orders their events
// by time and says which process made each.
func TestTimelineOfOneFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.jsonl")
	daemon, err := OpenFile(path, "daemon")
	if err != nil {
		t.Fatal(err)
	}
	shim, err := OpenFile(path, "shim")
	if err != nil {
		t.Fatal(err)
	}
	client := NewMemory("client")
	start := int64(1_000_000_000)
	client.CallSince(start, "http", "POST", "/containers/create?trace=1", "201 Created", "")
	daemon.Call("start", "write", "config.json", "the bundle", nil)
	shim.CallResult("create", "runtime create", "c", "pid 42", "")
	runtime := shim.As("runtime")
	runtime.Line("startInit", "begin")
	daemon.Close()
	shim.Close()
	data, _ := os.ReadFile(path)
	events, err := ReadEvents(bytes.NewReader(data))
	if err != nil || len(events) != 3 {
		t.Fatalf("read %d events, %v:\n%s", len(events), err, data)
	}
	var out bytes.Buffer
	if err := Timeline(&out, append(events, client.Events()...), start); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("timeline:\n%s", out.String())
	}
	for i, want := range []string{"[client", "[daemon", "[shim", "[runtime"} {
		if !strings.Contains(lines[i], want) {
			t.Errorf("line %d %q: want %s", i, lines[i], want)
		}
	}
	if !strings.HasPrefix(lines[0], "+    0.000ms [client") {
		t.Errorf("the first line %q is not at +0", lines[0])
	}
	if _, err := ReadEvents(strings.NewReader("{\"t\":1}\nnot json\n")); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("a broken line: %v", err)
	}
}

// A nil Tracer writes nothing and hands errors back.
func TestNilTracer(t *testing.T) {
	var tr *Tracer
	if err := tr.Call("s", "op", "", "", unix.EPERM); err != unix.EPERM {
		t.Errorf("nil Tracer changed the error: %v", err)
	}
	tr.Line("s", "x")
	tr.Helper()
	if tr.As("x") != nil || tr.File() != nil || tr.Events() != nil || tr.Encoding() != "" {
		t.Error("nil Tracer")
	}
}
