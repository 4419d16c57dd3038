// Package trace writes the lines of `minidock runtime --trace` (or
// MINIDOCK_TRACE=1): one line per kernel call of the container's set-up,
// made by the kernel seam (package kernel), in the runtime and in the init
// alike.
//
// A line holds the time (µs), who (runtime or init, with its pid as it
// sees it: the init is pid 1), the step's name, and the call with its
// arguments and result:
//
//	12:00:01.000123 [init 1] prepareRootfs      mount dst=/, flags=MS_REC|MS_SLAVE = ok
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
	pid int
}

// New returns a Tracer writing to out with lines tagged role (e.g.
// "runtime", "init"), or nil when out is nil.
func New(out *os.File, role string) *Tracer {
	if out == nil {
		return nil
	}
	return &Tracer{out: out, who: role, pid: os.Getpid()}
}

// File is where the lines go (nil when t is nil): the runtime hands it to
// the init, whose lines then land in the same place.
func (t *Tracer) File() *os.File {
	if t == nil {
		return nil
	}
	return t.out
}

// Line writes one line: what happened in step.
func (t *Tracer) Line(step, text string) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	fmt.Fprintf(t.out, "%s [%s %d] %-18s %s\n", time.Now().Format("15:04:05.000000"), t.who, t.pid, step, text)
}
