// Package trace writes the trace of a container's life: one event per
// kernel call or step that minidock makes for it, from whichever process
// makes it — the client, the daemon, the shim, the runtime or the init.
//
// An event holds the time, the process (its role and pid), the step of
// the sequence it belongs to, the Go function that made the call, the
// call with its arguments (flags spelled by name, by package kernel's
// decoders), its result (errors included), and a short why:
//
//	12:00:01.000123 [init 1]         enterRootfs      rootfs.PivotRoot             mount dst=., flags=MS_REC|MS_SLAVE = ok  # change the propagation of every mount below: ...
//
// A Tracer writes events in one of two encodings:
//
//   - text, the line above, for `minidock runtime --trace` (stderr);
//   - JSON lines, one Event a line, appended to a container's trace file
//     (OpenFile) by every process that works on the container, for
//     `minidock run --trace`, which merges them into one timeline
//     (Timeline) ordered by time. docs/trace.md describes both.
//
// A nil *Tracer writes nothing, so callers never check whether tracing is
// on; packages outside the runtime (cgroup, overlay, bridge, network,
// seccomp) take an optional *Tracer and write their calls with Call.
package trace

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	goruntime "runtime"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Event is one line of a trace.
type Event struct {
	Time   int64  `json:"t"`    // wall clock, ns since the epoch
	Proc   string `json:"proc"` // client, daemon, shim, runtime or init
	Pid    int    `json:"pid"`  // as the process sees itself (the init is 1)
	Step   string `json:"step"` // the step of the sequence: loadBundle, pivotRoot, start, ...
	Func   string `json:"func,omitempty"`
	Op     string `json:"op"`               // the call: mount, write, RTM_NEWLINK, POST, ...
	Args   string `json:"args,omitempty"`   // its arguments, flags by name
	Result string `json:"result,omitempty"` // ok, fd 5, ENOENT (no such file or directory), ...
	Why    string `json:"why,omitempty"`
}

// Text is the event as a line of text (without a newline), led by at:
// a wall clock time, or the milliseconds since a timeline's start.
func (e Event) Text(at string) string {
	step := e.Step
	if step == "" {
		step = "-" // before the first step
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %-16s %-16s %-28s %s", at, fmt.Sprintf("[%s %d]", e.Proc, e.Pid), step, e.Func, e.Op)
	if e.Args != "" {
		b.WriteString(" " + e.Args)
	}
	if e.Result != "" {
		b.WriteString(" = " + e.Result)
	}
	if e.Why != "" {
		b.WriteString("  # " + e.Why)
	}
	return b.String()
}

// Encodings of a Tracer, as the init learns it from its environment.
const (
	Text = "text"
	JSON = "json"
)

// Tracer writes events to one file. A nil *Tracer writes nothing.
type Tracer struct {
	mu   *sync.Mutex // shared by the Tracers of one file (As)
	out  *os.File
	mem  *[]Event // NewMemory's events, instead of a file
	enc  string
	proc string
	pid  int
}

// New returns a Tracer writing text lines to out, tagged proc ("runtime",
// "init", ...), or nil when out is nil.
func New(out *os.File, proc string) *Tracer { return NewEncoded(out, Text, proc) }

// NewEncoded is New with the encoding named: Text or JSON (anything else
// is Text).
func NewEncoded(out *os.File, enc, proc string) *Tracer {
	if out == nil {
		return nil
	}
	if enc != JSON {
		enc = Text
	}
	return &Tracer{mu: new(sync.Mutex), out: out, enc: enc, proc: proc, pid: os.Getpid()}
}

// NewMemory returns a Tracer that keeps its events in memory, for
// Events: the client's, merged with the container's trace file into one
// timeline.
func NewMemory(proc string) *Tracer {
	return &Tracer{mu: new(sync.Mutex), mem: new([]Event), enc: JSON, proc: proc, pid: os.Getpid()}
}

// Events returns what a NewMemory Tracer has kept.
func (t *Tracer) Events() []Event {
	if t == nil || t.mem == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]Event(nil), *t.mem...)
}

// OpenFile returns a Tracer appending JSON lines to the trace file path
// (created if need be): a container's trace, to which each process that
// works on the container appends its events. Each event is one write(2)
// to a file opened O_APPEND, so the lines of several processes never mix.
func OpenFile(path, proc string) (*Tracer, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open trace file: %w", err)
	}
	return NewEncoded(f, JSON, proc), nil
}

// As is a Tracer to the same file, in the same encoding, for another
// role of this process (the shim calling the runtime in process: "runtime").
func (t *Tracer) As(proc string) *Tracer {
	if t == nil {
		return nil
	}
	n := *t
	n.proc, n.pid = proc, os.Getpid()
	return &n
}

// File is where the events go (nil when t is nil): the runtime hands it
// to the init, whose events then land in the same place.
func (t *Tracer) File() *os.File {
	if t == nil {
		return nil
	}
	return t.out
}

// Encoding is Text or JSON ("" when t is nil).
func (t *Tracer) Encoding() string {
	if t == nil {
		return ""
	}
	return t.enc
}

// Close closes the file of a Tracer made by OpenFile.
func (t *Tracer) Close() error {
	if t == nil || t.out == nil {
		return nil
	}
	return t.out.Close()
}

// Line writes an event that is no call: the begin of a step, a note.
func (t *Tracer) Line(step, text string) {
	if t == nil {
		return
	}
	t.write(Event{Step: step, Op: text})
}

// Call writes the event of one call made in step: op with args, its
// result (from err), and why it is made; it returns err unchanged, so
// that a caller can write
//
//	return t.Call("createCgroup", "mkdir", dir, "the container's cgroup", unix.Mkdir(dir, 0o755))
//
// The function named in the event is the first caller outside package
// trace, package kernel and the functions marked with Helper.
func (t *Tracer) Call(step, op, args, why string, err error) error {
	if t == nil {
		return err
	}
	t.write(Event{Step: step, Op: op, Args: args, Result: Result(err), Why: why})
	return err
}

// CallResult writes the event of a call whose result is no error's
// outcome: "fd 5", "pid 4242".
func (t *Tracer) CallResult(step, op, args, result, why string) {
	if t == nil {
		return
	}
	t.write(Event{Step: step, Op: op, Args: args, Result: result, Why: why})
}

// Result spells the outcome of a call: "ok", or the errno's name and
// text ("ENOENT (no such file or directory)"), or "error: " and the error.
func Result(err error) string {
	if err == nil {
		return "ok"
	}
	var e unix.Errno
	if errors.As(err, &e) && e != 0 {
		if name := unix.ErrnoName(e); name != "" {
			if err == error(e) {
				return name + " (" + e.Error() + ")"
			}
			return name + " (" + err.Error() + ")"
		}
	}
	return "error: " + err.Error()
}

// CallSince writes the event of a call that began at start (ns since the
// epoch) and has just ended with result: an HTTP request, placed in the
// timeline where it was sent.
func (t *Tracer) CallSince(start int64, step, op, args, result, why string) {
	if t == nil {
		return
	}
	t.write(Event{Time: start, Step: step, Op: op, Args: args, Result: result, Why: why})
}

func (t *Tracer) write(e Event) {
	if e.Time == 0 {
		e.Time = time.Now().UnixNano()
	}
	e.Proc, e.Pid = t.proc, t.pid
	e.Func = caller()
	if t.mem != nil {
		t.mu.Lock()
		*t.mem = append(*t.mem, e)
		t.mu.Unlock()
		return
	}
	var line []byte
	if t.enc == JSON {
		line, _ = json.Marshal(e)
	} else {
		line = []byte(e.Text(time.Unix(0, e.Time).Format("15:04:05.000000")))
	}
	line = append(line, '\n')
	t.mu.Lock()
	defer t.mu.Unlock()
	t.out.Write(line) // one write(2): O_APPEND keeps it whole
}

// helpers are the functions marked with Helper.
var helpers sync.Map

// Helper (a no-op on a nil Tracer) marks the calling function as a tracing helper, as testing.T's
// Helper does: events name its caller, not it. (A cgroup file write goes
// through one helper; the event names the function that wanted the write.)
func (t *Tracer) Helper() {
	if t == nil {
		return
	}
	var pc [1]uintptr
	if goruntime.Callers(2, pc[:]) == 1 {
		f, _ := goruntime.CallersFrames(pc[:]).Next()
		helpers.Store(f.Function, true)
	}
}

// caller is the short name ("rootfs.PivotRoot") of the first function up
// the stack that is not in package trace or
// package kernel (their tests aside) and not a Helper.
func caller() string {
	var pcs [16]uintptr
	n := goruntime.Callers(3, pcs[:]) // from write's caller on
	frames := goruntime.CallersFrames(pcs[:n])
	for {
		f, more := frames.Next()
		name := f.Function
		_, helper := helpers.Load(name)
		seam := strings.HasPrefix(name, "minidock/kernel.") || strings.HasPrefix(name, "minidock/internal/trace.")
		if !helper && name != "" && (!seam || strings.HasSuffix(f.File, "_test.go")) {
			return shortFunc(name)
		}
		if !more {
			return ""
		}
	}
}

// shortFunc makes "minidock/runtime.(*initProcess).pivotRoot.func1"
// read "runtime.initProcess.pivotRoot" ("minidock/internal/trace.F":
// "trace.F").
func shortFunc(name string) string {
	name = name[strings.LastIndex(name, "/")+1:] // the package's last element
	name = strings.NewReplacer("(*", "", ")", "").Replace(name)
	for {
		i := strings.LastIndex(name, ".func")
		if i < 0 || strings.Trim(name[i+len(".func"):], "0123456789.") != "" {
			return name
		}
		name = name[:i]
	}
}
