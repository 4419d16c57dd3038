package tests

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// Step mode (docs/step.md): `minidock runtime --step run` driven from a
// pseudo-terminal, its controlling terminal, as a person at a shell.

// stepPrompt is one pause as the terminal showed it.
type stepPrompt struct {
	who, step, pid, call string
}

func (p stepPrompt) String() string { return p.who + " " + p.step + ": " + p.call }

var promptLine = regexp.MustCompile(`── pause ([0-9]+) · (runtime|init) · (\w+) · init pid ([^\r\n]+)\r?\n   next: ([^\r\n]*)(?s:.*?)q: abort > `)

func parsePrompts(out string) []stepPrompt {
	var ps []stepPrompt
	for _, m := range promptLine.FindAllStringSubmatch(out, -1) {
		ps = append(ps, stepPrompt{who: m[2], step: m[3], pid: m[4], call: m[5]})
	}
	return ps
}

// stepRun starts `runtime --step run` on a pty for a busybox bundle whose
// process runs script.
func stepRun(t *testing.T, r *rt, script string) (*ptyCommand, string) {
	dir := bundle(t, sh(script))
	id := newID(t)
	argv := append(append([]string{}, r.argv...), "--root", r.root, "--step", "run", "--bundle", dir, id)
	return startPty(t, nil, argv...), dir
}

// stepThrough answers each pause with answer's word until the runtime
// exits, and returns the pauses in order and the runtime's exit code.
func stepThrough(t *testing.T, p *ptyCommand, answer func(stepPrompt) string) ([]stepPrompt, int) {
	t.Helper()
	seen := stepUntil(t, p, p.done, answer)
	p.cmd.Wait()
	return seen, p.cmd.ProcessState.ExitCode()
}

// stepUntil answers each pause with answer's word until ended is closed,
// and returns the pauses in order.
func stepUntil(t *testing.T, p *ptyCommand, ended <-chan struct{}, answer func(stepPrompt) string) []stepPrompt {
	t.Helper()
	var seen []stepPrompt
	for {
		var next *stepPrompt
		exited := false
		if !waitFor(20*time.Second, func() bool {
			if ps := parsePrompts(p.output()); len(ps) > len(seen) {
				next = &ps[len(seen)]
				return true
			}
			select {
			case <-ended:
				exited = true
				return true
			default:
				return false
			}
		}) {
			t.Fatalf("no pause and no end after %d pauses; the terminal shows:\n%s", len(seen), p.output())
		}
		if exited {
			return seen
		}
		seen = append(seen, *next)
		_, err := p.master.Write([]byte(answer(*next) + "\n"))
		require.NoError(t, err)
	}
}

// steps lists "who step" of the pauses, each once, in order.
func steps(ps []stepPrompt) []string {
	var out []string
	for _, p := range ps {
		if s := p.who + " " + p.step; len(out) == 0 || out[len(out)-1] != s {
			out = append(out, s)
		}
	}
	return out
}

// indexOf is the first pause whose "who step: call" starts with prefix.
func indexOf(ps []stepPrompt, prefix string) int {
	for i, p := range ps {
		if strings.HasPrefix(p.String(), prefix) {
			return i
		}
	}
	return -1
}

// TestStepRunPausesBeforeEachStep steps through a whole run: Enter at each
// pause, s (the rest of the step) in finishProcess. The pauses come in the
// order of the sequence, name the calls of the list with their
// arguments, and give the host pid of the init, which the test checks is
// the runtime's child `/proc/self/exe init` in a pid namespace of its own;
// the container then runs, and nothing is left.
func TestStepRunPausesBeforeEachStep(t *testing.T) {
	r := newRuntime(t)
	if r.runc {
		t.Skip("--step is minidock's")
	}
	p, _ := stepRun(t, r, "echo stepped through")
	var initChecked bool
	ps, code := stepThrough(t, p, func(s stepPrompt) string {
		if s.who == "init" && !initChecked {
			initChecked = true
			checkInitPid(t, s.pid, p.cmd.Process.Pid)
		}
		if s.step == "finishProcess" {
			return "s"
		}
		return ""
	})
	out := p.output()
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "stepped through")
	assert.True(t, initChecked, "no pause of the init")
	assert.Equal(t, []string{
		"runtime createCgroup", "runtime startInit",
		"init setupNamespaces", "init prepareRootfs", "init enterRootfs", "init finalizeRootfs", "init finishProcess", "init execProcess",
	}, steps(ps), "the steps paused in, in order:\n%s", out)
	// the calls of the list, in this order
	last := -1
	for _, call := range []string{
		"runtime createCgroup: mkdir /",
		"runtime startInit: clone flags=CLONE_", // with the cgroup it is born in
		"runtime startInit: write config pipe",
		"init setupNamespaces: unshare CLONE_NEWCGROUP",
		"init setupNamespaces: sethostname \"minidock\"",
		"init prepareRootfs: mount src=proc, dst=",
		"init enterRootfs: pivot_root ., .",
		"init enterRootfs: umount2 ., flags=MNT_DETACH",
		"init finalizeRootfs: mount src=/dev/null, dst=/proc/keys", // a masked path
		"init finishProcess: prlimit RLIMIT_NOFILE",
		"init execProcess: execve /bin/sh, argv=",
	} {
		i := indexOf(ps, call)
		if assert.True(t, i >= 0, "no pause before %q in:\n%s", call, out) {
			assert.Greater(t, i, last, "%q out of order", call)
			last = i
		}
	}
	if i := indexOf(ps, "runtime startInit: clone"); i >= 0 {
		assert.Contains(t, ps[i].call, "CLONE_NEWNS")
		assert.Contains(t, ps[i].call, "born in cgroup /")
	}
	// s ran the rest of finishProcess: one pause in it
	n := 0
	for _, s := range ps {
		if s.step == "finishProcess" {
			n++
		}
	}
	assert.Equal(t, 1, n, "pauses in finishProcess after s")
	// the commands offered to look from another shell
	pid := ps[len(ps)-1].pid
	for _, cmd := range []string{"ls -l /proc/" + pid + "/ns", "nsenter -t " + pid + " -m cat /proc/self/mountinfo", "grep Cap /proc/" + pid + "/status", "/cgroup.procs"} {
		assert.Contains(t, out, cmd)
	}
}

// checkInitPid checks, at a pause of the init, that pid is the runtime's
// child `/proc/self/exe init`, in a pid namespace that is not the test's.
func checkInitPid(t *testing.T, pid string, runtimePid int) {
	n, err := strconv.Atoi(pid)
	if !assert.NoError(t, err, "init pid %q", pid) {
		return
	}
	cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", n))
	assert.Equal(t, "/proc/self/exe\x00init\x00", string(cmdline), "cmdline of pid %d", n)
	status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", n))
	assert.Contains(t, string(status), fmt.Sprintf("\nPPid:\t%d\n", runtimePid), "pid %d is not the runtime's child", n)
	theirs, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", n))
	ours, _ := os.Readlink("/proc/self/ns/pid")
	assert.NotEqual(t, ours, theirs, "pid %d in the test's pid namespace", n)
}

// TestStepQuitLeavesNothing: q at the pause before pivot_root stops the
// init there; the runtime says so, exits 1, and leaves no process, state,
// cgroup (newRuntime's checks) or mount behind.
func TestStepQuitLeavesNothing(t *testing.T) {
	r := newRuntime(t)
	if r.runc {
		t.Skip("--step is minidock's")
	}
	p, dir := stepRun(t, r, "echo should not run")
	var initPid int
	ps, code := stepThrough(t, p, func(s stepPrompt) string {
		if s.who == "init" {
			initPid, _ = strconv.Atoi(s.pid)
		}
		if strings.HasPrefix(s.String(), "init enterRootfs: pivot_root") {
			return "q"
		}
		return ""
	})
	out := p.output()
	assert.Equal(t, 1, code, out)
	assert.Contains(t, out, "aborted at the step prompt (q)")
	assert.Contains(t, out, "pivot_root")
	assert.NotContains(t, out, "should not run")
	assert.True(t, strings.HasPrefix(ps[len(ps)-1].String(), "init enterRootfs: pivot_root"), "the last pause: %v", ps[len(ps)-1])
	require.NotZero(t, initPid)
	assert.True(t, processGone(initPid), "init %d still runs", initPid)
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	assert.NotContains(t, string(mounts), dir, "a mount of the bundle left")
}

// TestStepContinue: c at the first pause runs the rest without pausing.
func TestStepContinue(t *testing.T) {
	r := newRuntime(t)
	if r.runc {
		t.Skip("--step is minidock's")
	}
	p, _ := stepRun(t, r, "echo continued")
	ps, code := stepThrough(t, p, func(stepPrompt) string { return "c" })
	assert.Equal(t, 0, code, p.output())
	assert.Len(t, ps, 1, "pauses after c")
	assert.Contains(t, p.output(), "continued")
}

// TestStepWithoutTerminal: with no controlling terminal, --step is a clear
// error before anything is made.
func TestStepWithoutTerminal(t *testing.T) {
	r := newRuntime(t)
	if r.runc {
		t.Skip("--step is minidock's")
	}
	c := r.cmd("--step", "run", "--bundle", bundle(t, sh("echo ran")), newID(t))
	c.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // no controlling terminal
	out, err := c.CombinedOutput()
	assert.Error(t, err)
	assert.Contains(t, string(out), "--step asks before each step on the controlling terminal, and this process has none")
	assert.NotContains(t, string(out), "ran")
}

// TestDebugInitWaitsForDebugger: with MINIDOCK_DEBUG_INIT=1 the runtime
// prints `dlv attach PID` and the init waits, untraced, before its first
// step; once the test attaches (PTRACE_SEIZE, as dlv attach does) it goes
// on; the test detaches and the container runs.
func TestDebugInitWaitsForDebugger(t *testing.T) {
	r := newRuntime(t)
	if r.runc {
		t.Skip("MINIDOCK_DEBUG_INIT is minidock's")
	}
	// the process waits for a line on stdin, so that it is still there to
	// detach from
	c := r.cmd("run", "--bundle", bundle(t, sh("read line; echo ran after the debugger: $line")), newID(t))
	c.Env = append(os.Environ(), "MINIDOCK_DEBUG_INIT=1")
	stdin, err := c.StdinPipe()
	require.NoError(t, err)
	var out syncBuffer
	c.Stdout, c.Stderr = &out, &out
	require.NoError(t, c.Start())
	t.Cleanup(func() {
		stdin.Close() // the container's read ends, and with it its output
		c.Process.Kill()
		c.Wait()
	})
	var pid int
	line := regexp.MustCompile(`dlv attach ([0-9]+)`)
	require.True(t, waitFor(10*time.Second, func() bool {
		if m := line.FindStringSubmatch(string(out.Bytes())); m != nil {
			pid, _ = strconv.Atoi(m[1])
			return true
		}
		return false
	}), "no `dlv attach PID`: %s", string(out.Bytes()))
	// it waits: still the init, untraced, a while later
	time.Sleep(300 * time.Millisecond)
	cmdline := func() string { data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); return string(data) }
	require.Equal(t, "/proc/self/exe\x00init\x00", cmdline(), "pid %d did not wait for a debugger: %s", pid, string(out.Bytes()))
	status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	assert.Equal(t, "0", statusField(string(status), "TracerPid"))

	// attach, as a debugger would, on a thread of its own: ptrace(2)
	// requests come from the thread that attached
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	require.NoError(t, unix.PtraceSeize(pid))
	// it goes on, to execve of the container's process
	assert.True(t, waitFor(10*time.Second, func() bool { return strings.HasPrefix(cmdline(), "sh\x00") }), "the init did not go on once traced: %q", cmdline())
	require.NoError(t, unix.PtraceInterrupt(pid))
	var ws unix.WaitStatus
	_, err = unix.Wait4(pid, &ws, unix.WALL, nil)
	require.NoError(t, err)
	require.NoError(t, unix.PtraceDetach(pid))
	fmt.Fprintln(stdin, "yes")
	require.NoError(t, c.Wait(), string(out.Bytes()))
	assert.Contains(t, string(out.Bytes()), "ran after the debugger: yes")
}

// TestStepCreateThenStart: `runtime --step create` pauses up to
// waitForStart; `runtime start` of that container, from a terminal, asks
// on from there: close_range, the seccomp filter (with no_new_privs it is
// loaded last), execve; then the container runs. A second container: c at
// its create ends the create's pauses, its start asks anew, and q at the
// seccomp pause fails the start before the program runs.
func TestStepCreateThenStart(t *testing.T) {
	r := newRuntime(t)
	if r.runc {
		t.Skip("--step is minidock's")
	}
	filtered := func(script string) string {
		return bundle(t, func(s *specs.Spec) {
			sh(script)(s)
			s.Process.NoNewPrivileges = true
			s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{specs.ArchX86_64},
				Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno}}}
		})
	}
	runtimePty := func(args ...string) *ptyCommand {
		return startPty(t, nil, append(append(append([]string{}, r.argv...), "--root", r.root), args...)...)
	}
	// create runs from a shell, which leads the terminal's session as a
	// person's would (were create the leader, its exit would hang up the
	// init); the terminal is the container's stdio too, so it does not end
	// with create: the shell says when create has exited
	create := func(script, id string, answer func(stepPrompt) string) (*ptyCommand, []stepPrompt) {
		argv := append(append([]string{"/bin/sh", "-c", `"$0" "$@"; echo "create exited $?"; exec sleep 600`}, r.argv...),
			"--root", r.root, "--step", "create", "--bundle", filtered(script), id)
		p := startPty(t, nil, argv...)
		exited := make(chan struct{})
		go func() {
			waitFor(60*time.Second, func() bool { return strings.Contains(p.output(), "create exited ") })
			close(exited)
		}()
		ps := stepUntil(t, p, exited, answer)
		require.Contains(t, p.output(), "create exited 0")
		return p, ps
	}

	id := newID(t)
	tty, created := create("echo started after the pauses", id, func(stepPrompt) string { return "s" })
	if assert.NotEmpty(t, created) {
		last := created[len(created)-1]
		assert.Equal(t, "init finishProcess", last.who+" "+last.step, "create pauses up to waitForStart:\n%s", tty.output())
	}
	p := runtimePty("start", id)
	started, code := stepThrough(t, p, func(stepPrompt) string { return "" })
	require.Equal(t, 0, code, p.output())
	assert.Equal(t, []string{"init execProcess"}, steps(started), p.output())
	last := -1
	for _, call := range []string{"init execProcess: close_range", "init execProcess: seccomp", "init execProcess: execve /bin/sh"} {
		i := indexOf(started, call)
		if assert.True(t, i >= 0, "no pause before %q in:\n%s", call, p.output()) {
			assert.Greater(t, i, last, "%q out of order", call)
			last = i
		}
	}
	if len(started) > 0 && len(created) > 0 {
		assert.Equal(t, created[len(created)-1].pid, started[0].pid, "the init's pid at start")
	}
	tty.expect(t, "started after the pauses")
	r.waitStatus(id, "stopped")
	r.must("delete", id)

	id = newID(t)
	tty, created = create("echo should not run", id, func(stepPrompt) string { return "c" })
	assert.Len(t, created, 1, "pauses of create after c")
	p = runtimePty("start", id)
	started, code = stepThrough(t, p, func(s stepPrompt) string {
		if strings.HasPrefix(s.String(), "init execProcess: seccomp") {
			return "q"
		}
		return ""
	})
	assert.Equal(t, 1, code, p.output())
	assert.Contains(t, p.output(), "aborted at the step prompt (q)")
	if assert.NotEmpty(t, started) {
		assert.True(t, strings.HasPrefix(started[len(started)-1].String(), "init execProcess: seccomp"), "the last pause: %v", started[len(started)-1])
	}
	r.waitStatus(id, "stopped")
	assert.NotContains(t, tty.output(), "should not run")
	r.must("delete", id)
}

// TestStepThroughDaemon: `minidock run --step` through the daemon: the
// shim's runtime pauses, and the prompts reach the client's terminal over
// the step stream (POST /containers/{id}/step), through the create and
// the start, up to execve; Enter goes on, and the container runs. Then q
// at the seccomp pause of the start, and q before pivot_root in the
// create: the run fails saying so, and the engine's leak checks find
// nothing left.
func TestStepThroughDaemon(t *testing.T) {
	e := newEngine(t)
	if e.runtime != "" {
		t.Skip("step mode needs minidock's own runtime")
	}
	e.importBusybox("busybox:step")
	// with no_new_privs the seccomp filter is loaded last, in execProcess
	run := func(script string) *ptyCommand {
		return startPty(t, nil, binary, "-H", "unix://"+e.sock, "run", "--rm", "--step", "--security-opt", "no-new-privileges", "busybox:step", "sh", "-c", script)
	}
	p := run("echo through the daemon")
	ps, code := stepThrough(t, p, func(s stepPrompt) string {
		if s.step == "finishProcess" || s.step == "prepareRootfs" {
			return "s"
		}
		return ""
	})
	out := p.output()
	require.Equal(t, 0, code, out)
	// created by the shim, started later: the pauses go on through the
	// start, up to execve
	assert.Equal(t, []string{
		"runtime createCgroup", "runtime startInit",
		"init setupNamespaces", "init prepareRootfs", "init enterRootfs", "init finalizeRootfs", "init finishProcess", "init execProcess",
	}, steps(ps), "the steps paused in, in order:\n%s", out)
	last := -1
	for _, call := range []string{"init enterRootfs: pivot_root ., .", "init execProcess: close_range", "init execProcess: seccomp", "init execProcess: execve /bin/sh"} {
		i := indexOf(ps, call)
		if assert.True(t, i >= 0, "no pause before %q in:\n%s", call, out) {
			assert.Greater(t, i, last, "%q out of order", call)
			last = i
		}
	}
	// the container's output comes after the last prompt
	ran := regexp.MustCompile(`(?m)^through the daemon\r?$`).FindStringIndex(out)
	if assert.NotNil(t, ran, "no output of the container:\n%s", out) {
		assert.Greater(t, ran[0], strings.LastIndex(out, "q: abort > "), "the output before the last prompt:\n%s", out)
	}

	p = run("echo should not run")
	ps, code = stepThrough(t, p, func(s stepPrompt) string {
		switch {
		case strings.HasPrefix(s.String(), "init execProcess: seccomp"):
			return "q"
		case s.step == "finishProcess" || s.step == "prepareRootfs":
			return "s"
		}
		return ""
	})
	out = p.output()
	assert.Equal(t, 125, code, out)
	assert.Contains(t, out, "aborted at the step prompt (q)")
	if assert.NotEmpty(t, ps) {
		assert.True(t, strings.HasPrefix(ps[len(ps)-1].String(), "init execProcess: seccomp"), "the last pause: %v", ps[len(ps)-1])
	}
	assert.NotRegexp(t, `(?m)^should not run\r?$`, out)
	assert.True(t, waitFor(10*time.Second, func() bool { return strings.TrimSpace(e.mustCLI("ps", "-aq")) == "" }), "containers left: %s", e.mustCLI("ps", "-a"))

	p = run("echo should not run")
	_, code = stepThrough(t, p, func(s stepPrompt) string {
		if strings.HasPrefix(s.String(), "init enterRootfs: pivot_root") {
			return "q"
		}
		return ""
	})
	out = p.output()
	assert.NotEqual(t, 0, code, out)
	assert.Contains(t, out, "aborted at the step prompt (q)")
	assert.NotRegexp(t, `(?m)^should not run\r?$`, out)
	assert.True(t, waitFor(10*time.Second, func() bool { return strings.TrimSpace(e.mustCLI("ps", "-aq")) == "" }), "containers left: %s", e.mustCLI("ps", "-a"))

	// no terminal: a clear error, and no container made
	c := exec.Command(binary, "-H", "unix://"+e.sock, "run", "--rm", "--step", "busybox:step", "true")
	c.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	noTTY, code := e.command(c)
	assert.Equal(t, 125, code, noTTY)
	assert.Contains(t, noTTY, "run --step prompts on the controlling terminal, and the client has none")
	assert.Empty(t, strings.TrimSpace(e.mustCLI("ps", "-aq")))
}
