// Command ocireap runs one OCI validation program so that nothing it starts
// can outlive it. It is built and used by tests/oci/run.sh; it is not part of
// minidock.
//
// Usage:
//
//	ocireap [-timeout 60s] [-grace 5s] [-cleanup 'sh command'] [-leftovers FILE] -- PROG [ARGS...]
//
// It marks itself a child subreaper (prctl PR_SET_CHILD_SUBREAPER), so every
// process the program starts that is orphaned later — in particular the
// container init a runtime's `create` leaves behind when the runtime process
// exits — is re-parented to ocireap instead of PID 1. PROG runs in its own
// process group; after -timeout it gets SIGTERM, after -grace more SIGKILL.
// When PROG has ended, the -cleanup command runs (run.sh uses it to call
// `RUNTIME delete --force` on the containers the program left), and then
// every process still descending from ocireap is SIGKILLed and reaped; their
// pids and command lines are written to -leftovers (one per line), so the
// harness can report them. The exit status is PROG's (124 on timeout,
// 128+signal when it was killed by a signal).
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const prSetChildSubreaper = 36

type exit struct {
	pid    int
	status syscall.WaitStatus
}

func main() {
	timeout := flag.Duration("timeout", 60*time.Second, "time PROG may run")
	grace := flag.Duration("grace", 5*time.Second, "time between SIGTERM and SIGKILL on timeout")
	cleanup := flag.String("cleanup", "", "sh command run after PROG ended, before leftovers are killed")
	leftovers := flag.String("leftovers", "", "file receiving the processes that had to be killed")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "ocireap: no program given")
		os.Exit(2)
	}
	if _, _, e := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); e != 0 {
		fmt.Fprintln(os.Stderr, "ocireap: prctl(PR_SET_CHILD_SUBREAPER):", e)
		os.Exit(2)
	}

	// One goroutine reaps every child (our own and adopted orphans) and
	// reports each exit; nobody else calls wait.
	exits := make(chan exit, 64)
	go func() {
		for {
			var ws syscall.WaitStatus
			pid, err := syscall.Wait4(-1, &ws, 0, nil)
			if err == syscall.EINTR {
				continue
			}
			if err != nil { // ECHILD: nothing to wait for right now
				time.Sleep(20 * time.Millisecond)
				continue
			}
			exits <- exit{pid, ws}
		}
	}()
	// An interrupt of the harness ends the program early, like a timeout,
	// so that cleanup still happens.
	interrupted := make(chan os.Signal, 1)
	signal.Notify(interrupted, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)

	// waitFor consumes exits until pid's arrives (or the deadline passes,
	// or, when stopOnSignal, the harness is interrupted).
	waitFor := func(pid int, d time.Duration, stopOnSignal bool) (syscall.WaitStatus, bool) {
		deadline := time.After(d)
		var sig <-chan os.Signal
		if stopOnSignal {
			sig = interrupted
		}
		for {
			select {
			case e := <-exits:
				if e.pid == pid {
					return e.status, true
				}
			case <-deadline:
				return 0, false
			case <-sig:
				return 0, false
			}
		}
	}

	prog, err := exec.LookPath(flag.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, "ocireap:", err)
		os.Exit(127)
	}
	proc, err := os.StartProcess(prog, flag.Args(), &os.ProcAttr{
		Files: []*os.File{os.Stdin, os.Stdout, os.Stderr},
		Sys:   &syscall.SysProcAttr{Setpgid: true},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "ocireap:", err)
		os.Exit(127)
	}
	pid := proc.Pid

	code := 0
	ws, done := waitFor(pid, *timeout, true)
	if !done {
		fmt.Fprintf(os.Stderr, "ocireap: %s stopped (timeout %s or interrupt)\n", filepath.Base(prog), *timeout)
		syscall.Kill(-pid, syscall.SIGTERM)
		if ws, done = waitFor(pid, *grace, false); !done {
			syscall.Kill(-pid, syscall.SIGKILL)
			ws, _ = waitFor(pid, *grace, false)
		}
		code = 124
	} else if ws.Signaled() {
		code = 128 + int(ws.Signal())
	} else {
		code = ws.ExitStatus()
	}

	if *cleanup != "" {
		c, err := os.StartProcess("/bin/sh", []string{"sh", "-c", *cleanup}, &os.ProcAttr{
			Files: []*os.File{os.Stdin, os.Stderr, os.Stderr},
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, "ocireap: cleanup:", err)
		} else if _, ok := waitFor(c.Pid, 2*time.Minute, false); !ok {
			fmt.Fprintln(os.Stderr, "ocireap: cleanup command did not finish in 2m")
			syscall.Kill(c.Pid, syscall.SIGKILL)
		}
	}

	// Kill whatever still descends from us, until nothing does.
	var report bytes.Buffer
	seen := map[int]bool{}
	for round := 0; round < 50; round++ {
		left := descendants(os.Getpid())
		if len(left) == 0 {
			break
		}
		for _, p := range left {
			if !seen[p] {
				seen[p] = true
				fmt.Fprintf(&report, "%d %s\n", p, cmdline(p))
			}
			syscall.Kill(p, syscall.SIGKILL)
		}
		// Drain exits so the killed become reaped, not zombies.
		deadline := time.After(100 * time.Millisecond)
	drain:
		for {
			select {
			case <-exits:
			case <-deadline:
				break drain
			}
		}
	}
	if *leftovers != "" {
		os.WriteFile(*leftovers, report.Bytes(), 0o644)
	}
	os.Exit(code)
}

// descendants lists the live (non-zombie) processes whose parent chain
// reaches root.
func descendants(root int) []int {
	ents, _ := os.ReadDir("/proc")
	parent := map[int]int{}
	zombie := map[int]bool{}
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// "pid (comm) state ppid ..."; comm may contain spaces and parens.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 2 {
			continue
		}
		pp, _ := strconv.Atoi(f[1])
		parent[p] = pp
		zombie[p] = f[0] == "Z"
	}
	var out []int
	for p := range parent {
		if zombie[p] {
			continue
		}
		for q, n := parent[p], 0; q > 1 && n < 64; q, n = parent[q], n+1 {
			if q == root {
				out = append(out, p)
				break
			}
		}
	}
	return out
}

func cmdline(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))
}
