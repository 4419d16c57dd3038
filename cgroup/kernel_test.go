package cgroup

// Real-kernel tests: every test here makes real cgroups and real processes
// as root. On a hybrid or legacy host they run the v1 driver (twice on a
// hybrid host: with and without the cgroup2 extras); on a pure v2 host (the
// VM of `make vm-test`) they run the v2 driver.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"minidock/internal/testutil"
)

// hostModes lists the modes this host can run, from DetectMode.
func hostModes(t *testing.T) []Mode {
	t.Helper()
	testutil.RequireRoot(t)
	t.Setenv(ModeEnv, "")
	m, err := DetectMode()
	if err != nil {
		t.Fatal(err)
	}
	if m == Hybrid {
		return []Mode{Hybrid, Legacy}
	}
	return []Mode{m}
}

// forEachMode runs f as a subtest for each mode of this host.
func forEachMode(t *testing.T, f func(t *testing.T, mode Mode)) {
	for _, mode := range hostModes(t) {
		t.Run(mode.String(), func(t *testing.T) { f(t, mode) })
	}
}

var testSeq atomic.Int64

// uniqueName is a cgroup name that no other test, and no other run, uses.
func uniqueName() string {
	return fmt.Sprintf("minidock-test-%d-%d", os.Getpid(), testSeq.Add(1))
}

// cgroupMounts lists every cgroup and cgroup2 mount point of this host.
func cgroupMounts(t testing.TB) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		sep := slices.Index(f, "-")
		if sep > 4 && len(f) > sep+1 && (f[sep+1] == "cgroup" || f[sep+1] == "cgroup2") {
			out = append(out, f[4])
		}
	}
	return out
}

// existing lists the directories named top that exist in any cgroup mount.
func existing(t testing.TB, top string) []string {
	t.Helper()
	var found []string
	for _, mp := range cgroupMounts(t) {
		if _, err := os.Stat(filepath.Join(mp, top)); err == nil {
			found = append(found, filepath.Join(mp, top))
		}
	}
	return found
}

// newTestManager returns an uncreated Manager for /<unique>/c and makes
// sure, when the test ends, that Destroy works and that nothing at all is
// left under /<unique> in any hierarchy.
func newTestManager(t *testing.T, mode Mode) Manager {
	t.Helper()
	testutil.RequireRoot(t)
	top := uniqueName()
	m, err := newManager(mode, "/"+top+"/c", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Destroy(); err != nil {
			t.Errorf("Destroy: %v", err)
		}
		for _, d := range existing(t, top) {
			if err := rmdir(nil, d); err != nil {
				t.Errorf("leaked cgroup: %v", err)
			}
		}
	})
	return m
}

// createTestManager is newTestManager followed by Create(r).
func createTestManager(t *testing.T, mode Mode, r *specs.LinuxResources) Manager {
	t.Helper()
	m := newTestManager(t, mode)
	if err := m.Create(r); err != nil {
		t.Fatalf("Create: %v", err)
	}
	return m
}

// proc is a busybox shell started into a cgroup.
type proc struct {
	cmd  *exec.Cmd
	out  *os.File      // stdout and stderr
	done chan struct{} // closed once the shell is reaped
}

// output returns what the shell and its children have printed so far.
func (p *proc) output() string {
	b, _ := os.ReadFile(p.out.Name())
	return string(b)
}

// start runs script under busybox sh inside m. The shell first blocks on
// `read` until AddProc has moved it, so all its work is charged to m. When
// the test ends every process in m is killed and the shell reaped.
func start(t *testing.T, m Manager, script string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(testutil.BusyboxPath(t), "sh", "-c", "read _; "+script)}
	// A file, not a pipe: Wait would otherwise wait for every child that
	// inherited the pipe to exit too.
	out, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { out.Close() })
	p.out = out
	p.cmd.Stdout, p.cmd.Stderr = out, out
	stdin, err := p.cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.done = make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		if err := m.KillAll(unix.SIGKILL); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Errorf("KillAll: %v", err)
		}
		_ = p.cmd.Process.Kill()
		<-p.done
	})
	if err := m.AddProc(p.cmd.Process.Pid); err != nil {
		t.Fatalf("AddProc: %v", err)
	}
	if _, err := io.WriteString(stdin, "go\n"); err != nil {
		t.Fatal(err)
	}
	stdin.Close()
	return p
}

// wait returns how the shell ended. If it has not ended after a generous
// while the test fails (and its cleanup kills it).
func (p *proc) wait(t *testing.T) syscall.WaitStatus {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Fatal("the shell did not end")
	}
	return p.cmd.ProcessState.Sys().(syscall.WaitStatus)
}

// waitExec waits until the shell has exec'd the program named comm.
func (p *proc) waitExec(t *testing.T, comm string) {
	t.Helper()
	eventually(t, "the shell to exec "+comm, func() bool {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", p.cmd.Process.Pid))
		return strings.TrimSpace(string(b)) == comm
	})
}

// eventually polls cond until it holds; the deadline only guards against
// a hang, it measures nothing.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func i64(v int64) *int64   { return &v }
func u64(v uint64) *uint64 { return &v }
func u16(v uint16) *uint16 { return &v }
func boolp(v bool) *bool   { return &v }
func pidsLimit(n int64) *specs.LinuxResources {
	return &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: &n}}
}

func TestForkLoopStopsAtPidsMax(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode Mode) {
		const limit = 6
		m := createTestManager(t, mode, pidsLimit(limit))
		p := start(t, m, `i=0; while [ $i -lt 50 ]; do sleep 1000 & i=$((i+1)); done; echo "all forked"`)
		ws := p.wait(t)
		out := p.output()
		if !strings.Contains(out, "can't fork") || strings.Contains(out, "all forked") {
			t.Fatalf("fork loop was not stopped (status %v): %q", ws, out)
		}
		// The shell was one of the `limit` tasks; the sleeps it made fill the rest.
		pids, err := m.Pids()
		if err != nil {
			t.Fatal(err)
		}
		if len(pids) != limit-1 {
			t.Errorf("%d processes left in the cgroup, want %d (pids.max %d minus the shell)", len(pids), limit-1, limit)
		}
		st, err := m.Stats()
		if err != nil {
			t.Fatal(err)
		}
		if st.Pids.Limit != limit || st.Pids.Current != limit-1 {
			t.Errorf("Stats().Pids = %+v, want current %d limit %d", st.Pids, limit-1, limit)
		}
	})
}

func TestMemoryHogIsOOMKilled(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode Mode) {
		limit := int64(32 << 20)
		m := createTestManager(t, mode, &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit, Swap: &limit}})
		if n, err := m.OOMKillCount(); err != nil || n != 0 {
			t.Fatalf("OOMKillCount before = %d, %v; want 0", n, err)
		}
		// dd allocates one 64 MiB buffer and fills it: twice the limit.
		p := start(t, m, "exec dd if=/dev/zero of=/dev/null bs=64M count=1")
		ws := p.wait(t)
		if !ws.Signaled() || ws.Signal() != unix.SIGKILL {
			t.Fatalf("memory hog ended with %v, want killed by SIGKILL; output %q", ws, p.output())
		}
		n, err := m.OOMKillCount()
		if err != nil {
			t.Fatal(err)
		}
		if n < 1 {
			t.Errorf("OOMKillCount = %d after the OOM kill, want at least 1", n)
		}
		st, err := m.Stats()
		if err != nil {
			t.Fatal(err)
		}
		if st.Memory.Usage.Limit != uint64(limit) || st.Memory.Usage.Max < uint64(limit)/2 {
			t.Errorf("Stats().Memory.Usage = %+v, want limit %d and a peak near it", st.Memory.Usage, limit)
		}
	})
}

func TestBusyLoopIsThrottledByCPUQuota(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode Mode) {
		// 2 ms of CPU in every 10 ms period.
		m := createTestManager(t, mode, &specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: i64(2000), Period: u64(10000)}})
		start(t, m, "while :; do :; done")
		var st *Stats
		eventually(t, "cpu throttling of a busy loop", func() bool {
			var err error
			if st, err = m.Stats(); err != nil {
				t.Fatal(err)
			}
			return st.CPU.Throttling.ThrottledPeriods > 0
		})
		if st.CPU.Usage.Total == 0 || st.CPU.Throttling.Periods < st.CPU.Throttling.ThrottledPeriods {
			t.Errorf("inconsistent cpu stats %+v", st.CPU)
		}
	})
}

func TestFreezeStopsCounterAndThawRestartsIt(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode Mode) {
		m := createTestManager(t, mode, nil)
		counter := filepath.Join(t.TempDir(), "counter")
		start(t, m, fmt.Sprintf("i=0; while :; do i=$((i+1)); echo $i > %s; done", counter))
		read := func() string { b, _ := os.ReadFile(counter); return string(b) }
		first := read()
		eventually(t, "the counter to run", func() bool { v := read(); return v != "" && v != first })

		if err := m.Freeze(); err != nil {
			t.Fatalf("Freeze: %v", err)
		}
		frozen := read()
		time.Sleep(300 * time.Millisecond)
		if v := read(); v != frozen {
			t.Fatalf("counter moved from %q to %q while frozen", frozen, v)
		}
		if err := m.Thaw(); err != nil {
			t.Fatalf("Thaw: %v", err)
		}
		eventually(t, "the counter to move after Thaw", func() bool { v := read(); return v != "" && v != frozen })
	})
}

func TestKillAll(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode Mode) {
		for _, c := range []struct {
			name   string
			sig    unix.Signal
			paused bool
		}{
			{"SIGKILL", unix.SIGKILL, false},
			{"SIGTERM", unix.SIGTERM, false},
			{"SIGKILL while frozen", unix.SIGKILL, true},
		} {
			t.Run(c.name, func(t *testing.T) {
				m := createTestManager(t, mode, nil)
				p := start(t, m, "sleep 1000 & sleep 1000 & exec sleep 1000")
				eventually(t, "3 processes", func() bool { pids, _ := m.Pids(); return len(pids) == 3 })
				if c.paused {
					if err := m.Freeze(); err != nil {
						t.Fatal(err)
					}
				}
				if err := m.KillAll(c.sig); err != nil {
					t.Fatalf("KillAll(%v): %v", c.sig, err)
				}
				if ws := p.wait(t); !ws.Signaled() || ws.Signal() != c.sig {
					t.Errorf("shell ended with %v, want signal %v", ws, c.sig)
				}
				eventually(t, "an empty cgroup", func() bool {
					pids, err := m.Pids()
					return err == nil && len(pids) == 0
				})
			})
		}
	})
}

func TestDestroyRemovesEveryDirectory(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode Mode) {
		top := uniqueName()
		m, err := newManager(mode, "/"+top+"/c", "")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			for _, d := range existing(t, top) {
				_ = removeTree(nil, d)
			}
		})
		if err := m.Create(pidsLimit(10)); err != nil {
			t.Fatal(err)
		}
		// A nested cgroup, as a container with its own cgroup namespace
		// makes, holding the process (v2 allows processes only in leaves
		// once controllers are enabled below).
		sub, err := newManager(mode, "/"+top+"/c/sub", "")
		if err != nil {
			t.Fatal(err)
		}
		if err := sub.Create(nil); err != nil {
			t.Fatal(err)
		}
		p := start(t, sub, "exec sleep 1000")
		eventually(t, "the parent to see its child's process", func() bool { pids, _ := m.Pids(); return len(pids) == 1 })
		want := 0
		for _, mp := range cgroupMounts(t) {
			if _, err := os.Stat(filepath.Join(mp, top, "c", "sub")); err == nil {
				want++
			}
		}
		if want == 0 {
			t.Fatal("Create made no directory in any hierarchy")
		}
		if err := m.KillAll(unix.SIGKILL); err != nil {
			t.Fatal(err)
		}
		if ws := p.wait(t); ws.Signal() != unix.SIGKILL {
			t.Errorf("process in the sub-cgroup ended with %v, want SIGKILL", ws)
		}
		if err := m.Destroy(); err != nil {
			t.Fatalf("Destroy: %v", err)
		}
		for _, mp := range cgroupMounts(t) {
			if _, err := os.Stat(filepath.Join(mp, top, "c")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s still there after Destroy (%v)", filepath.Join(mp, top, "c"), err)
			}
		}
		if err := m.Destroy(); err != nil {
			t.Errorf("second Destroy: %v", err)
		}
	})
}

func TestBadInputCreatesNothing(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode Mode) {
		cases := []struct {
			name string
			r    *specs.LinuxResources
			want string
		}{
			{"cpu quota below 1ms", &specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: i64(500)}}, "below the kernel's minimum"},
			{"cpu period too short", &specs.LinuxResources{CPU: &specs.LinuxCPU{Period: u64(100)}}, "cpu.period 100"},
			{"cpu shares 1", &specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: u64(1)}}, "cpu.shares 1"},
			{"swap below memory", &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(64 << 20), Swap: i64(32 << 20)}}, "below memory.limit"},
			{"negative pids", pidsLimit(-5), "pids.limit -5"},
			{"blkio weight 5", &specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{Weight: u16(5)}}, "blockIO.weight 5"},
			{"unknown controller", &specs.LinuxResources{Unified: map[string]string{"bogus.max": "1"}}, map[bool]string{true: `controller "bogus"`, false: "needs cgroup v2"}[mode == Unified]},
			{"hugepages", &specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 1}}}, "not supported"},
			// Passes our checks, refused by the kernel: Create must undo its mkdirs.
			{"cpu the kernel lacks", &specs.LinuxResources{CPU: &specs.LinuxCPU{Cpus: "4095"}}, "cpuset.cpus"},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				testutil.RequireRoot(t)
				top := uniqueName()
				m, err := newManager(mode, "/"+top+"/c", "")
				if err != nil {
					t.Fatal(err)
				}
				err = m.Create(c.r)
				if err == nil || !strings.Contains(err.Error(), c.want) {
					t.Errorf("Create: got error %v, want one containing %q", err, c.want)
				}
				if left := existing(t, top); len(left) > 0 {
					t.Errorf("failed Create left %v", left)
					for _, d := range left {
						_ = removeTree(nil, d)
					}
				}
			})
		}
	})
}

func TestBadPathIsRefusedByNew(t *testing.T) {
	for _, c := range []struct{ path, id, want string }{
		{"/../../etc", "x", "escapes /"},
		{"a/../../b", "x", "escapes /minidock"},
		{"", "", "cannot name a cgroup"},
		{"", "../x", "cannot name a cgroup"},
		{"/", "x", "root cgroup"},
		{"system.slice:docker:abc", "x", "systemd"},
	} {
		if _, err := New(c.path, c.id); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%q, %q): got %v, want an error containing %q", c.path, c.id, err, c.want)
		}
	}
}

func TestNewPaths(t *testing.T) {
	for _, c := range []struct{ path, id, want string }{
		{"", "abc", "/minidock/abc"},
		{"/my/own/abc", "abc", "/my/own/abc"},
		{"group/abc", "abc", "/minidock/group/abc"},
		{"/a/./b/../c", "x", "/a/c"},
	} {
		m, err := New(c.path, c.id)
		if err != nil {
			t.Fatalf("New(%q, %q): %v", c.path, c.id, err)
		}
		if m.Path() != c.want {
			t.Errorf("New(%q, %q).Path() = %q, want %q", c.path, c.id, m.Path(), c.want)
		}
	}
}

func TestModeOverride(t *testing.T) {
	testutil.RequireRoot(t)
	t.Setenv(ModeEnv, "")
	detected, err := DetectMode()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(ModeEnv, "v3")
	if _, err := DetectMode(); err == nil || !strings.Contains(err.Error(), ModeEnv) {
		t.Errorf("bogus %s: got %v", ModeEnv, err)
	}
	other := Unified
	if detected == Unified {
		other = Legacy
	}
	t.Setenv(ModeEnv, other.String())
	if _, err := New("", "x"); err == nil || !strings.Contains(err.Error(), "this host's cgroups are "+detected.String()) {
		t.Errorf("forcing %s on a %s host: got %v", other, detected, err)
	}
	if detected == Hybrid {
		t.Setenv(ModeEnv, "legacy")
		if m, err := DetectMode(); err != nil || m != Legacy {
			t.Errorf("legacy on a hybrid host: got %v, %v", m, err)
		}
	}
}

func TestStatsAndUpdate(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode Mode) {
		mem := int64(32 << 20)
		m := createTestManager(t, mode, &specs.LinuxResources{
			Memory: &specs.LinuxMemory{Limit: &mem, Swap: &mem},
			CPU:    &specs.LinuxCPU{Quota: i64(50000), Period: u64(100000), Shares: u64(512)},
			Pids:   &specs.LinuxPids{Limit: i64(10)},
		})
		// Memory used before AddProc stays charged where it was; what
		// sleep maps after exec is charged here.
		start(t, m, "exec sleep 1000").waitExec(t, "sleep")
		st, err := m.Stats()
		if err != nil {
			t.Fatal(err)
		}
		if st.Memory.Usage.Limit != uint64(mem) || st.Pids.Limit != 10 || st.Pids.Current != 1 || st.Memory.Usage.Usage == 0 {
			t.Errorf("Stats: memory %+v pids %+v", st.Memory.Usage, st.Pids)
		}
		j, err := json.Marshal(st)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{`"cpu":{"usage":`, `"throttling":`, `"memory":{`, `"pids":{"current":1,"limit":10}`, `"blkio":`} {
			if !bytes.Contains(j, []byte(k)) {
				t.Errorf("stats JSON lacks %s: %s", k, j)
			}
		}

		// Grow memory and memory+swap together (v1 needs memsw first), then shrink them.
		for _, v := range []int64{128 << 20, 16 << 20} {
			err := m.Update(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &v, Swap: &v}, Pids: &specs.LinuxPids{Limit: i64(-1)}})
			if err != nil {
				t.Fatalf("Update memory to %d: %v", v, err)
			}
			if st, err = m.Stats(); err != nil {
				t.Fatal(err)
			}
			if st.Memory.Usage.Limit != uint64(v) || st.Pids.Limit != 0 {
				t.Errorf("after Update(%d): memory limit %d, pids limit %d (want %d, 0 = max)", v, st.Memory.Usage.Limit, st.Pids.Limit, v)
			}
		}
		if err := m.Update(&specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: i64(20000)}}); err != nil {
			t.Fatal(err)
		}
		if got := cpuQuota(t, m); got != "20000 100000" {
			t.Errorf("quota/period after Update = %q, want 20000 100000", got)
		}
		// A refused update changes nothing.
		if err := m.Update(&specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: i64(10)}}); err == nil {
			t.Error("Update with a 10µs quota succeeded")
		}
		if got := cpuQuota(t, m); got != "20000 100000" {
			t.Errorf("quota/period after refused Update = %q", got)
		}
	})
}

// cpuQuota reads the quota and period back from the kernel as "Q P".
func cpuQuota(t *testing.T, m Manager) string {
	t.Helper()
	switch m := m.(type) {
	case *v2:
		s, err := readFile(m.dir, "cpu.max")
		if err != nil {
			t.Fatal(err)
		}
		return s
	case *v1:
		q, err := readFile(m.dir("cpu"), "cpu.cfs_quota_us")
		if err != nil {
			t.Fatal(err)
		}
		p, err := readFile(m.dir("cpu"), "cpu.cfs_period_us")
		if err != nil {
			t.Fatal(err)
		}
		return q + " " + p
	}
	t.Fatalf("unknown manager %T", m)
	return ""
}

func TestCpusetPinsProcess(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode Mode) {
		m := createTestManager(t, mode, &specs.LinuxResources{CPU: &specs.LinuxCPU{Cpus: "0", Mems: "0"}})
		p := start(t, m, "exec sleep 1000")
		p.waitExec(t, "sleep")
		if got := procStatus(t, p.cmd.Process.Pid, "Cpus_allowed_list"); got != "0" {
			t.Errorf("Cpus_allowed_list = %q, want 0", got)
		}
	})
}

// procStatus returns one field of /proc/PID/status.
func procStatus(t *testing.T, pid int, key string) string {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && k == key {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no %s in /proc/%d/status", key, pid)
	return ""
}

// TestStartInside: a child forked by a thread that entered the cgroup
// (EnterThread, v1) and cloned into it (CloneInto, v2) is born in the
// cgroup in every hierarchy, and the thread is back where it was after.
func TestStartInside(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode Mode) {
		m := createTestManager(t, mode, pidsLimit(5))
		done := make(chan error, 1)
		var out []byte
		var before, after string
		go func() {
			runtime.LockOSThread()
			b, _ := os.ReadFile("/proc/thread-self/cgroup")
			before = string(b)
			leave, err := m.EnterThread()
			if err != nil {
				done <- err
				return
			}
			cmd := exec.Command(testutil.BusyboxPath(t), "cat", "/proc/self/cgroup")
			cmd.SysProcAttr = &syscall.SysProcAttr{}
			closeDir, err := m.CloneInto(cmd.SysProcAttr)
			if err == nil {
				out, err = cmd.Output()
				closeDir()
			}
			if lerr := leave(); lerr != nil {
				done <- lerr // the thread stays locked: it exits with this goroutine
				return
			}
			a, _ := os.ReadFile("/proc/thread-self/cgroup")
			after = string(a)
			runtime.UnlockOSThread()
			done <- err
		}()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if before != after {
			t.Errorf("the thread was not moved back:\nbefore %s\nafter %s", before, after)
		}
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		in := 0
		for _, l := range lines {
			if strings.HasSuffix(l, ":"+m.Path()) {
				in++
			}
		}
		if in == 0 {
			t.Errorf("child born outside %s:\n%s", m.Path(), out)
		}
		for _, l := range lines {
			f := strings.SplitN(l, ":", 3)
			if len(f) == 3 && joins(mode, f[1]) && f[2] != m.Path() {
				t.Errorf("child in %q, want %s in that hierarchy", l, m.Path())
			}
		}
	})
}

// joins reports whether a Manager of mode puts processes in the hierarchy
// /proc/self/cgroup names key.
func joins(mode Mode, key string) bool {
	if key == "" {
		return mode != Legacy
	}
	for _, c := range strings.Split(key, ",") {
		if slices.Contains(v1Controllers, c) {
			return mode != Unified
		}
	}
	return false
}

// TestDefaultParentRemovedWithLastContainer: the shared /minidock parent
// goes away with the last container in it, and a Create racing with that
// removal still succeeds.
func TestDefaultParentRemovedWithLastContainer(t *testing.T) {
	testutil.RequireRoot(t)
	parent := filepath.Join(Root, "pids", DefaultParent)
	if _, err := os.Stat(parent); err == nil {
		t.Skipf("%s is in use by something else here; cannot test its removal", parent)
	}
	for i := 0; i < 20; i++ {
		a, err := New("", fmt.Sprintf("mdtest-parent-%d-a%d", os.Getpid(), i))
		if err != nil {
			t.Fatal(err)
		}
		b, err := New("", fmt.Sprintf("mdtest-parent-%d-b%d", os.Getpid(), i))
		if err != nil {
			t.Fatal(err)
		}
		if err := a.Create(nil); err != nil {
			t.Fatal(err)
		}
		done := make(chan error)
		go func() { done <- b.Create(nil) }()
		if err := a.Destroy(); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatalf("Create racing with the parent's removal: %v", err)
		}
		if err := b.Destroy(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(parent); !os.IsNotExist(err) {
			t.Fatalf("%s still there after its last container was destroyed (%v)", parent, err)
		}
	}
}
