package explain

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"minidock/api"
)

func TestParseNSLink(t *testing.T) {
	n, err := parseNSLink("net:[4026532008]")
	if err != nil || n != 4026532008 {
		t.Fatalf("parseNSLink = %d, %v", n, err)
	}
	for _, bad := range []string{"net:4026532008", "net:[x]", "", "net:[12"} {
		if _, err := parseNSLink(bad); err == nil {
			t.Errorf("parseNSLink(%q) gave no error", bad)
		}
	}
}

func TestParseProcCgroup(t *testing.T) {
	got := parseProcCgroup("9:name=systemd:/\n4:memory:/minidock/abc\n2:cpu,cpuacct:/minidock/abc\n0::/minidock/abc\n")
	want := map[string]string{"name=systemd": "/", "memory": "/minidock/abc", "cpu,cpuacct": "/minidock/abc", "": "/minidock/abc"}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%q: got %q, want %q", k, got[k], v)
		}
	}
	if sortedList("cpuacct,cpu") != "cpu,cpuacct" {
		t.Errorf("sortedList")
	}
}

func TestCgroupMeaning(t *testing.T) {
	for _, c := range []struct{ file, value, want string }{
		{"memory.max", "67108864", "limit 64.0MiB"},
		{"memory.max", "max", "no limit"},
		{"memory.limit_in_bytes", "67108864", "limit 64.0MiB"},
		{"memory.limit_in_bytes", v1Unlimited, "no limit"},
		{"memory.current", "1048576", "in use 1.0MiB"},
		{"memory.max_usage_in_bytes", "2048", "peak 2.0KiB"},
		{"cpu.max", "50000 100000", "0.50 CPUs"},
		{"cpu.max", "max 100000", "no CPU limit"},
		{"pids.max", "max", "no limit"},
		{"pids.max", "64", "at most 64 tasks"},
		{"pids.current", "1", "1 tasks now"},
	} {
		if got := cgroupMeaning(c.file, c.value); got != c.want {
			t.Errorf("cgroupMeaning(%s, %s) = %q, want %q", c.file, c.value, got, c.want)
		}
	}
}

func TestParseOverlayOptions(t *testing.T) {
	o := parseOverlayOptions("rw,lowerdir=/d/overlay/l/A:/d/overlay/l/B,upperdir=/d/c/upper,workdir=/d/c/work,index=off")
	if !slices.Equal(o.Lower, []string{"/d/overlay/l/A", "/d/overlay/l/B"}) || o.Upper != "/d/c/upper" || o.Work != "/d/c/work" {
		t.Fatalf("parsed %+v", o)
	}
}

func TestMatchingRules(t *testing.T) {
	listing := `table inet t {
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		fib daddr type local tcp dport 8080 dnat ip to 10.1.0.2:80
		fib daddr type local tcp dport 8081 dnat ip to 10.1.0.21:80
	}
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		ip saddr 10.1.0.0/24 oifname != "br0" masquerade
		oifname "br0x" ip saddr 127.0.0.0/8 masquerade
	}
}`
	got := matchingRules(listing, []string{"10.1.0.2", "br0"})
	want := []string{
		"prerouting: fib daddr type local tcp dport 8080 dnat ip to 10.1.0.2:80",
		`postrouting: ip saddr 10.1.0.0/24 oifname != "br0" masquerade`,
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestCapNames(t *testing.T) {
	got := capNames(1<<0 | 1<<21)
	if !slices.Equal(got, []string{"CAP_CHOWN", "CAP_SYS_ADMIN"}) {
		t.Fatalf("capNames = %v", got)
	}
	if got := capNames(0); got == nil || len(got) != 0 {
		t.Fatalf("capNames(0) = %#v, want []", got)
	}
}

// TestSecurityOfSelf reads this test process's own status: it only reads
// /proc, so it runs anywhere.
func TestSecurityOfSelf(t *testing.T) {
	s, err := Security(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Bounding) == 0 || len(s.UIDMap) == 0 || s.SeccompMode == "" {
		t.Fatalf("security of self: %+v", s)
	}
}

// TestProcessTreeOfSelf: the tree from this process's parent holds it,
// one level down, with its own command line.
func TestProcessTreeOfSelf(t *testing.T) {
	tree := ProcessTree(os.Getpid())
	if len(tree) < 2 || tree[0].Pid != os.Getppid() || tree[0].Role != "shim" {
		t.Fatalf("tree: %+v", tree)
	}
	for _, p := range tree {
		if p.Pid == os.Getpid() {
			if p.Role != "init" || p.Depth != 1 || p.Command != strings.Join(os.Args, " ") {
				t.Fatalf("self in tree: %+v", p)
			}
			return
		}
	}
	t.Fatalf("self not in tree: %+v", tree)
}

// TestCgroupOfSelf reads this process's own cgroup, on whatever layout
// the host has (v1 hybrid here, v2 in the VM of `make vm-test`): every
// directory found lists this process in its cgroup.procs.
func TestCgroupOfSelf(t *testing.T) {
	cg, err := Cgroup(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if cg.Mode == "" || cg.Path == "" || len(cg.Dirs) == 0 {
		t.Fatalf("cgroup of self: %+v", cg)
	}
	if cg.Mode == "unified" && len(cg.Dirs) != 1 || cg.Mode != "unified" && !slices.ContainsFunc(cg.Dirs, func(d api.ExplainCgroupDir) bool { return d.Hierarchy == "memory" }) {
		t.Fatalf("%s layout with dirs %+v", cg.Mode, cg.Dirs)
	}
	for _, d := range cg.Dirs {
		procs, err := os.ReadFile(d.Dir + "/cgroup.procs")
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(strings.Fields(string(procs)), strconv.Itoa(os.Getpid())) {
			t.Errorf("%s/cgroup.procs does not list pid %d", d.Dir, os.Getpid())
		}
	}
}
