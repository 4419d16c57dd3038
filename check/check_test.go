package check

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeHost is a Host whose /proc and /sys are files written by the test:
// a machine that offers everything, which each case then breaks.
type fakeHost struct {
	Host
	t *testing.T
}

// healthyFiles are the files of a pure cgroup v2 machine with everything.
var healthyFiles = map[string]string{
	"proc/sys/kernel/osrelease":             "6.1.0-57-amd64\n",
	"proc/filesystems":                      "nodev\tproc\nnodev\toverlay\n",
	"proc/self/mountinfo":                   "25 1 0:23 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n22 1 0:21 / /proc rw - proc proc rw\n",
	"proc/self/cgroup":                      "0::/user.slice/user-1000.slice/user@1000.service/app.slice/a.scope\n",
	"proc/sys/user/max_user_namespaces":     "15000\n",
	"proc/sys/net/ipv4/ip_forward":          "1\n",
	"proc/self/status":                      "Name:\tcheck\nSeccomp:\t0\nSeccomp_filters:\t0\n",
	"proc/sys/kernel/seccomp/actions_avail": "kill_process kill_thread trap errno user_notif trace log allow\n",
	"sys/fs/cgroup/cgroup.controllers":      "cpuset cpu io memory hugetlb pids rdma misc\n",
}

func newFakeHost(t *testing.T) *fakeHost {
	dir := t.TempDir()
	h := &fakeHost{t: t, Host: Host{
		Proc: filepath.Join(dir, "proc"), Sys: filepath.Join(dir, "sys"),
		Modules: filepath.Join(dir, "lib/modules"), Path: filepath.Join(dir, "bin"), UID: 0,
	}}
	for name, data := range healthyFiles {
		h.write(filepath.Join(dir, name), data)
	}
	os.MkdirAll(h.Path, 0o755)
	return h
}

func (h *fakeHost) write(path, data string) {
	h.t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		h.t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o755); err != nil {
		h.t.Fatal(err)
	}
}

// proc rewrites (or, with data "", removes) a file under the fake /proc.
func (h *fakeHost) proc(name, data string) {
	p := filepath.Join(h.Proc, name)
	if data == "" {
		os.Remove(p)
		return
	}
	h.write(p, data)
}

// program puts an executable in the fake PATH.
func (h *fakeHost) program(name, script string) {
	h.write(filepath.Join(h.Path, name), script)
}

func result(t *testing.T, results []Result, name string) Result {
	t.Helper()
	for _, r := range results {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("no check %q in %+v", name, results)
	return Result{}
}

// Each check broken on purpose in a fake /proc, /sys and PATH: its status,
// words naming what is wrong, and a fix.
func TestBrokenChecks(t *testing.T) {
	for _, c := range []struct {
		name   string
		break_ func(h *fakeHost)
		check  string
		status Status
		found  string // in Found
		fix    string // in Fix
	}{
		{"not root", func(h *fakeHost) { h.UID = 1000 }, "root", Warn, "uid 1000", "as root"},
		{"old kernel", func(h *fakeHost) { h.proc("sys/kernel/osrelease", "4.19.0-27-amd64\n") }, "kernel", Fail, "older than 5.6", "5.6 or newer"},
		{"kernel 5.5", func(h *fakeHost) { h.proc("sys/kernel/osrelease", "5.5.19\n") }, "kernel", Fail, "5.5.19", "5.6 or newer"},
		{"no procfs", func(h *fakeHost) { h.Proc = filepath.Join(h.Proc, "missing") }, "kernel", Fail, "no such file", "mount -t proc"},
		{"no overlay", func(h *fakeHost) { h.proc("filesystems", "nodev\tproc\n") }, "overlayfs", Fail, "no overlay module", "CONFIG_OVERLAY_FS"},
		{"no cgroups", func(h *fakeHost) { h.proc("self/mountinfo", "22 1 0:21 / /proc rw - proc proc rw\n") }, "cgroups", Fail, "no cgroup filesystem", "mount -t cgroup2"},
		{"cgroup v1", func(h *fakeHost) {
			h.proc("self/mountinfo", "31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755\n"+
				"32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n"+
				"33 31 0:30 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"+
				"34 31 0:31 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd\n")
			h.proc("cgroups", "#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpu\t1\t17\t1\nmemory\t4\t70\t1\n"+
				"net_cls\t0\t16\t1\npids\t0\t1\t1\nblkio\t7\t1\t0\n")
		}, "cgroups", Warn, "v1 (legacy): controllers cpu memory; missing pids io", "systemd.unified_cgroup_hierarchy=1"},
		{"cgroup hybrid", func(h *fakeHost) {
			h.proc("self/mountinfo", "31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755\n"+
				"32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"+
				"33 31 0:30 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"+
				"35 31 0:32 / /sys/fs/cgroup/blkio rw - cgroup cgroup rw,blkio\n"+
				"36 31 0:33 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n"+
				"37 31 0:34 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw,nsdelegate\n")
			h.proc("cgroups", "#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpu\t1\t17\t1\ncpuacct\t1\t17\t1\n"+
				"memory\t4\t70\t1\nblkio\t7\t1\t1\npids\t8\t1\t1\n")
		}, "cgroups", Warn, "hybrid: v1 controllers blkio cpu cpuacct memory pids; cgroup2 at /sys/fs/cgroup/unified", "systemd.unified_cgroup_hierarchy=1"},
		{"v2 without memory", func(h *fakeHost) {
			h.write(filepath.Join(h.Sys, "fs/cgroup/cgroup.controllers"), "cpu io pids\n")
		}, "cgroups", Warn, "v2, controllers cpu io pids; missing memory", "cgroup_enable"},
		{"v2 not delegated", func(h *fakeHost) { h.UID = 54321 }, "cgroups", OK, "none delegated to uid 54321 (systemd-run --user -p Delegate=yes", ""},
		{"no user namespaces", func(h *fakeHost) { h.proc("sys/user/max_user_namespaces", "0\n") }, "userns", Warn, "user.max_user_namespaces=0", "sysctl -w user.max_user_namespaces"},
		{"userns root only", func(h *fakeHost) {
			h.UID = 1000
			h.proc("sys/kernel/unprivileged_userns_clone", "0\n")
		}, "userns", Warn, "unprivileged_userns_clone=0", "sysctl -w kernel.unprivileged_userns_clone=1"},
		{"apparmor userns", func(h *fakeHost) {
			h.UID = 1000
			h.proc("sys/kernel/apparmor_restrict_unprivileged_userns", "1\n")
		}, "userns", Warn, "apparmor_restrict_unprivileged_userns=1", "apparmor_restrict_unprivileged_userns=0"},
		{"no user_ns in kernel", func(h *fakeHost) { h.proc("sys/user/max_user_namespaces", "") }, "userns", Warn, "no user namespaces", "CONFIG_USER_NS"},
		{"ip_forward off", func(h *fakeHost) { h.proc("sys/net/ipv4/ip_forward", "0\n") }, "ip_forward", Warn, "ip_forward=0", "sysctl -w net.ipv4.ip_forward=1"},
		{"no nft", func(*fakeHost) {}, "nftables", Fail, "no nft in PATH", "apt-get install nftables"},
		{"no seccomp", func(h *fakeHost) { h.proc("self/status", "Name:\tcheck\n") }, "seccomp", Warn, "no seccomp filters", "CONFIG_SECCOMP_FILTER"},
		{"no busybox", func(*fakeHost) {}, "busybox", Warn, "no busybox in PATH", "busybox-static"},
		{"dynamic busybox", func(h *fakeHost) {
			// a dynamically linked ELF program named busybox
			data, err := os.ReadFile("/usr/sbin/nft")
			if err != nil {
				h.t.Skip("needs /usr/sbin/nft as a dynamically linked program:", err)
			}
			h.program("busybox", string(data))
		}, "busybox", Warn, "dynamically linked", "busybox-static"},
		{"no dlv", func(*fakeHost) {}, "delve", Warn, "no dlv in PATH", "dlv@v1.27.2"},
		{"old dlv", func(h *fakeHost) {
			h.program("dlv", "#!/bin/sh\necho 'Delve Debugger'\necho 'Version: 1.25.0'\n")
		}, "delve", Warn, "1.25.0: older than 1.27", "dlv@v1.27.2"},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := newFakeHost(t)
			c.break_(h)
			r := result(t, Run(h.Host), c.check)
			if r.Status != c.status || !strings.Contains(r.Found, c.found) || !strings.Contains(r.Fix, c.fix) {
				t.Errorf("%s: %+v\nwant status %s, found containing %q, fix containing %q", c.check, r, c.status, c.found, c.fix)
			}
			if r.Status == OK && r.Fix != "" {
				t.Errorf("%s: OK with a fix %q", c.check, r.Fix)
			}
		})
	}
}

// The healthy fake machine: every engine check OK (tools are missing from
// its empty PATH, and nftables fails without nft).
func TestHealthyFake(t *testing.T) {
	h := newFakeHost(t)
	h.program("nft", "#!/bin/sh\necho 'nftables v1.0.6 (Lester Gooch #5)'\n")
	results := Run(h.Host)
	for _, r := range results {
		if !r.Tool && r.Status != OK {
			t.Errorf("%s: %+v, want ok", r.Name, r)
		}
	}
	if got := result(t, results, "cgroups").Found; got != "v2, controllers cpuset cpu io memory hugetlb pids rdma misc" {
		t.Errorf("cgroups found %q", got)
	}
	if got := result(t, results, "nftables").Found; got != "nftables v1.0.6 (Lester Gooch #5)" {
		t.Errorf("nftables found %q", got)
	}
	if w := Warnings(results); len(w) != 0 {
		t.Errorf("warnings %q, want none (tools are not the daemon's warnings)", w)
	}
	if Failed(results) {
		t.Error("Failed says yes")
	}
}

// Warnings: one line per engine finding that is not OK, with its fix.
func TestWarnings(t *testing.T) {
	h := newFakeHost(t)
	h.proc("sys/net/ipv4/ip_forward", "0\n")
	results := Run(h.Host) // no nft: a failure; no busybox, no dlv: tools
	got := Warnings(results)
	want := []string{
		"WARNING: ip_forward: net.ipv4.ip_forward=0: containers reach only this host until the daemon turns it on; fix: sysctl -w net.ipv4.ip_forward=1 (the daemon does it when it starts)",
		"WARNING: nftables: no nft in PATH; fix: apt-get install nftables",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("Warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !Failed(results) {
		t.Error("Failed says no with nftables failing")
	}
}

// A delegated v2 subtree (systemd's user@UID.service) as a user sees it:
// the highest cgroup above its own that it owns.
func TestDelegatedCgroup(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("chowns a directory to another uid: root")
	}
	h := newFakeHost(t)
	h.UID = 1000
	root := filepath.Join(h.Sys, "fs/cgroup")
	svc := filepath.Join(root, "user.slice/user-1000.slice/user@1000.service")
	scope := filepath.Join(svc, "app.slice/a.scope")
	h.write(filepath.Join(svc, "cgroup.controllers"), "cpu memory pids\n")
	h.write(filepath.Join(scope, "cgroup.procs"), "")
	for _, d := range []string{svc, filepath.Dir(scope), scope} {
		if err := os.Chown(d, 1000, 1000); err != nil {
			t.Fatal(err)
		}
	}
	r := result(t, Run(h.Host), "cgroups")
	want := "delegated to uid 1000 at /user.slice/user-1000.slice/user@1000.service: cpu memory pids"
	if r.Status != OK || !strings.Contains(r.Found, want) {
		t.Errorf("cgroups: %+v, want ok and %q", r, want)
	}
}
