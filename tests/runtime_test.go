package tests

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"minidock/internal/testutil"
)

func TestRuntimePid1AndHostname(t *testing.T) {
	r := newRuntime(t)
	out, code := r.runIn(t, func(s *specs.Spec) {
		s.Hostname = "box-one"
		s.Process.Args = []string{"sh", "-c", "echo pid=$$; hostname; cat /proc/1/cmdline | tr '\\0' ' '"}
	})
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "pid=1\n")
	assert.Contains(t, out, "box-one\n")
	assert.Contains(t, out, "sh -c echo pid=$$")
}

func TestRuntimeRootIsTheRootfs(t *testing.T) {
	r := newRuntime(t)
	dir := bundle(t, sh("cat /marker; ls /"))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "rootfs/marker"), []byte("in-the-rootfs\n"), 0o644))
	out := r.must("run", "--bundle", dir, newID(t))
	assert.Contains(t, out, "in-the-rootfs")
	// the host's top-level directories that the rootfs lacks are not there
	assert.NotContains(t, out, "lib64")
	assert.NotContains(t, out, "boot")
}

func TestRuntimeHostMountsUnchanged(t *testing.T) {
	r := newRuntime(t)
	before := testutil.Mounts(t)
	dir := bundle(t, sh("mount -t tmpfs none /tmp; sleep 100"))
	id := newID(t)
	r.must("run", "--detach", "--bundle", dir, id)
	r.waitStatus(id, "running")
	time.Sleep(100 * time.Millisecond)
	assert.Equal(t, before, testutil.Mounts(t), "host mount table changed while the container runs")
	r.must("kill", id, "KILL")
	st := r.state(id)
	r.must("delete", "--force", id)
	assert.Equal(t, before, testutil.Mounts(t), "host mount table changed after delete")
	assert.True(t, processGone(st.Pid))
}

func TestRuntimeOnlyLoopbackInNewNetns(t *testing.T) {
	r := newRuntime(t)
	out, code := r.runIn(t, sh("ls /sys/class/net"))
	require.Equal(t, 0, code, out)
	assert.Equal(t, "lo", strings.TrimSpace(out))
}

func TestRuntimeIPCNamespaceIsolated(t *testing.T) {
	r := newRuntime(t)
	name := fmt.Sprintf("mdt-ipc-%d", os.Getpid())
	dir := bundle(t, sh("touch /dev/mqueue/"+name+" && ls /dev/mqueue && sleep 100"))
	id := newID(t)
	output := r.runDetached(t, dir, id)
	require.Eventually(t, func() bool {
		return strings.Contains(output(), name)
	}, 5*time.Second, 20*time.Millisecond, "the queue made inside is listed inside")
	// The same name opened from the host's IPC namespace does not exist.
	p, _ := unix.BytePtrFromString(name)
	fd, _, errno := unix.Syscall6(unix.SYS_MQ_OPEN, uintptr(unsafePointer(p)), uintptr(unix.O_RDONLY), 0, 0, 0, 0)
	if errno == 0 {
		unix.Close(int(fd))
		t.Fatalf("message queue %s made in the container is visible on the host", name)
	}
	assert.Equal(t, unix.ENOENT, errno)
}

func TestRuntimeUserNamespaceMapping(t *testing.T) {
	r := newRuntime(t)
	dir := bundle(t, func(s *specs.Spec) {
		s.Process.Args = []string{"sh", "-c", "cat /proc/self/uid_map; id -u; sleep 100"}
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
		s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
		s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
		// sysfs needs CAP_SYS_ADMIN over the network namespace; keep it
		// simple and read-only bind /sys from the host instead
		for i, m := range s.Mounts {
			if m.Destination == "/sys" {
				s.Mounts[i] = specs.Mount{Destination: "/sys", Type: "none", Source: "/sys", Options: []string{"rbind", "nosuid", "noexec", "nodev", "ro"}}
			}
		}
		var mounts []specs.Mount
		for _, m := range s.Mounts {
			if m.Destination != "/sys/fs/cgroup" {
				mounts = append(mounts, m)
			}
		}
		s.Mounts = mounts
	})
	id := newID(t)
	output := r.runDetached(t, dir, id)
	var text string
	require.Eventually(t, func() bool {
		text = output()
		return strings.Count(text, "\n") >= 2
	}, 5*time.Second, 20*time.Millisecond)
	assert.Regexp(t, `^\s*0\s+100000\s+65536\n0\n`, text)
	// from outside, the container's root is uid 100000
	st := r.state(id)
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", st.Pid))
	require.NoError(t, err)
	assert.Regexp(t, `(?m)^Uid:\s+100000\s+100000`, string(status))

	// exec enters the container's user namespace too
	out2 := r.must("exec", id, "sh", "-c", "cat /proc/self/uid_map; id -u; readlink /proc/self/ns/user; readlink /proc/self/ns/mnt")
	lines := strings.Split(strings.TrimSpace(out2), "\n")
	require.Len(t, lines, 4, out2)
	assert.Regexp(t, `^\s*0\s+100000\s+65536$`, lines[0])
	assert.Equal(t, "0", lines[1])
	for i, n := range []string{"user", "mnt"} {
		want, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", st.Pid, n))
		require.NoError(t, err)
		assert.Equal(t, want, lines[2+i], "exec'd process is in the container's %s namespace", n)
	}
}

func TestRuntimeReadonlyRootAndMaskedPaths(t *testing.T) {
	r := newRuntime(t)
	hostTimers, err := os.ReadFile("/proc/timer_list")
	require.NoError(t, err)
	require.NotEmpty(t, hostTimers)
	out, code := r.runIn(t, sh(`touch /newfile && echo WROTE; echo timer_list=$(wc -c < /proc/timer_list); ls /proc/acpi | wc -l; echo x > /proc/sys/kernel/hostname || echo sys-ro`))
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "Read-only file system")
	assert.NotContains(t, out, "WROTE")
	assert.Contains(t, out, "timer_list=0\n", "masked file reads empty")
	assert.Contains(t, out, "sys-ro")
}

func TestRuntimeCapabilitiesMatchConfig(t *testing.T) {
	r := newRuntime(t)
	caps := []string{"CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT"}
	out, code := r.runIn(t, func(s *specs.Spec) {
		s.Process.Args = []string{"sh", "-c", "grep -E '^Cap(Eff|Prm|Bnd|Inh|Amb)' /proc/self/status"}
		s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps}
	})
	require.Equal(t, 0, code, out)
	// CHOWN=0 KILL=5 NET_BIND_SERVICE=10 SYS_CHROOT=18
	want := fmt.Sprintf("%016x", 1<<0|1<<5|1<<10|1<<18)
	assert.Regexp(t, "CapEff:\\s+"+want, out)
	assert.Regexp(t, "CapBnd:\\s+"+want, out)
	assert.Regexp(t, "CapInh:\\s+0{16}", out)
}

func TestRuntimeRlimits(t *testing.T) {
	r := newRuntime(t)
	out, code := r.runIn(t, func(s *specs.Spec) {
		s.Process.Args = []string{"sh", "-c", "ulimit -n; ulimit -Hn"}
		s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 777, Hard: 888}}
	})
	require.Equal(t, 0, code, out)
	assert.Equal(t, "777\n888\n", out)

	// A hard limit above the caller's (20000 here, no CAP_SYS_RESOURCE)
	// is refused with an error that says so.
	var cur unix.Rlimit
	require.NoError(t, unix.Getrlimit(unix.RLIMIT_NOFILE, &cur))
	if hasCap(24) { // CAP_SYS_RESOURCE
		t.Skip("this host's root has CAP_SYS_RESOURCE: raising rlimits is allowed")
	}
	out, code = r.runIn(t, func(s *specs.Spec) {
		s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: cur.Max + 1, Hard: cur.Max + 1}}
	})
	assert.NotEqual(t, 0, code)
	if !r.runc {
		assert.Contains(t, out, "RLIMIT_NOFILE")
		assert.Contains(t, out, "CAP_SYS_RESOURCE")
	}
}

func hasCap(n int) bool {
	data, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, "CapEff:") {
			v, _ := strconv.ParseUint(strings.TrimSpace(l[7:]), 16, 64)
			return v&(1<<uint(n)) != 0
		}
	}
	return false
}

func TestRuntimeEnvCwdUser(t *testing.T) {
	r := newRuntime(t)
	out, code := r.runIn(t, func(s *specs.Spec) {
		s.Process.Args = []string{"sh", "-c", "echo FOO=$FOO; pwd; id"}
		s.Process.Env = append(s.Process.Env, "FOO=bar baz")
		s.Process.Cwd = "/tmp"
		s.Process.User = specs.User{UID: 1000, GID: 1001, AdditionalGids: []uint32{2000, 2001}}
	})
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "FOO=bar baz\n")
	assert.Contains(t, out, "/tmp\n")
	assert.Contains(t, out, "uid=1000 gid=1001 groups=2000,2001")
}

func TestRuntimeExitCodeAndSignal(t *testing.T) {
	r := newRuntime(t)
	_, code := r.runIn(t, sh("exit 42"))
	assert.Equal(t, 42, code)

	// a container killed by a signal reports 128+signal
	dir := bundle(t, sh("sleep 100"))
	id := newID(t)
	c := r.cmd("run", "--bundle", dir, id)
	require.NoError(t, c.Start())
	require.Eventually(t, func() bool {
		out, code := r.run("state", id)
		return code == 0 && strings.Contains(out, `"running"`)
	}, 10*time.Second, 20*time.Millisecond)
	r.must("kill", id, "KILL")
	err := c.Wait()
	ee, ok := err.(*exec.ExitError)
	require.True(t, ok, "run should fail: %v", err)
	assert.Equal(t, 137, ee.ExitCode())
}

func TestRuntimeLifecycleCreateStartKillDelete(t *testing.T) {
	r := newRuntime(t)
	dir := bundle(t, sh("echo started > /dev/shm/x; sleep 100"))
	id := newID(t)
	pidFile := filepath.Join(t.TempDir(), "pid")
	r.must("create", "--bundle", dir, "--pid-file", pidFile, id)
	st := r.state(id)
	assert.Equal(t, "created", st.Status)
	assert.Equal(t, id, st.ID)
	assert.Equal(t, dir, st.Bundle)
	pidText, err := os.ReadFile(pidFile)
	require.NoError(t, err)
	assert.Equal(t, strconv.Itoa(st.Pid), strings.TrimSpace(string(pidText)))
	// the process has not run yet
	cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", st.Pid))
	assert.NotContains(t, string(cmdline), "sleep")

	r.must("start", id)
	assert.Equal(t, "running", r.state(id).Status)
	_, code := r.run("start", id)
	assert.NotEqual(t, 0, code, "start twice must fail")
	_, code = r.run("delete", id)
	assert.NotEqual(t, 0, code, "delete of a running container without --force must fail")

	r.must("kill", id, "TERM") // sh as pid 1 ignores TERM: only KILL ends it
	time.Sleep(100 * time.Millisecond)
	r.must("kill", id, "9")
	r.waitStatus(id, "stopped")
	_, code = r.run("kill", id, "KILL")
	assert.NotEqual(t, 0, code, "kill of a stopped container must fail")
	r.must("delete", id)
	assert.True(t, processGone(st.Pid))
	_, code = r.run("state", id)
	assert.NotEqual(t, 0, code, "state of a deleted container must fail")
	r.must("delete", "--force", id) // gone already: fine with --force
	_, err = os.Stat(filepath.Join(r.root, id))
	assert.True(t, os.IsNotExist(err), "state directory left behind")
}

func TestRuntimeDeleteCreatedContainer(t *testing.T) {
	r := newRuntime(t)
	id := newID(t)
	r.must("create", "--bundle", bundle(t, sh("sleep 100")), id)
	pid := r.state(id).Pid
	if !r.runc {
		// the OCI spec: deleting a container that is not stopped is an
		// error (runc 1.1 deletes created containers anyway)
		_, code := r.run("delete", id)
		assert.NotEqual(t, 0, code)
	}
	r.must("delete", "--force", id)
	require.Eventually(t, func() bool { return processGone(pid) }, 5*time.Second, 10*time.Millisecond)
}

func TestRuntimeList(t *testing.T) {
	r := newRuntime(t)
	id := newID(t)
	r.must("create", "--bundle", bundle(t, sh("sleep 100")), id)
	defer r.must("delete", "--force", id)
	out := r.must("list")
	assert.Contains(t, out, id)
	assert.Contains(t, out, "created")
	out = r.must("list", "--format", "json")
	assert.Contains(t, out, `"id":"`+id+`"`)
}

func TestRuntimeExec(t *testing.T) {
	r := newRuntime(t)
	dir := bundle(t, func(s *specs.Spec) {
		s.Hostname = "exec-box"
		s.Process.Args = []string{"sh", "-c", "echo inside > /tmp/mark; sleep 100"}
		s.Root.Readonly = false
	})
	id := newID(t)
	r.must("run", "--detach", "--bundle", dir, id)
	defer r.must("delete", "--force", id)
	require.Eventually(t, func() bool {
		_, err := os.Stat(filepath.Join(dir, "rootfs/tmp/mark"))
		return err == nil
	}, 5*time.Second, 20*time.Millisecond)
	out := r.must("exec", id, "sh", "-c", "hostname; cat /tmp/mark; cat /proc/1/cmdline | tr '\\0' ' '; echo; ls /sys/class/net; echo $$")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 5, out)
	assert.Equal(t, "exec-box", lines[0])
	assert.Equal(t, "inside", lines[1])
	assert.Contains(t, lines[2], "sleep 100")
	assert.Equal(t, "lo", lines[3])
	pid, _ := strconv.Atoi(lines[4])
	assert.Greater(t, pid, 1, "exec'd process is in the container's pid namespace, not pid 1")
	assert.Less(t, pid, 100)
	_, code := r.run("exec", id, "sh", "-c", "exit 3")
	assert.Equal(t, 3, code)
	// a program that cannot be found: a shell's 127 (runc fails otherwise)
	out, code = r.run("exec", id, "no-such-program")
	assert.Contains(t, out, "executable file not found")
	if !r.runc {
		assert.Equal(t, 127, code, out)
	} else {
		assert.NotEqual(t, 0, code, out)
	}
}

// consoleSocket listens on a console socket like containerd's shim does and
// returns its path and a channel that delivers the pty master sent to it.
func consoleSocket(t *testing.T) (string, <-chan *os.File) {
	sockPath := filepath.Join(t.TempDir(), "console.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sockPath, Net: "unix"})
	require.NoError(t, err)
	t.Cleanup(func() { l.Close() })
	got := make(chan *os.File, 1)
	go func() {
		conn, err := l.AcceptUnix()
		if err != nil {
			got <- nil
			return
		}
		defer conn.Close()
		buf, oob := make([]byte, 256), make([]byte, unix.CmsgSpace(4))
		_, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
		if err != nil {
			got <- nil
			return
		}
		scms, _ := unix.ParseSocketControlMessage(oob[:oobn])
		fds, _ := unix.ParseUnixRights(&scms[0])
		got <- os.NewFile(uintptr(fds[0]), "master")
	}()
	return sockPath, got
}

func receiveMaster(t *testing.T, got <-chan *os.File) *os.File {
	select {
	case m := <-got:
		require.NotNil(t, m)
		t.Cleanup(func() { m.Close() })
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("no pty master arrived on the console socket")
		return nil
	}
}

// readUntil reads lines from the pty master until one contains want.
func readUntil(t *testing.T, master *os.File, want string) string {
	var out strings.Builder
	sc := bufio.NewScanner(master)
	deadline := time.AfterFunc(5*time.Second, func() { master.Close() })
	defer deadline.Stop()
	for sc.Scan() {
		out.WriteString(sc.Text() + "\n")
		if strings.Contains(sc.Text(), want) {
			break
		}
	}
	return out.String()
}

func TestRuntimeConsoleSocket(t *testing.T) {
	r := newRuntime(t)
	sockPath, got := consoleSocket(t)
	dir := bundle(t, func(s *specs.Spec) {
		s.Process.Terminal = true
		s.Process.Args = []string{"sh", "-c", "tty; [ -t 0 ] && echo stdin-is-tty; read line; echo got:$line"}
	})
	id := newID(t)
	r.must("create", "--console-socket", sockPath, "--bundle", dir, id)
	defer r.run("delete", "--force", id)
	master := receiveMaster(t, got)
	r.must("start", id)
	_, err := master.Write([]byte("hello\n"))
	require.NoError(t, err)
	out := readUntil(t, master, "got:")
	assert.Regexp(t, `/dev/pts/\d+`, out)
	assert.Contains(t, out, "stdin-is-tty")
	assert.Contains(t, out, "got:hello")
}

// A foreground run of a spec with "terminal": true from a stdin that is
// not a terminal (here /dev/null, as in a script) is an error, as runc's
// "provided file is not a console", not a shell waiting forever.
func TestRuntimeRunTerminalWithoutTTY(t *testing.T) {
	r := newRuntime(t)
	dir := bundle(t, func(s *specs.Spec) {
		s.Process.Terminal = true
		s.Process.Args = []string{"sh"}
	})
	id := newID(t)
	defer r.run("delete", "--force", id)
	done := make(chan struct{})
	var out string
	var code int
	go func() { out, code = r.run("run", "--bundle", dir, id); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		r.run("delete", "--force", id)
		t.Fatal("run of a terminal spec without a terminal still waits after 30s")
	}
	require.NotEqual(t, 0, code, out)
	if !r.runc {
		assert.Contains(t, out, "stdin is not a terminal")
	}
}

func TestRuntimeExecTTY(t *testing.T) {
	r := newRuntime(t)
	id := newID(t)
	r.must("run", "--detach", "--bundle", bundle(t, sh("sleep 100")), id)
	defer r.must("delete", "--force", id)
	sockPath, got := consoleSocket(t)
	r.must("exec", "--tty", "--detach", "--console-socket", sockPath, id, "sh", "-c", "tty; [ -t 0 ] && echo exec-stdin-is-tty; read line; echo got:$line")
	master := receiveMaster(t, got)
	_, err := master.Write([]byte("hi\n"))
	require.NoError(t, err)
	out := readUntil(t, master, "got:")
	assert.Regexp(t, `/dev/pts/\d+`, out)
	assert.Contains(t, out, "exec-stdin-is-tty")
	assert.Contains(t, out, "got:hi")
}

func TestRuntimeHooks(t *testing.T) {
	r := newRuntime(t)
	logDir := t.TempDir()
	hook := func(name string) specs.Hook {
		return specs.Hook{Path: "/bin/sh", Args: []string{"sh", "-c", "cat > " + filepath.Join(logDir, name)}}
	}
	dir := bundle(t, func(s *specs.Spec) {
		s.Hooks = &specs.Hooks{
			CreateRuntime: []specs.Hook{hook("createRuntime")},
			Poststart:     []specs.Hook{hook("poststart")},
			Poststop:      []specs.Hook{hook("poststop")},
		}
	})
	id := newID(t)
	r.must("run", "--bundle", dir, id)
	for _, name := range []string{"createRuntime", "poststart", "poststop"} {
		data, err := os.ReadFile(filepath.Join(logDir, name))
		require.NoError(t, err, name)
		assert.Contains(t, string(data), `"id":"`+id+`"`, name)
		assert.Contains(t, string(data), `"bundle":"`+dir+`"`, name)
	}
}

func TestRuntimeBadInput(t *testing.T) {
	r := newRuntime(t)
	noConfig := t.TempDir()
	_, code := r.run("create", "--bundle", noConfig, newID(t))
	assert.NotEqual(t, 0, code)

	badJSON := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(badJSON, "config.json"), []byte("{not json"), 0o644))
	_, code = r.run("create", "--bundle", badJSON, newID(t))
	assert.NotEqual(t, 0, code)

	out, code := r.run("create", "--bundle", bundle(t, func(s *specs.Spec) {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: "bogus"})
	}), newID(t))
	assert.NotEqual(t, 0, code)
	if !r.runc {
		assert.Contains(t, out, `unknown namespace type "bogus"`)
	}

	out, code = r.run("create", "--bundle", bundle(t, func(s *specs.Spec) { s.Root.Path = "/does/not/exist" }), newID(t))
	assert.NotEqual(t, 0, code)
	if !r.runc {
		assert.Contains(t, out, "/does/not/exist")
	}

	// an id in use
	id := newID(t)
	dir := bundle(t, sh("sleep 100"))
	r.must("create", "--bundle", dir, id)
	defer r.must("delete", "--force", id)
	out, code = r.run("create", "--bundle", dir, id)
	assert.NotEqual(t, 0, code)
	if !r.runc {
		assert.Contains(t, out, "already exists")
	}
	assert.Equal(t, "created", r.state(id).Status, "the first container is untouched")
}

// A mount destination that climbs above the root with "..", in the path
// or in a symlink of the image, stays inside the rootfs: ".." at the root
// is the root, as runc (and the kernel, for a process's root) has it. The
// container runs with the mount where the path leads inside it, and
// nothing is mounted or written outside.
func TestRuntimeMountEscapesStayInside(t *testing.T) {
	r := newRuntime(t)
	before := testutil.Mounts(t)
	outside := t.TempDir()
	for name, c := range map[string]struct {
		mutate func(string, *specs.Spec)
		inside string // where the mount is, in the container
	}{
		"dotdot": {func(dir string, s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/../../" + filepath.Base(outside), Type: "tmpfs", Source: "tmpfs"})
		}, "/" + filepath.Base(outside)},
		"symlink": {func(dir string, s *specs.Spec) {
			os.Symlink("../../../../../../../../"+outside, filepath.Join(dir, "rootfs/escape"))
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/escape/x", Type: "tmpfs", Source: "tmpfs"})
		}, outside + "/x"},
	} {
		t.Run(name, func(t *testing.T) {
			dir := bundle(t, nil)
			spec := loadSpec(t, dir)
			c.mutate(dir, spec)
			spec.Process.Args = []string{"sh", "-c", "grep ' " + c.inside + " ' /proc/self/mountinfo | grep -c tmpfs"}
			writeSpec(t, dir, spec)
			out, code := r.run("run", "--bundle", dir, newID(t))
			assert.Equal(t, 0, code, out)
			assert.Equal(t, "1\n", out, "the mount, inside the container at %s", c.inside)
			entries, _ := os.ReadDir(outside)
			assert.Empty(t, entries, "nothing written outside the rootfs")
		})
	}
	assert.Equal(t, before, testutil.Mounts(t))
}

func TestRuntimeSeccomp(t *testing.T) {
	r := newRuntime(t)
	out, code := r.runIn(t, func(s *specs.Spec) {
		s.Root.Readonly = false
		s.Process.Args = []string{"sh", "-c", "grep Seccomp: /proc/self/status; mkdir /tmp/x && echo MADE; echo still-running"}
		s.Linux.Seccomp = &specs.LinuxSeccomp{
			DefaultAction: specs.ActAllow,
			Architectures: []specs.Arch{specs.ArchX86_64},
			Syscalls:      []specs.LinuxSyscall{{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno}},
		}
	})
	require.Equal(t, 0, code, out)
	assert.Regexp(t, `Seccomp:\s+2`, out)
	assert.Contains(t, out, "Operation not permitted")
	assert.NotContains(t, out, "MADE")
	assert.Contains(t, out, "still-running")

	// Without no_new_privs the filter is loaded before the capabilities
	// go, and the init's last steps run under it: a profile older than a
	// call the runtime makes there (close_range) must not stop the start.
	out, code = r.runIn(t, func(s *specs.Spec) {
		s.Process.NoNewPrivileges = false
		s.Process.Args = []string{"echo", "started"}
		s.Linux.Seccomp = &specs.LinuxSeccomp{
			DefaultAction: specs.ActAllow,
			Architectures: []specs.Arch{specs.ArchX86_64},
			Syscalls:      []specs.LinuxSyscall{{Names: []string{"close_range"}, Action: specs.ActErrno}},
		}
	})
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "started")

	// a bad profile is refused at create
	_, code = r.runIn(t, func(s *specs.Spec) {
		s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: "SCMP_ACT_BOGUS"}
	})
	assert.NotEqual(t, 0, code)
}

func loadSpec(t *testing.T, dir string) *specs.Spec {
	data, err := os.ReadFile(filepath.Join(dir, "config.json"))
	require.NoError(t, err)
	var s specs.Spec
	require.NoError(t, jsonUnmarshal(data, &s))
	return &s
}

// TestRuntimeRootfsPropagation: with a root propagation that leaves the
// mount holding the rootfs shared, pivot_root would refuse it; the runtime
// makes that mount private first (MakeParentPrivate). The host's mount
// table is the same afterwards.
func TestRuntimeRootfsPropagation(t *testing.T) {
	r := newRuntime(t)
	before := testutil.Mounts(t)
	for _, prop := range []string{"shared", "rshared", "slave", "private", "rprivate"} {
		out, code := r.runIn(t, func(s *specs.Spec) {
			s.Linux.RootfsPropagation = prop
			s.Process.Args = []string{"echo", "ran-" + prop}
		})
		require.Equal(t, 0, code, "%s: %s", prop, out)
		assert.Contains(t, out, "ran-"+prop)
	}
	assert.Equal(t, before, testutil.Mounts(t), "host mount table changed")
}

// TestRuntimePreserveFds: --preserve-fds N passes the runtime's fds 3 to
// 3+N-1 on to the container's process, at the same numbers, and nothing
// else beyond stdio (for run, and for create then start).
func TestRuntimePreserveFds(t *testing.T) {
	r := newRuntime(t)
	extra := filepath.Join(t.TempDir(), "extra")
	require.NoError(t, os.WriteFile(extra, []byte("preserved\n"), 0o644))
	dir := bundle(t, sh("cat <&3; ls /proc/self/fd | sort -n | tr '\\n' ' '"))
	for _, args := range [][]string{{"run"}, {"create"}} {
		f, err := os.Open(extra)
		require.NoError(t, err)
		outf, err := os.Create(filepath.Join(t.TempDir(), "out"))
		require.NoError(t, err)
		id := newID(t)
		c := r.cmd(append(args, "--preserve-fds", "1", "--bundle", dir, id)...)
		c.Stdout, c.Stderr = outf, outf
		c.ExtraFiles = []*os.File{f}
		err = c.Run()
		f.Close()
		require.NoError(t, err)
		if args[0] == "create" {
			r.must("start", id)
			r.waitStatus(id, "stopped")
			r.must("delete", id)
		}
		outf.Close()
		out, _ := os.ReadFile(outf.Name())
		assert.Equal(t, "preserved\n0 1 2 3 4 ", string(out), args[0]) // 4: ls's own directory
	}

	// A program that execve refuses (ENOEXEC: no ELF, no #!) fails run
	// with the error, which goes to the runtime, not into the file passed
	// on as fd 3 (whose number the runtime's own socket had before).
	dir = bundle(t, func(s *specs.Spec) { s.Process.Args = []string{"/not-a-program"} })
	require.NoError(t, os.WriteFile(filepath.Join(dir, "rootfs/not-a-program"), []byte("just text\n"), 0o755))
	f, err := os.OpenFile(extra, os.O_RDWR|os.O_APPEND, 0)
	require.NoError(t, err)
	defer f.Close()
	outf, err := os.Create(filepath.Join(t.TempDir(), "out"))
	require.NoError(t, err)
	c := r.cmd("run", "--preserve-fds", "1", "--bundle", dir, newID(t))
	c.Stdout, c.Stderr = outf, outf
	c.ExtraFiles = []*os.File{f}
	err = c.Run()
	var ee *exec.ExitError
	require.ErrorAs(t, err, &ee)
	out, _ := os.ReadFile(outf.Name())
	// the runtime's failure (1), not the exit status of a process it
	// thought had started (127)
	assert.Equal(t, 1, ee.ExitCode(), string(out))
	assert.Contains(t, string(out), "exec format error")
	data, _ := os.ReadFile(extra)
	assert.Equal(t, "preserved\n", string(data), "the file passed on was written to")
}
