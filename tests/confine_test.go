package tests

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// capMask reads a capability set line ("CapEff:\t...") of a
// /proc/<pid>/status text.
func capMask(t *testing.T, status, field string) uint64 {
	t.Helper()
	for _, line := range strings.Split(status, "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return n
		}
	}
	t.Fatalf("no %s in %q", field, status)
	return 0
}

func statusField(status, field string) string {
	for _, line := range strings.Split(status, "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// Docker's 14 default capabilities, as a mask: CHOWN 0, DAC_OVERRIDE 1,
// FOWNER 3, FSETID 4, KILL 5, SETGID 6, SETUID 7, SETPCAP 8,
// NET_BIND_SERVICE 10, NET_RAW 13, SYS_CHROOT 18, MKNOD 27, AUDIT_WRITE
// 29, SETFCAP 31.
const dockerDefaultCaps = 1<<0 | 1<<1 | 1<<3 | 1<<4 | 1<<5 | 1<<6 | 1<<7 | 1<<8 | 1<<10 | 1<<13 | 1<<18 | 1<<27 | 1<<29 | 1<<31

// ownBoundingSet is the test's (root's) bounding set: what the daemon,
// started by it, holds and can give at most.
func ownBoundingSet(t *testing.T) uint64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	return capMask(t, string(data), "CapBnd")
}

// TestConfinementDefaults: a container made with no options gets
// Docker's confinement: its 14 capabilities, in every set; the seccomp
// filter (mode 2) of Docker's default profile, whose capability rules
// follow the capabilities (mount needs CAP_SYS_ADMIN, clone with
// namespace flags too); no no_new_privs. The options change exactly
// that: --cap-drop ALL --cap-add, --cap-add ALL, no-new-privileges,
// seccomp=unconfined and a profile file, --privileged.
func TestConfinementDefaults(t *testing.T) {
	e := newEngine(t)
	e.importBusybox("busybox:latest")
	status := func(flags ...string) string {
		t.Helper()
		args := append(append([]string{"run", "--rm", "--network", "none"}, flags...), "busybox", "cat", "/proc/self/status")
		return e.mustCLI(args...)
	}

	st := status()
	for _, set := range []string{"CapEff", "CapPrm", "CapBnd"} {
		if got := capMask(t, st, set); got != dockerDefaultCaps {
			t.Errorf("default %s = %#x, want Docker's %#x", set, got, uint64(dockerDefaultCaps))
		}
	}
	if got := statusField(st, "Seccomp"); got != "2" {
		t.Errorf("default: Seccomp %q, want 2 (a filter)", got)
	}
	if got := statusField(st, "NoNewPrivs"); got != "0" {
		t.Errorf("default: NoNewPrivs %q, want 0", got)
	}

	if got := capMask(t, status("--cap-drop", "ALL", "--cap-add", "net_admin"), "CapEff"); got != 1<<12 {
		t.Errorf("--cap-drop ALL --cap-add net_admin: CapEff %#x, want only CAP_NET_ADMIN (%#x)", got, 1<<12)
	}
	if got := capMask(t, status("--cap-drop", "chown", "--cap-drop", "CAP_KILL"), "CapEff"); got != dockerDefaultCaps&^(1<<0|1<<5) {
		t.Errorf("--cap-drop chown,kill: CapEff %#x", got)
	}
	held := ownBoundingSet(t)
	if got := capMask(t, status("--cap-add", "ALL"), "CapEff"); got != held {
		t.Errorf("--cap-add ALL: CapEff %#x, want the daemon's bounding set %#x", got, held)
	}
	if got := statusField(status("--security-opt", "no-new-privileges"), "NoNewPrivs"); got != "1" {
		t.Errorf("no-new-privileges: NoNewPrivs %q", got)
	}
	if got := statusField(status("--security-opt", "seccomp=unconfined"), "Seccomp"); got != "0" {
		t.Errorf("seccomp=unconfined: Seccomp %q, want 0", got)
	}
	priv := status("--privileged")
	if got := capMask(t, priv, "CapEff"); got != held {
		t.Errorf("--privileged: CapEff %#x, want the daemon's bounding set %#x", got, held)
	}
	if got := statusField(priv, "Seccomp"); got != "0" {
		t.Errorf("--privileged: Seccomp %q, want 0", got)
	}

	// The profile's capability rules: mount is Docker-allowed only with
	// CAP_SYS_ADMIN; unshare of a user namespace never by default.
	mount := []string{"busybox", "sh", "-c", "mkdir -p /m && mount -t tmpfs none /m && echo mounted"}
	if out, code := e.cli(append([]string{"run", "--rm", "--network", "none"}, mount...)...); code == 0 || strings.Contains(out, "mounted") {
		t.Errorf("mount in a default container: exit %d: %s", code, out)
	}
	if out := e.mustCLI(append([]string{"run", "--rm", "--network", "none", "--cap-add", "SYS_ADMIN"}, mount...)...); !strings.Contains(out, "mounted") {
		t.Errorf("mount with CAP_SYS_ADMIN: %s", out)
	}
	if out, code := e.cli("run", "--rm", "--network", "none", "busybox", "unshare", "-U", "true"); code == 0 {
		t.Errorf("unshare -U in a default container succeeded: %s", out)
	}
	e.mustCLI("run", "--rm", "--network", "none", "--security-opt", "seccomp=unconfined", "busybox", "unshare", "-U", "true")

	// a profile of one's own, read by the CLI and sent inline
	profile := filepath.Join(t.TempDir(), "profile.json")
	os.WriteFile(profile, []byte(`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO","errnoRet":95}]}`), 0o644)
	out, code := e.cli("run", "--rm", "--network", "none", "--security-opt", "seccomp="+profile, "busybox", "mkdir", "/tmp/x")
	if code == 0 || !strings.Contains(out, "not supported") {
		t.Errorf("a profile refusing mkdir with EOPNOTSUPP: exit %d: %s", code, out)
	}
}

// TestConfinementOptions: the other HostConfig confinement fields, each
// seen from inside the container.
func TestConfinementOptions(t *testing.T) {
	e := newEngine(t)
	e.importBusybox("busybox:latest")
	run := func(t *testing.T, args ...string) string {
		t.Helper()
		out, code := e.cli(append([]string{"run", "--rm", "--network", "none"}, args...)...)
		if code != 0 {
			t.Errorf("run %v: exit %d: %s", args, code, out)
		}
		return strings.TrimSpace(out)
	}

	t.Run("device", func(t *testing.T) {
		out := run(t, "--device", "/dev/loop0:/dev/xloop:r", "busybox", "sh", "-c",
			"stat -c '%t:%T %F' /dev/xloop; head -c 0 /dev/xloop && echo read-ok; echo x > /dev/xloop || echo write-refused")
		if !strings.Contains(out, "7:0 block special file") || !strings.Contains(out, "read-ok") || !strings.Contains(out, "write-refused") {
			t.Errorf("--device /dev/loop0:/dev/xloop:r: %s", out)
		}
	})
	t.Run("sysctl", func(t *testing.T) {
		if out := run(t, "--sysctl", "net.ipv4.ip_forward=1", "--sysctl", "kernel.shmmni=1234", "busybox", "sh", "-c",
			"cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmni"); strings.Fields(out)[0] != "1" || strings.Fields(out)[1] != "1234" {
			t.Errorf("--sysctl: %s", out)
		}
	})
	t.Run("ulimit", func(t *testing.T) {
		if out := run(t, "--ulimit", "nofile=100:200", "busybox", "sh", "-c", "ulimit -n; ulimit -Hn"); strings.Join(strings.Fields(out), " ") != "100 200" {
			t.Errorf("--ulimit nofile=100:200: %q", out)
		}
	})
	t.Run("group-add", func(t *testing.T) {
		out := run(t, "--group-add", "nogroup", "--group-add", "1234", "busybox", "id", "-G")
		if f := strings.Fields(out); len(f) != 3 || !slices.Contains(f, "65534") || !slices.Contains(f, "1234") {
			t.Errorf("--group-add nogroup --group-add 1234: id -G = %q", out)
		}
	})
	t.Run("oom-score-adj", func(t *testing.T) {
		if out := run(t, "--oom-score-adj", "500", "busybox", "cat", "/proc/self/oom_score_adj"); out != "500" {
			t.Errorf("--oom-score-adj 500: %q", out)
		}
	})
	t.Run("pid-host", func(t *testing.T) {
		n, _ := strconv.Atoi(run(t, "--pid", "host", "busybox", "sh", "-c", "ls /proc | grep -c '^[0-9]'"))
		if n < 10 {
			t.Errorf("--pid host: %d processes in /proc, want the host's", n)
		}
		if got, _ := strconv.Atoi(run(t, "busybox", "sh", "-c", "ls /proc | grep -c '^[0-9]'")); got > 5 {
			t.Errorf("default: %d processes in /proc", got)
		}
	})
	t.Run("uts-host", func(t *testing.T) {
		host, _ := os.Hostname()
		if out := run(t, "--uts", "host", "busybox", "hostname"); out != host {
			t.Errorf("--uts host: hostname %q, want %q", out, host)
		}
		if out, code := e.cli("run", "--rm", "--uts", "host", "-h", "x", "busybox", "true"); code == 0 || !strings.Contains(out, "Conflicting options") {
			t.Errorf("--uts host -h x: exit %d: %s", code, out)
		}
	})
	t.Run("ipc", func(t *testing.T) {
		hostIPC, _ := os.Readlink("/proc/self/ns/ipc")
		if out := run(t, "--ipc", "host", "busybox", "readlink", "/proc/self/ns/ipc"); out != hostIPC {
			t.Errorf("--ipc host: %s, want %s", out, hostIPC)
		}
		owner, _ := e.cli("run", "-d", "--network", "none", "--ipc", "shareable", "busybox", "sh", "-c", "echo shared > /dev/shm/x; sleep 100")
		owner = strings.TrimSpace(owner)
		defer e.cli("rm", "-f", owner)
		ownerNS, _ := e.cli("exec", owner, "readlink", "/proc/self/ns/ipc")
		ownerNS = strings.TrimSpace(ownerNS)
		out := run(t, "--ipc", "container:"+owner, "busybox", "sh", "-c", "readlink /proc/self/ns/ipc; cat /dev/shm/x")
		if f := strings.Fields(out); len(f) != 2 || f[0] != ownerNS || f[1] != "shared" {
			t.Errorf("--ipc container:%s: %q, want its namespace %s and its /dev/shm", owner, out, ownerNS)
		}
		private, _ := e.cli("run", "-d", "--network", "none", "busybox", "sleep", "100")
		private = strings.TrimSpace(private)
		defer e.cli("rm", "-f", private)
		if out, code := e.cli("run", "--rm", "--ipc", "container:"+private, "busybox", "true"); code == 0 || !strings.Contains(out, "not shareable") {
			t.Errorf("joining a private IPC namespace: exit %d: %s", code, out)
		}
	})
	t.Run("shm-size", func(t *testing.T) {
		if out := run(t, "--shm-size", "1m", "busybox", "sh", "-c", "df -k /dev/shm | tail -1"); strings.Fields(out)[1] != "1024" {
			t.Errorf("--shm-size 1m: %s", out)
		}
	})
	t.Run("cgroupns", func(t *testing.T) {
		hostNS, _ := os.Readlink("/proc/self/ns/cgroup")
		if out := run(t, "--cgroupns", "private", "busybox", "readlink", "/proc/self/ns/cgroup"); out == hostNS {
			t.Errorf("--cgroupns private: the host's namespace %s", out)
		}
	})
	t.Run("domainname", func(t *testing.T) {
		requireDockerCLI(t)
		if out, code := e.docker("run", "--rm", "--network", "none", "--domainname", "example.org", "busybox", "cat", "/proc/sys/kernel/domainname"); code != 0 || strings.TrimSpace(out) != "example.org" {
			t.Errorf("--domainname example.org: exit %d: %q", code, out)
		}
	})
	t.Run("userns-host", func(t *testing.T) {
		run(t, "--userns", "host", "busybox", "true") // without --userns-remap, what every container has
	})
}

// TestInitReaper: --init makes minidock's reaper PID 1 (bound at
// /sbin/docker-init): it passes the exit status through, forwards
// SIGTERM (a `stop` ends `sleep` at once, which as PID 1 would ignore it
// until the timeout's SIGKILL), and reaps orphans.
func TestInitReaper(t *testing.T) {
	e := newEngine(t)
	e.importBusybox("busybox:latest")
	if out := e.mustCLI("run", "--rm", "--network", "none", "--init", "busybox", "sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '"); !strings.HasPrefix(out, "/sbin/docker-init -- sh -c") {
		t.Errorf("PID 1 with --init: %q", out)
	}
	if _, code := e.cli("run", "--rm", "--network", "none", "--init", "busybox", "sh", "-c", "exit 3"); code != 3 {
		t.Errorf("exit status through the reaper: %d, want 3", code)
	}
	// orphans: a grandchild whose parent exits is reparented to PID 1
	out := e.mustCLI("run", "--rm", "--network", "none", "--init", "busybox", "sh", "-c",
		"sh -c 'sleep 0.2 &'; sleep 1; ps -o stat,comm | grep -c '^Z' || true")
	if strings.TrimSpace(out) != "0" {
		t.Errorf("zombies left with --init: %s", out)
	}
	for _, c := range []struct {
		init bool
		code int
		max  time.Duration
	}{{true, 143, 3 * time.Second}, {false, 137, 10 * time.Second}} {
		args := []string{"run", "-d", "--network", "none"}
		if c.init {
			args = append(args, "--init")
		}
		id := strings.TrimSpace(e.mustCLI(append(args, "busybox", "sleep", "100")...))
		// the program running: a SIGTERM that reaches the reaper before
		// its handler is set (the Go runtime's start) ends it with 2, as
		// PID 1 cannot die of its own default action (a known gap)
		for i := 0; i < 100 && !strings.Contains(e.mustCLI("exec", id, "ps", "-o", "comm"), "sleep"); i++ {
			time.Sleep(20 * time.Millisecond)
		}
		start := time.Now()
		e.mustCLI("stop", "-t", "2", id)
		took := time.Since(start)
		code := strings.TrimSpace(e.mustCLI("inspect", "-f", "{{.State.ExitCode}}", id))
		if code != strconv.Itoa(c.code) || took > c.max {
			t.Errorf("init=%v: stop took %v, exit code %s; want %d", c.init, took, code, c.code)
		}
		e.mustCLI("rm", id)
	}
}

// hardNofile is the test's (and so the daemon's) hard RLIMIT_NOFILE.
func hardNofile(t *testing.T) int64 {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		t.Fatal(err)
	}
	return int64(r.Max)
}

// TestConfinementBadInput: each bad value is a 400 naming it, and no
// container is made.
func TestConfinementBadInput(t *testing.T) {
	e := newEngine(t)
	e.importBusybox("busybox:latest")
	cases := []struct {
		name string
		body map[string]any
		want string
	}{
		{"unknown capability", map[string]any{"HostConfig": map[string]any{"CapAdd": []string{"CAP_FLY"}}}, `unknown capability "CAP_FLY"`},
		{"seccomp profile that does not parse", map[string]any{"HostConfig": map[string]any{"SecurityOpt": []string{`seccomp={"defaultAction":`}}}, "seccomp profile"},
		{"seccomp profile with an unknown action", map[string]any{"HostConfig": map[string]any{"SecurityOpt": []string{`seccomp={"defaultAction":"SCMP_ACT_FLY"}`}}}, "SCMP_ACT_FLY"},
		{"unknown security option", map[string]any{"HostConfig": map[string]any{"SecurityOpt": []string{"fly=1"}}}, `unknown option "fly=1"`},
		{"device that does not exist", map[string]any{"HostConfig": map[string]any{"Devices": []map[string]string{{"PathOnHost": "/dev/nonexistent", "PathInContainer": "/dev/x", "CgroupPermissions": "rwm"}}}}, "/dev/nonexistent"},
		{"device that is no device", map[string]any{"HostConfig": map[string]any{"Devices": []map[string]string{{"PathOnHost": "/etc/passwd", "PathInContainer": "/dev/x", "CgroupPermissions": "rwm"}}}}, "not a device"},
		{"sysctl not namespaced", map[string]any{"HostConfig": map[string]any{"Sysctls": map[string]string{"kernel.panic": "1"}}}, `"kernel.panic" is not namespaced`},
		{"net sysctl with the host's network", map[string]any{"HostConfig": map[string]any{"NetworkMode": "host", "Sysctls": map[string]string{"net.ipv4.ip_forward": "1"}}}, "network namespace"},
		{"ulimit above fs.nr_open", map[string]any{"HostConfig": map[string]any{"Ulimits": []map[string]any{{"Name": "nofile", "Soft": 1024, "Hard": 1 << 30}}}}, "fs.nr_open"},
		{"unknown ulimit", map[string]any{"HostConfig": map[string]any{"Ulimits": []map[string]any{{"Name": "wings", "Soft": 1, "Hard": 1}}}}, `unknown ulimit "wings"`},
		{"oom_score_adj out of range", map[string]any{"HostConfig": map[string]any{"OomScoreAdj": 1001}}, "OomScoreAdj"},
		{"user 4294967295", map[string]any{"User": "4294967295"}, "4294967295"},
		{"group 4294967295", map[string]any{"User": "65534:4294967295"}, "4294967295"},
		{"negative group-add", map[string]any{"HostConfig": map[string]any{"GroupAdd": []string{"-1"}}}, "GroupAdd"},
		{"unknown pid mode", map[string]any{"HostConfig": map[string]any{"PidMode": "shared"}}, `PidMode: invalid mode "shared"`},
		{"ipc of a container that does not exist", map[string]any{"HostConfig": map[string]any{"IpcMode": "container:nosuch"}}, "nosuch"},
		{"a Docker field minidock does not apply", map[string]any{"HostConfig": map[string]any{"CpusetCpus": "0"}}, "HostConfig.CpusetCpus"},
		{"an unknown field", map[string]any{"Wings": 2}, "Wings"},
		{"a MAC address nothing applies", map[string]any{"NetworkingConfig": map[string]any{"EndpointsConfig": map[string]any{"bridge": map[string]string{"MacAddress": "02:42:ac:11:00:99"}}}}, "NetworkingConfig.EndpointsConfig.bridge.MacAddress"},
	}
	if ownBoundingSet(t)&(1<<24) == 0 { // root lacks CAP_SYS_RESOURCE on this project's VM
		cases = append(cases, struct {
			name string
			body map[string]any
			want string
		}{"capability the daemon does not hold", map[string]any{"HostConfig": map[string]any{"CapAdd": []string{"CAP_SYS_RESOURCE"}}}, "CAP_SYS_RESOURCE is not in the daemon's bounding set"},
			struct {
				name string
				body map[string]any
				want string
			}{"ulimit above what the daemon holds", map[string]any{"HostConfig": map[string]any{"Ulimits": []map[string]any{{"Name": "nofile", "Soft": 1024, "Hard": hardNofile(t) + 1}}}}, "lacks CAP_SYS_RESOURCE"})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body := map[string]any{"Image": "busybox", "Cmd": []string{"true"}}
			for k, v := range c.body {
				if k == "HostConfig" {
					hc := map[string]any{}
					for hk, hv := range v.(map[string]any) {
						hc[hk] = hv
					}
					v = hc
				}
				body[k] = v
			}
			st, data := e.do("POST", "/containers/create", body)
			var msg struct{ Message string }
			json.Unmarshal(data, &msg)
			if st != 400 || !strings.Contains(msg.Message, c.want) {
				t.Errorf("status %d, %s; want 400 naming %q", st, data, c.want)
			}
		})
	}
	if out := e.mustCLI("ps", "-aq"); strings.TrimSpace(out) != "" {
		t.Errorf("containers were made: %s", out)
	}
	// exec: the same id range
	id := strings.TrimSpace(e.mustCLI("run", "-d", "--network", "none", "busybox", "sleep", "100"))
	if st, data := e.do("POST", "/containers/"+id+"/exec", map[string]any{"Cmd": []string{"id"}, "User": "4294967295"}); st != 400 {
		t.Errorf("exec as 4294967295: %d %s", st, data)
	}
	// the docker CLI's own bodies (every field it knows, empty) are fine
	requireDockerCLI(t)
	if out, code := e.docker("run", "--rm", "--network", "none", "--cap-drop", "ALL", "--security-opt", "no-new-privileges", "busybox", "grep", "NoNewPrivs", "/proc/self/status"); code != 0 || !strings.Contains(out, "1") {
		t.Errorf("docker run with confinement flags: exit %d: %s", code, out)
	}
	if out, code := e.docker("exec", "--privileged", id, "grep", "CapEff", "/proc/self/status"); code != 0 || !strings.Contains(out, fmt.Sprintf("%016x", ownBoundingSet(t))) {
		t.Errorf("docker exec --privileged: exit %d: %s", code, out)
	}
	if out, code := e.docker("run", "--rm", "--cpuset-cpus", "0", "busybox", "true"); code == 0 || !strings.Contains(out, "CpusetCpus") {
		t.Errorf("docker run --cpuset-cpus: exit %d: %s", code, out)
	}
	e.mustCLI("rm", "-f", id)
}
