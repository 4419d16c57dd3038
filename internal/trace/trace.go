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

var (
	mu  sync.Mutex
	out *os.File
	who = "runtime"
)

// Enable sends trace lines to f, tagged with role (e.g. "runtime", "init").
func Enable(f *os.File, role string) {
	mu.Lock()
	defer mu.Unlock()
	out, who = f, role
}

// On reports whether tracing is enabled.
func On() bool {
	mu.Lock()
	defer mu.Unlock()
	return out != nil
}

// Step records that step ran call with result err (nil means success).
// It returns err unchanged, so a step can end with `return trace.Step(...)`.
func Step(step, call string, err error) error {
	mu.Lock()
	defer mu.Unlock()
	if out == nil {
		return err
	}
	res := "ok"
	if err != nil {
		res = "error: " + err.Error()
	}
	fmt.Fprintf(out, "%s [%s %d] %-18s %s = %s\n", time.Now().Format("15:04:05.000000"), who, os.Getpid(), step, call, res)
	return err
}
