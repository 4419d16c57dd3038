// Package trace prints each container set-up step as it happens, for
// learners: `minidock runtime --trace ...` or MINIDOCK_TRACE=1.
//
// One line per step: the time, who (runtime or init, with its pid), the
// step's name, the syscall with its arguments, and the result.
package trace

import (
	"fmt"
	"os"
	"sync"
	"time"
)

// Tracer writes trace lines to one file. A nil *Tracer writes nothing, so
// callers never check whether tracing is on.
type Tracer struct {
	mu  sync.Mutex
	out *os.File
	who string
}

// New returns a Tracer writing to out with lines tagged role (e.g.
// "runtime", "init"), or nil when out is nil.
func New(out *os.File, role string) *Tracer {
	if out == nil {
		return nil
	}
	return &Tracer{out: out, who: role}
}

// File is where the lines go (nil when t is nil): the runtime hands it to
// the init, whose lines then land in the same place.
func (t *Tracer) File() *os.File {
	if t == nil {
		return nil
	}
	return t.out
}

// Step records that step ran call with result err (nil means success).
// It returns err unchanged, so a step can end with `return t.Step(...)`.
func (t *Tracer) Step(step, call string, err error) error {
	if t == nil {
		return err
	}
	res := "ok"
	if err != nil {
		res = "error: " + err.Error()
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	fmt.Fprintf(t.out, "%s [%s %d] %-18s %s = %s\n", time.Now().Format("15:04:05.000000"), t.who, os.Getpid(), step, call, res)
	return err
}

// std is the process's own tracer, for code that runs only in the
// short-lived init process (set once by Enable).
var std *Tracer

// Enable sends the process's trace lines (Step) to f, tagged with role.
// Only the init calls it: a library caller of the runtime passes a
// *Tracer instead.
func Enable(f *os.File, role string) { std = New(f, role) }

// On reports whether the process's tracer is enabled.
func On() bool { return std != nil }

// Step records a step with the process's tracer (see Enable).
func Step(step, call string, err error) error { return std.Step(step, call, err) }

// Default is the process's tracer (see Enable), nil when off.
func Default() *Tracer { return std }
