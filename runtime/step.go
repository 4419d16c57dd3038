package runtime

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"minidock/cgroup"
	"minidock/kernel"
)

// Step mode (`minidock runtime --step run|create`, docs/step.md): the
// runtime and its init pause before each kernel call of the container's
// set-up, and a person at a terminal says when to go on.
//
// Both sides make their calls through the kernel seam wrapped in a
// kernel.Stepper, whose pause function is asked before each call:
//
//   - in the runtime (the parent), the pause is prompter.pause itself;
//     calls made outside the seam (os/exec's clone with the id maps and the
//     cgroup, the cgroup's mkdir, sending the config) pause with
//     kernel.PauseBefore;
//   - in the init, whose stdio is the container's and which may have no
//     terminal at all, the pause is initAsker.pause: it sends the call, a
//     JSON line, over the step socket (a socketpair whose end the init has
//     as the fd named by _MINIDOCK_STEP) and waits for the runtime's
//     answer, "go" or "abort"; the runtime's serveSteps asks the prompter.
//     Once it waits for start, the init asks on the start connection
//     instead, and Start answers (answerSteps), up to execve.
//
// One prompter serves both, one pause at a time, in the order the calls
// come: the parent's and the init's steps never overlap, since each waits
// for the other at the sync socket (or, at Start, on the start
// connection).

// envStep names the init's end of the step socket (its fd number).
const envStep = "_MINIDOCK_STEP"

// envDebugInit makes the init wait for a debugger (waitForDebugger).
const envDebugInit = "_MINIDOCK_DEBUG_INIT"

// ErrStepAborted is the answer q (or the end of the terminal) at a step
// prompt: the call is not made, and the container is undone.
var ErrStepAborted = errors.New("aborted at the step prompt (q)")

// prompter asks a person, through a terminal, before each call.
type prompter struct {
	mu      sync.Mutex
	out     io.Writer
	in      *bufio.Reader
	n       int    // pauses so far
	pid     int    // the init's host pid, once it is started
	procs   string // the cgroup.procs file of the container's cgroup, once made
	skip    string // "s": the step ("who step") run through without pausing
	offline bool   // "c": no more pauses
}

func newPrompter(tty io.ReadWriter) *prompter {
	return &prompter{out: tty, in: bufio.NewReader(tty)}
}

// started records the init's host pid and its cgroup, for the commands
// the prompt offers.
func (p *prompter) started(pid int, cgroupPath string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pid, p.procs = pid, cgroupProcs(cgroupPath)
}

// pause shows the call who (runtime or init) is about to make and waits
// for an answer: Enter makes it, s runs the rest of this step without
// pausing, c continues to the end, q (or the terminal's end) aborts.
func (p *prompter) pause(who string, c kernel.Pause) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	step := who + " " + c.Step
	switch {
	case p.offline:
		return nil
	case p.skip == step:
		return nil
	}
	p.skip = ""
	p.n++
	fmt.Fprint(p.out, p.prompt(who, c))
	for {
		line, err := p.in.ReadString('\n')
		if err != nil {
			fmt.Fprintln(p.out)
			return fmt.Errorf("%w: the terminal closed (%v)", ErrStepAborted, err)
		}
		switch strings.TrimSpace(line) {
		case "":
			return nil
		case "s":
			p.skip = step
			return nil
		case "c":
			p.offline = true
			return nil
		case "q":
			return ErrStepAborted
		}
		fmt.Fprint(p.out, "  Enter, s, c or q > ")
	}
}

// prompt is one pause as the terminal shows it:
//
//	── pause 12 · init · prepareRootfs · init pid 4242
//	   next: mount src=proc, dst=/b/rootfs/proc, type=proc, flags=MS_NOSUID|MS_NODEV|MS_NOEXEC
//	   look: ls -l /proc/4242/ns
//	         nsenter -t 4242 -m cat /proc/self/mountinfo
//	         grep Cap /proc/4242/status
//	         cat /sys/fs/cgroup/pids/minidock/ID/cgroup.procs
//	   Enter: make the call · s: the rest of this step · c: continue to the end · q: abort >
func (p *prompter) prompt(who string, c kernel.Pause) string {
	var b strings.Builder
	pid := "not started yet"
	if p.pid != 0 {
		pid = strconv.Itoa(p.pid)
	}
	fmt.Fprintf(&b, "\n── pause %d · %s · %s · init pid %s\n", p.n, who, c.Step, pid)
	fmt.Fprintf(&b, "   next: %s %s\n", c.Op, c.Args)
	var look []string
	if p.pid != 0 {
		look = append(look, fmt.Sprintf("ls -l /proc/%d/ns", p.pid),
			fmt.Sprintf("nsenter -t %d -m cat /proc/self/mountinfo", p.pid),
			fmt.Sprintf("grep Cap /proc/%d/status", p.pid))
	}
	if p.procs != "" {
		look = append(look, "cat "+p.procs)
	}
	for i, l := range look {
		label := "         "
		if i == 0 {
			label = "   look: "
		}
		b.WriteString(label + l + "\n")
	}
	b.WriteString("   Enter: make the call · s: the rest of this step · c: continue to the end · q: abort > ")
	return b.String()
}

// cgroupProcs is the cgroup.procs file that lists the container's
// processes: in the unified hierarchy, or else in the first v1 hierarchy
// that has the cgroup.
func cgroupProcs(path string) string {
	if path == "" {
		return ""
	}
	if m, err := cgroup.DetectMode(); err == nil && m == cgroup.Unified {
		return filepath.Join(cgroup.Root, path, "cgroup.procs")
	}
	for _, h := range []string{"pids", "memory", "cpu", "devices", "freezer"} {
		if dir := filepath.Join(cgroup.Root, h, path); isDir(dir) {
			return filepath.Join(dir, "cgroup.procs")
		}
	}
	return ""
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// stepSocket makes the step socket: the runtime's end as a net.Conn (so
// that closing it ends a read in progress), the init's as a file for
// exec.Cmd.ExtraFiles.
func stepSocket() (net.Conn, *os.File, error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("step socket: %w", err)
	}
	f := os.NewFile(uintptr(fds[0]), "step")
	conn, err := net.FileConn(f)
	f.Close()
	if err != nil {
		unix.Close(fds[1])
		return nil, nil, fmt.Errorf("step socket: %w", err)
	}
	return conn, os.NewFile(uintptr(fds[1]), "step"), nil
}

// serveSteps answers, while Create runs, the init's pauses that come
// over the step socket (answerSteps), until the init's end closes
// (waitForStart, execve, exit) or stop is called; stop returns once it is
// done.
func (p *prompter) serveSteps(conn net.Conn) (stop func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.answerSteps(conn)
	}()
	return func() {
		conn.Close()
		<-done
	}
}

// answerSteps answers the init's pauses, each a JSON kernel.Pause on a
// line, with the prompter's answer, "go" or "abort", until the init's end
// closes (execve, exit) or what it sends is not a pause: that, and all
// that follows, is returned. On the start connection (Start) it is the
// error that ended the init.
func (p *prompter) answerSteps(conn io.ReadWriter) (rest []byte) {
	r := bufio.NewReader(conn)
	for {
		line, err := r.ReadBytes('\n')
		var c kernel.Pause
		if err != nil || json.Unmarshal(line, &c) != nil || c.Op == "" {
			more, _ := io.ReadAll(r)
			return append(line, more...)
		}
		answer := "go\n"
		if p.pause("init", c) != nil {
			answer = "abort\n"
		}
		if _, err := io.WriteString(conn, answer); err != nil {
			rest, _ = io.ReadAll(r)
			return rest
		}
	}
}

// SetStep gives a container made in step mode (Step) and loaded from its
// state, as `runtime start` loads it, the terminal its Start asks on
// (CreateOptions.Step); its pauses are numbered anew. The container that
// Create returned asks on with Create's prompter.
func (c *Container) SetStep(tty io.ReadWriter) {
	c.prompt = newPrompter(tty)
	c.prompt.started(c.Pid, c.CgroupPath)
}

// initAsker is the init's end of step mode: pause asks the runtime before
// each call. Up to waitForStart it asks Create over the step socket; then
// end closes that, and once `runtime start` has connected, askStart moves
// the asking to the start connection, where Start answers up to execve.
type initAsker struct {
	conn *os.File // nil: between end and askStart, nobody to ask
	r    *bufio.Reader
}

// openInitAsker opens the step socket named by _MINIDOCK_STEP, or returns
// nil when the runtime does not step.
func openInitAsker() *initAsker {
	fd, err := strconv.Atoi(os.Getenv(envStep))
	if err != nil {
		return nil
	}
	f := os.NewFile(uintptr(fd), "step")
	return &initAsker{conn: f, r: bufio.NewReader(f)}
}

func (s *initAsker) pause(c kernel.Pause) error {
	if s.conn == nil {
		return nil
	}
	line, _ := json.Marshal(c)
	if _, err := s.conn.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("step mode: ask the runtime: %w", err)
	}
	answer, err := s.r.ReadString('\n')
	switch {
	case err != nil:
		return fmt.Errorf("step mode: no answer from the runtime: %w", err)
	case answer != "go\n":
		return ErrStepAborted
	}
	return nil
}

// end closes the step socket: Create has returned (nil: not stepping).
func (s *initAsker) end() {
	if s != nil && s.conn != nil {
		s.conn.Close()
		s.conn = nil
	}
}

// askStart asks through start, the connection from `runtime start`, from
// now on (nil: not stepping). It stays open, close-on-exec, for fail.
func (s *initAsker) askStart(start *os.File) {
	if s != nil {
		s.conn, s.r = start, bufio.NewReader(start)
	}
}

// waitForDebugger (MINIDOCK_DEBUG_INIT=1) holds the init before its first
// step until a debugger has attached: ptrace(2) attach (dlv attach) sets
// TracerPid in /proc/self/status, polled every 50 ms. The runtime has
// printed `dlv attach PID` with the init's host pid; the init, pid 1 in
// its own pid namespace, does not know that number, but /proc is still the
// host's here, so /proc/self is the init. The runtime waits meanwhile, as
// long as it takes: it has no start timeout.
func (p *initProcess) waitForDebugger(k kernel.Calls) error {
	for {
		tracer, err := tracerPid()
		if err != nil || tracer != 0 {
			return k.Note("read", fmt.Sprintf("/proc/self/status: TracerPid %d, a debugger is attached", tracer), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// tracerPid reads TracerPid from /proc/self/status: the pid of the process
// tracing this one, or 0.
func tracerPid() (int, error) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "TracerPid:"); ok {
			return strconv.Atoi(strings.TrimSpace(v))
		}
	}
	return 0, errors.New("/proc/self/status has no TracerPid")
}

// cloneStepArgs spells, for the pause before it, what os/exec's Cmd.Start
// does in one go, where nothing can pause: clone3 with the namespace flags,
// the child born into the cgroup (startInit), its id maps written from
// here while it waits, then its execve of the init.
func cloneStepArgs(attr *syscall.SysProcAttr, cg cgroupHandle, awaitMaps bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "flags=%s", kernel.CloneFlags(attr.Cloneflags))
	if cg != nil {
		fmt.Fprintf(&b, ", born in cgroup %s (cgroup v2: clone3 CLONE_INTO_CGROUP; v1: the cloning thread enters it first)", cg.Path())
	}
	maps := func(ms []syscall.SysProcIDMap) string {
		var s []string
		for _, m := range ms {
			s = append(s, fmt.Sprintf("%d %d %d", m.ContainerID, m.HostID, m.Size))
		}
		return strings.Join(s, ", ")
	}
	switch {
	case len(attr.UidMappings) > 0:
		fmt.Fprintf(&b, "; then uid_map %q and gid_map %q written to /proc/PID/ from here while the child waits, and setresuid(0) in it",
			maps(attr.UidMappings), maps(attr.GidMappings))
	case awaitMaps:
		b.WriteString("; the child waits unmapped for newuidmap and newgidmap")
	}
	b.WriteString("; then execve /proc/self/exe init")
	return b.String()
}
