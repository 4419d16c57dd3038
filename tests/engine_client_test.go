package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"minidock/api"
)

// minidock's own client against the daemon, as a user types it.
func TestEngineClientCLI(t *testing.T) {
	e := newEngine(t)
	run := func(stdin string, args ...string) (string, int) {
		t.Helper()
		cmd := exec.Command(binary, args...)
		cmd.Env = append(os.Environ(), "MINIDOCK_HOST=unix://"+e.sock)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), code
	}
	tarball := filepath.Join(t.TempDir(), "rootfs.tar")
	require.NoError(t, os.WriteFile(tarball, busyboxTar(t), 0o644))
	out, code := run("", "import", tarball, "busybox:latest")
	require.Equal(t, 0, code, out)
	require.True(t, strings.HasPrefix(out, "sha256:"), out)
	out, code = run("", "images")
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "busybox")

	out, code = run("", "run", "--rm", "busybox", "echo", "hi")
	require.Equal(t, 0, code, out)
	require.Equal(t, "hi\n", out)
	out, code = run("hello\n", "run", "-i", "--rm", "busybox", "cat")
	require.Equal(t, 0, code, out)
	require.Equal(t, "hello\n", out)
	out, code = run("", "run", "-t", "--rm", "busybox", "tty")
	require.Equal(t, 0, code, out)
	require.Equal(t, "/dev/pts/0\r\n", out)
	out, code = run("", "run", "--rm", "busybox", "nosuchprogram")
	require.Equal(t, 127, code, out)
	require.Contains(t, out, "executable file not found")
	out, code = run("", "run", "--name", "three", "-e", "X=y", "-w", "/tmp", "busybox", "sh", "-c", `echo $X $(pwd); exit 3`)
	require.Equal(t, 3, code, out)
	require.Equal(t, "y /tmp\n", out)
	out, code = run("", "logs", "three")
	require.Equal(t, 0, code, out)
	require.Equal(t, "y /tmp\n", out)
	out, code = run("", "ps", "-a")
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "Exited (3)")
	require.Contains(t, out, "three")

	out, code = run("", "run", "-d", "--name", "bg", "busybox", "sleep", "300")
	require.Equal(t, 0, code, out)
	require.Len(t, strings.TrimSpace(out), 64)
	out, code = run("", "exec", "-e", "A=b", "bg", "sh", "-c", "echo $A; exit 4")
	require.Equal(t, 4, code, out)
	require.Equal(t, "b\n", out)
	out, code = run("in\n", "exec", "-i", "bg", "cat")
	require.Equal(t, 0, code, out)
	require.Equal(t, "in\n", out)
	out, code = run("", "restart", "-t", "0", "bg")
	require.Equal(t, 0, code, out)
	out, code = run("", "rm", "bg")
	require.Equal(t, 1, code, out)
	require.Contains(t, out, "container is running")
	out, code = run("", "stop", "-t", "0", "bg")
	require.Equal(t, 0, code, out)
	out, code = run("", "wait", "bg")
	require.Equal(t, 0, code, out)
	require.Equal(t, "137\n", out)
	out, code = run("", "rm", "bg", "three")
	require.Equal(t, 0, code, out)
	out, code = run("", "ps", "-a", "-q")
	require.Equal(t, 0, code, out)
	require.Empty(t, out)
	out, code = run("", "inspect", "nosuch")
	require.Equal(t, 1, code, out)
	require.Contains(t, out, "No such container: nosuch")
}

// start -a -i: attached to a created container, stdin in, its exit code out.
func TestEngineClientStartAttach(t *testing.T) {
	e := newEngine(t)
	e.importBusybox("busybox:latest")
	id := strings.TrimSpace(e.mustCLI("create", "-i", "--network", "none", "busybox", "sh", "-c", "echo out; read x; echo got $x; exit 3"))
	cmd := exec.Command(binary, "-H", "unix://"+e.sock, "start", "-a", "-i", id)
	cmd.Stdin = strings.NewReader("hi\n")
	out, code := e.command(cmd)
	require.Equal(t, 3, code, out)
	require.Equal(t, "out\ngot hi\n", out)
	out, code = e.cli("start", "-a", "nosuch")
	require.NotEqual(t, 0, code)
	require.Contains(t, out, "No such container")
	e.mustCLI("rm", id)
}

// An exec root so long that a shim's socket path (<exec-root>/shim/<64
// hex>.sock) passes the 108 bytes of a socket address: run, attach, a
// TTY (the console sockets) and exec still work.
func TestEngineLongExecRoot(t *testing.T) {
	e := newEngineAt(t, "-"+strings.Repeat("long", 15))
	require.Greater(t, len(e.execRoot+"/shim/")+64+len(".sock"), 108)
	e.importBusybox("busybox:latest")
	require.Equal(t, "hi\n", e.mustCLI("run", "--rm", "busybox", "echo", "hi"))
	out := e.mustCLI("run", "--rm", "-t", "busybox", "sh", "-c", "tty")
	require.Contains(t, out, "/dev/pts/")
	e.mustCLI("run", "-d", "--name", "bg", "busybox", "sleep", "300")
	require.Equal(t, "in exec\n", e.mustCLI("exec", "bg", "echo", "in exec"))
	require.Contains(t, e.mustCLI("exec", "-t", "bg", "tty"), "/dev/pts/")
	e.mustCLI("rm", "-f", "bg")
}

// tag, save, info; ps -n, -l and --filter; run --env-file, long flags.
func TestEngineClientMoreVerbs(t *testing.T) {
	e := newEngine(t)
	e.importBusybox("busybox:latest")
	e.mustCLI("tag", "busybox", "mine/box:v1")
	require.Contains(t, e.mustCLI("images"), "mine/box")
	tarPath := filepath.Join(t.TempDir(), "box.tar")
	e.mustCLI("save", "-o", tarPath, "mine/box:v1")
	fi, err := os.Stat(tarPath)
	require.NoError(t, err)
	require.Greater(t, fi.Size(), int64(100000))
	out, code := e.cli("save", "-o", filepath.Join(t.TempDir(), "x.tar"), "nosuch:image")
	require.NotEqual(t, 0, code, out)
	require.Contains(t, e.mustCLI("info"), "Networks: bridge host none")

	envFile := filepath.Join(t.TempDir(), "env")
	require.NoError(t, os.WriteFile(envFile, []byte("# comment\nA=from-file\nB=file\n\n"), 0o644))
	out = e.mustCLI("run", "--rm", "--env-file", envFile, "--env", "B=flag", "--memory", "64m", "--workdir", "/tmp",
		"busybox", "sh", "-c", "echo $A $B $(pwd) $(cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max)")
	require.Equal(t, "from-file flag /tmp 67108864\n", out)
	_, code = e.cli("run", "--rm", "--env-file", "/nonexistent", "busybox", "true")
	require.NotEqual(t, 0, code)

	for _, n := range []string{"one", "two", "three"} {
		e.mustCLI("create", "--name", n, "--label", "n="+n, "busybox", "true")
	}
	require.Equal(t, "three\ntwo\n", e.mustCLI("ps", "-n", "2", "--format", "{{.Names}}"))
	require.Equal(t, "three\n", e.mustCLI("ps", "--latest", "--format", "{{.Names}}"))
	require.Equal(t, "two\n", e.mustCLI("ps", "-a", "--filter", "label=n=two", "--format", "{{.Names}}"))
	e.mustCLI("rm", "one", "two", "three")
	e.mustCLI("rmi", "mine/box:v1")
}

// Docker's port syntax with an explicit 0: -p 0:8000 and
// -p 127.0.0.1:0:8000 publish on an ephemeral port of the kernel's range,
// which `port` shows and which answers; --expose exposes without
// publishing; info prints sizes as docker does; completion offers the
// daemon's container names.
func TestEngineClientEphemeralPorts(t *testing.T) {
	e := newEngine(t)
	e.importBusybox("busybox:latest")
	w := webServer("zero")
	e.mustCLI("run", "-d", "--name", "zero", "-p", "127.0.0.1:0:8000", "-p", "0:8000/udp", "--expose", "9000-9001",
		"busybox", w[0], w[1], w[2])
	out := strings.TrimSpace(e.mustCLI("port", "zero", "8000"))
	require.True(t, strings.HasPrefix(out, "127.0.0.1:"), out)
	hostPort, err := strconv.Atoi(strings.TrimPrefix(out, "127.0.0.1:"))
	require.NoError(t, err, out)
	data, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	require.NoError(t, err)
	var first, last int
	_, err = fmt.Sscan(string(data), &first, &last)
	require.NoError(t, err)
	require.True(t, hostPort >= first && hostPort <= last, "port %d outside the ephemeral range %d-%d", hostPort, first, last)
	require.Equal(t, "hello from zero\n", waitHTTP(t, fmt.Sprintf("http://127.0.0.1:%d/", hostPort)))
	udp := strings.TrimSpace(e.mustCLI("port", "zero", "8000/udp"))
	require.Regexp(t, `^0\.0\.0\.0:[1-9][0-9]*$`, udp)
	require.NotEqual(t, "0.0.0.0:0", udp)

	c := e.inspect("zero")
	require.Contains(t, c.Config.ExposedPorts, "9000/tcp")
	require.Contains(t, c.Config.ExposedPorts, "9001/tcp")
	require.Equal(t, []api.PortBinding{{HostIP: "127.0.0.1"}}, c.HostConfig.PortBindings["8000/tcp"])

	info := e.mustCLI("info")
	require.Regexp(t, `(?m)^ Total Memory: [0-9.]+GiB$`, info)
	require.NotContains(t, info, "e+")

	// completion asks the daemon for names
	out = e.mustCLI("__complete", "stop", "")
	require.Contains(t, out, "zero\n", out)
	e.mustCLI("rm", "-f", "zero")
}
