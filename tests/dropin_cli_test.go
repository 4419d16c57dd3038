package tests

// runc and minidock's runtime side by side on runc's own command line:
// the bundles callers write, the input runc rejects, and what containerd's
// runc v2 shim relies on (flags, outputs, log lines, error words).

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/require"

	"minidock/internal/testutil"
)

// cliSide is runc or minidock's runtime, each with a --root of its own.
type cliSide struct {
	name string
	argv []string
	root string
}

func cliSides(t *testing.T) []cliSide {
	t.Helper()
	skipUnlessDropin(t, "runc")
	runc, _ := exec.LookPath("runc")
	sides := []cliSide{
		{name: "runc", argv: []string{runc}, root: filepath.Join(t.TempDir(), "runc-root")},
		{name: "minidock", argv: []string{binary, "runtime"}, root: filepath.Join(t.TempDir(), "minidock-root")},
	}
	t.Cleanup(func() {
		for _, s := range sides {
			if left := runtimeStateLeft(s.root); len(left) > 0 {
				t.Errorf("leak: %s left state: %v", s.name, left)
			}
		}
	})
	return sides
}

// run runs the side with its --root and args (global flags may come
// first: they are put after --root), stdin given, and returns stdout and
// stderr together and the exit code. Output goes through a file: a
// created container's init keeps the runtime's stdout open.
func (s cliSide) run(t *testing.T, stdin string, args ...string) (string, int) {
	t.Helper()
	out, err := os.CreateTemp(t.TempDir(), "out-")
	require.NoError(t, err)
	defer out.Close()
	cmd := exec.Command(s.argv[0], append(append(append([]string{}, s.argv[1:]...), "--root", s.root), args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Stdout, cmd.Stderr = out, out
	err = cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s %v: %v", s.name, args, err)
	}
	data, _ := os.ReadFile(out.Name())
	return string(data), code
}

func (s cliSide) must(t *testing.T, args ...string) string {
	t.Helper()
	out, code := s.run(t, "", args...)
	require.Equal(t, 0, code, "%s %v: %s", s.name, args, out)
	return out
}

// specBundle makes a bundle whose config.json is what `runc spec` (with
// rootless, `runc spec --rootless`) writes, on testutil's busybox rootfs,
// with no terminal, args as the process and mutate applied to the rest.
func specBundle(t *testing.T, rootless bool, args []string, mutate func(*specs.Spec)) string {
	t.Helper()
	dir := t.TempDir()
	testutil.MakeBusyboxRootfs(t, filepath.Join(dir, "rootfs"))
	cmd := exec.Command("runc", "spec")
	if rootless {
		cmd.Args = append(cmd.Args, "--rootless")
	}
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "runc spec: %s", out)
	spec := loadSpec(t, dir)
	spec.Process.Terminal = false
	spec.Process.Args = args
	if mutate != nil {
		mutate(spec)
	}
	writeSpec(t, dir, spec)
	return dir
}

// TestDropinSpecBundles runs what `runc spec` and `runc spec --rootless`
// write, and what runc accepts with at most a warning (unknown
// annotations, kernel memory limits, ambient capabilities that cannot be
// raised), under runc and minidock: the same output, exit code 0, and
// minidock's warnings in its log.
func TestDropinSpecBundles(t *testing.T) {
	sides := cliSides(t)
	script := []string{"sh", "-c", "echo hello; id -u; grep CapAmb /proc/self/status"}
	cases := []struct {
		name     string
		rootless bool
		mutate   func(*specs.Spec)
		warning  string // in minidock's log, when it goes on past something
	}{
		{name: "runc spec", warning: "ambient"},
		{name: "runc spec --rootless", rootless: true, warning: "ambient"},
		{name: "unknown annotations", mutate: func(s *specs.Spec) {
			s.Annotations = map[string]string{"org.example.unknown": "x", "io.kubernetes.cri.sandbox-id": "abc"}
		}},
		{name: "kernel memory limits", mutate: func(s *specs.Spec) {
			kernel, tcp := int64(64<<20), int64(16<<20)
			s.Linux.Resources.Memory = &specs.LinuxMemory{Kernel: &kernel, KernelTCP: &tcp}
		}, warning: "kernel memory"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := specBundle(t, c.rootless, script, c.mutate)
			var outputs []string
			for _, s := range sides {
				logFile := filepath.Join(t.TempDir(), "log.json")
				out, code := s.run(t, "", "--log", logFile, "--log-format", "json", "run", "--bundle", dir, "spec-"+s.name)
				require.Equal(t, 0, code, "%s: %s", s.name, out)
				outputs = append(outputs, out)
				if s.name == "minidock" && c.warning != "" {
					log, _ := os.ReadFile(logFile)
					require.Regexp(t, `"level":"warning","msg":"[^"]*`+c.warning, string(log), "the warning in minidock's log")
				}
			}
			require.Equal(t, outputs[0], outputs[1], "runc's output, then minidock's")
		})
	}
}

// TestDropinBadInput: what runc rejects, minidock rejects, with an error
// that names the problem as clearly; neither leaves a container behind.
func TestDropinBadInput(t *testing.T) {
	sides := cliSides(t)
	sleeper := specBundle(t, false, []string{"sleep", "100000"}, nil)
	exiter := specBundle(t, false, []string{"true"}, nil)
	noConfig := t.TempDir()
	notJSON := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(notJSON, "config.json"), []byte("{not json"), 0o644))
	noArgs := specBundle(t, false, []string{}, nil)
	slice := specBundle(t, false, []string{"true"}, func(s *specs.Spec) { s.Linux.CgroupsPath = "system.slice:minidock:dropin" })
	_, err := os.Stat("/run/systemd/system")
	systemd := err == nil

	// states a case starts from
	running := func(t *testing.T, s cliSide, id string) {
		s.must(t, "run", "--detach", "--bundle", sleeper, id)
	}
	stopped := func(t *testing.T, s cliSide, id string) {
		s.must(t, "create", "--bundle", exiter, id)
		s.must(t, "start", id)
		require.True(t, waitFor(10*time.Second, func() bool { return strings.Contains(s.must(t, "state", id), `"stopped"`) }))
	}
	created := func(t *testing.T, s cliSide, id string) { s.must(t, "create", "--bundle", sleeper, id) }
	paused := func(t *testing.T, s cliSide, id string) { running(t, s, id); s.must(t, "pause", id) }

	cases := []struct {
		name  string
		setup func(*testing.T, cliSide, string)
		args  []string // ID stands for the container's id
		runc  []string // words runc's error has
		md    []string // words minidock's error must have
		skip  bool
	}{
		{name: "bundle that does not exist", args: []string{"create", "--bundle", "/nonexistent/bundle", "ID"},
			runc: []string{"/nonexistent/bundle", "no such file or directory"}, md: []string{"/nonexistent/bundle", "no such file or directory"}},
		{name: "bundle without config.json", args: []string{"create", "--bundle", noConfig, "ID"},
			runc: []string{"config.json not found"}, md: []string{"config.json", "not found"}},
		{name: "config.json not JSON", args: []string{"create", "--bundle", notJSON, "ID"},
			runc: []string{"invalid character"}, md: []string{"config.json", "invalid character"}},
		{name: "no process args", args: []string{"create", "--bundle", noArgs, "ID"},
			runc: []string{"args must not be empty"}, md: []string{"args", "empty"}},
		{name: "id with a slash", args: []string{"create", "--bundle", sleeper, "../escape"},
			runc: []string{"invalid container ID format"}, md: []string{"invalid container id", "../escape"}},
		{name: "id in use", setup: created, args: []string{"create", "--bundle", sleeper, "ID"},
			runc: []string{"already exists"}, md: []string{"already exists"}},
		{name: "pid file in a missing directory", args: []string{"create", "--bundle", sleeper, "--pid-file", "/nonexistent/dir/pid", "ID"},
			runc: []string{"/nonexistent/dir", "no such file or directory"}, md: []string{"/nonexistent/dir/pid", "no such file or directory"}},
		{name: "state of an unknown id", args: []string{"state", "ID"}, runc: []string{"does not exist"}, md: []string{"does not exist"}},
		{name: "kill of an unknown id", args: []string{"kill", "ID", "9"}, runc: []string{"does not exist"}, md: []string{"does not exist"}},
		{name: "delete of an unknown id", args: []string{"delete", "ID"}, runc: []string{"does not exist"}, md: []string{"does not exist"}},
		{name: "unknown signal", setup: running, args: []string{"kill", "ID", "FOO"}, runc: []string{"unknown signal", "FOO"}, md: []string{`unknown signal "FOO"`}},
		{name: "kill of a stopped container", setup: stopped, args: []string{"kill", "ID", "15"}, runc: []string{"container not running"}, md: []string{"container not running"}},
		{name: "start of a stopped container", setup: stopped, args: []string{"start", "ID"}, runc: []string{"cannot start a container that has stopped"}, md: []string{"cannot start", "stopped"}},
		{name: "start of a running container", setup: running, args: []string{"start", "ID"}, runc: []string{"cannot start an already running container"}, md: []string{"cannot start", "running"}},
		{name: "delete of a running container", setup: running, args: []string{"delete", "ID"}, runc: []string{"not stopped: running"}, md: []string{"not stopped", "running"}},
		{name: "exec in a stopped container", setup: stopped, args: []string{"exec", "ID", "true"}, runc: []string{"cannot exec in a stopped container"}, md: []string{"cannot exec", "stopped"}},
		{name: "pause of a paused container", setup: paused, args: []string{"pause", "ID"}, runc: []string{"container not running"}, md: []string{"not running", "paused"}},
		{name: "resume of a running container", setup: running, args: []string{"resume", "ID"}, runc: []string{"container not paused"}, md: []string{"not paused"}},
		{name: "systemd cgroups with a plain path", args: []string{"--systemd-cgroup", "create", "--bundle", sleeper, "ID"},
			runc: []string{"systemd not running"}, md: []string{"systemd", "not running"}, skip: systemd},
		{name: "systemd cgroups without systemd", args: []string{"--systemd-cgroup", "create", "--bundle", slice, "ID"},
			runc: []string{"systemd not running"}, md: []string{"systemd", "not running"}, skip: systemd},
		{name: "checkpoint", setup: running, args: []string{"checkpoint", "ID"}, runc: []string{}, md: []string{"checkpoint", "not supported"}},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.skip {
				t.Skip("systemd runs here")
			}
			for _, s := range sides {
				id := "bad-" + strconv.Itoa(i) + "-" + s.name
				if c.setup != nil {
					c.setup(t, s, id)
				}
				args := make([]string, len(c.args))
				for j, a := range c.args {
					args[j] = strings.ReplaceAll(a, "ID", id)
				}
				out, code := s.run(t, "", args...)
				s.run(t, "", "delete", "--force", id)
				require.NotEqual(t, 0, code, "%s accepted %v: %s", s.name, args, out)
				want := c.md
				if s.name == "runc" {
					want = c.runc
				}
				for _, w := range want {
					require.Contains(t, out, w, "%s's error", s.name)
				}
				t.Logf("%s: %s", s.name, strings.TrimSpace(out))
				_, code = s.run(t, "", "state", id)
				require.NotEqual(t, 0, code, "%s left container %s", s.name, id)
			}
		})
	}
}

// TestDropinShimContract checks, on runc and minidock alike, what
// containerd's runc v2 shim and go-runc rely on: the global flags, the JSON
// log line, --version's lines, features, create and exec with a console
// socket, --no-pivot and --no-new-keyring, ps --format json, events
// --stats, update --resources -, kill --all, and delete --force of a
// container that is gone.
func TestDropinShimContract(t *testing.T) {
	sides := cliSides(t)
	sleeper := specBundle(t, false, []string{"sleep", "100000"}, nil)
	tty := specBundle(t, false, []string{"sh"}, func(s *specs.Spec) { s.Process.Terminal = true })
	for _, s := range sides {
		t.Run(s.name, func(t *testing.T) {
			// --version: "NAME version X", "commit: Y", "spec: Z"
			version := s.must(t, "--version")
			require.Regexp(t, `(?m)^\S+ version \S+$`, version)
			require.Regexp(t, `(?m)^commit: \S+`, version)
			require.Regexp(t, `(?m)^spec: \d+\.\d+\.\d+`, version)

			// features: JSON with the OCI versions
			var features map[string]any
			require.NoError(t, json.Unmarshal([]byte(s.must(t, "features")), &features))
			require.Contains(t, features, "ociVersionMin")
			require.Contains(t, features, "ociVersionMax")

			// an error goes into --log as runc's JSON line
			logFile := filepath.Join(t.TempDir(), "log.json")
			_, code := s.run(t, "", "--log", logFile, "--log-format", "json", "state", "nosuch")
			require.NotEqual(t, 0, code)
			lines := strings.Split(strings.TrimSpace(readFile(t, logFile)), "\n")
			var last map[string]string
			require.NoError(t, json.Unmarshal([]byte(lines[len(lines)-1]), &last), lines[len(lines)-1])
			require.Equal(t, "error", last["level"])
			require.Contains(t, last["msg"], "does not exist")
			_, err := time.Parse(time.RFC3339, last["time"])
			require.NoError(t, err, "time %q", last["time"])

			// --systemd-cgroup is accepted where no cgroup is made
			_, code = s.run(t, "", "--systemd-cgroup", "state", "nosuch")
			require.Equal(t, 1, code)

			// create with --no-pivot --no-new-keyring --pid-file, then ps, events, update, kill --all, delete
			id := "contract-" + s.name
			pidFile := filepath.Join(t.TempDir(), "init.pid")
			s.must(t, "--log", logFile, "--log-format", "json", "create", "--bundle", sleeper, "--pid-file", pidFile, "--no-pivot", "--no-new-keyring", id)
			t.Cleanup(func() { s.run(t, "", "delete", "--force", id) })
			s.must(t, "start", id)
			pid, err := strconv.Atoi(strings.TrimSpace(readFile(t, pidFile)))
			require.NoError(t, err)
			var pids []int
			require.NoError(t, json.Unmarshal([]byte(s.must(t, "ps", "--format", "json", id)), &pids))
			require.Contains(t, pids, pid)

			var ev struct {
				Type string         `json:"type"`
				ID   string         `json:"id"`
				Data map[string]any `json:"data"`
			}
			require.NoError(t, json.Unmarshal([]byte(s.must(t, "events", "--stats", id)), &ev))
			require.Equal(t, "stats", ev.Type)
			require.Equal(t, id, ev.ID)
			require.Contains(t, ev.Data, "memory")
			require.Contains(t, ev.Data, "pids")

			out, code := s.run(t, `{"memory":{"limit":100663296},"pids":{"limit":50}}`, "update", "--resources", "-", id)
			require.Equal(t, 0, code, out)
			require.Equal(t, "100663296", cgroupFile(t, pid, "memory", "memory.limit_in_bytes"))
			require.Equal(t, "50", cgroupFile(t, pid, "pids", "pids.max"))

			// exec --detach --pid-file --console-socket, as the shim for exec -t
			proc := filepath.Join(t.TempDir(), "process.json")
			writeJSON(t, proc, specs.Process{Terminal: true, Args: []string{"sh"}, Cwd: "/", Env: []string{"PATH=/bin", "TERM=xterm"}})
			sock, got := consoleSocket(t)
			execPid := filepath.Join(t.TempDir(), "exec.pid")
			s.must(t, "exec", "--process", proc, "--detach", "--pid-file", execPid, "--console-socket", sock, id)
			master := receiveMaster(t, got)
			master.WriteString("echo exec-tty-$((40+2))\n")
			readUntil(t, master, "exec-tty-42")
			require.FileExists(t, execPid)

			s.must(t, "kill", "--all", id, "9")
			require.True(t, waitFor(10*time.Second, func() bool { return strings.Contains(s.must(t, "state", id), `"stopped"`) }))
			s.must(t, "delete", id)
			s.must(t, "delete", "--force", id) // gone already: fine with --force

			// create --console-socket: exactly the pty master comes back
			ttyID := "contract-tty-" + s.name
			sock, got = consoleSocket(t)
			s.must(t, "create", "--bundle", tty, "--console-socket", sock, ttyID)
			t.Cleanup(func() { s.run(t, "", "delete", "--force", ttyID) })
			master = receiveMaster(t, got)
			s.must(t, "start", ttyID)
			master.WriteString("tty; exit\n")
			require.Regexp(t, regexp.MustCompile(`/dev/pts/\d`), readUntil(t, master, "/dev/pts/"))
		})
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	data, err := os.ReadFile(p)
	require.NoError(t, err)
	return string(data)
}
