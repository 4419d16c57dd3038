package cgroup

// Unit tests of the values written, against plain files in a temporary
// directory. They pin down formats and conversions; kernel_test.go is what
// shows the kernel takes them and enforces them.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// fakeDir makes dir with the given files, each holding its initial value.
func fakeDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, v := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func checkFiles(t *testing.T, dir string, want map[string]string) {
	t.Helper()
	for name, v := range want {
		got, err := readFile(dir, name)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		if got != v {
			t.Errorf("%s = %q, want %q", name, got, v)
		}
	}
}

func TestSharesToWeight(t *testing.T) {
	for shares, want := range map[uint64]uint64{0: 0, 1: 1, 2: 1, 1024: 100, 262144: 10000, 999999: 10000, 512: 59, 2048: 174} {
		if got := sharesToWeight(shares); got != want {
			t.Errorf("sharesToWeight(%d) = %d, want %d", shares, got, want)
		}
	}
}

func TestBlkioToIOWeight(t *testing.T) {
	for w, want := range map[uint16]uint64{0: 0, 10: 1, 500: 4950, 1000: 10000} {
		if got := blkioToIOWeight(w); got != want {
			t.Errorf("blkioToIOWeight(%d) = %d, want %d", w, got, want)
		}
	}
}

func TestSwapOnly(t *testing.T) {
	for _, c := range []struct {
		limit, swap *int64
		want        int64
		ok          bool
		err         bool
	}{
		{nil, nil, 0, false, false},
		{i64(-1), nil, -1, true, false},      // unlimited memory: unlimited swap too
		{i64(100), i64(100), 0, true, false}, // memory+swap = memory: no swap
		{i64(100), i64(300), 200, true, false},
		{i64(100), i64(-1), -1, true, false},
		{i64(-1), i64(300), 300, true, false},
		{nil, i64(300), 0, false, true}, // swap alone cannot be converted
	} {
		v, ok, err := swapOnly(c.limit, c.swap)
		if v != c.want || ok != c.ok || (err != nil) != c.err {
			t.Errorf("swapOnly(%v, %v) = %d, %v, %v; want %d, %v, error %v", deref(c.limit), deref(c.swap), v, ok, err, c.want, c.ok, c.err)
		}
	}
}

func deref(p *int64) any {
	if p == nil {
		return nil
	}
	return *p
}

func TestV2Writes(t *testing.T) {
	dir := fakeDir(t, map[string]string{
		"memory.max": "max", "memory.swap.max": "max", "memory.low": "0",
		"cpu.weight": "100", "cpu.max": "max 100000", "cpu.max.burst": "0",
		"cpuset.cpus": "", "cpuset.mems": "", "pids.max": "max",
		"io.weight": "default 100", "io.max": "", "memory.high": "max",
	})
	m := &v2{root: filepath.Dir(dir), path: "/" + filepath.Base(dir), dir: dir}
	err := m.set(&specs.LinuxResources{
		Memory:  &specs.LinuxMemory{Limit: i64(256 << 20), Swap: i64(384 << 20), Reservation: i64(64 << 20)},
		CPU:     &specs.LinuxCPU{Shares: u64(1024), Quota: i64(50000), Burst: u64(1000), Cpus: "0-1", Mems: "0"},
		Pids:    &specs.LinuxPids{Limit: i64(-1)},
		BlockIO: &specs.LinuxBlockIO{Weight: u16(1000), ThrottleReadBpsDevice: []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 0}, Rate: 1 << 20}}},
		Unified: map[string]string{"memory.high": "200M"},
	})
	if err != nil {
		t.Fatal(err)
	}
	checkFiles(t, dir, map[string]string{
		"memory.max": "268435456", "memory.swap.max": "134217728", "memory.low": "67108864",
		"cpu.weight": "100", "cpu.max": "50000 100000", "cpu.max.burst": "1000",
		"cpuset.cpus": "0-1", "cpuset.mems": "0", "pids.max": "max",
		"io.weight": "default 10000", "io.max": "8:0 rbps=1048576", "memory.high": "200M",
	})
	// A period alone keeps the quota; -1 is "max".
	if err := m.set(&specs.LinuxResources{CPU: &specs.LinuxCPU{Period: u64(20000)}, Memory: &specs.LinuxMemory{Limit: i64(-1)}}); err != nil {
		t.Fatal(err)
	}
	checkFiles(t, dir, map[string]string{"cpu.max": "50000 20000", "memory.max": "max", "memory.swap.max": "max"})
	if err := m.set(&specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: i64(-1)}, Pids: &specs.LinuxPids{Limit: i64(0)}}); err != nil {
		t.Fatal(err)
	}
	checkFiles(t, dir, map[string]string{"cpu.max": "max 20000", "pids.max": "0"})
}

func TestV2MissingSwapFile(t *testing.T) {
	dir := fakeDir(t, map[string]string{"memory.max": "max"})
	m := &v2{dir: dir}
	// No swap accounting: "no swap" already holds, so that is fine...
	if err := m.setMemory(&specs.LinuxMemory{Limit: i64(100), Swap: i64(100)}); err != nil {
		t.Errorf("swap = limit without memory.swap.max: %v", err)
	}
	// ...but a real swap allowance cannot be honoured.
	err := m.setMemory(&specs.LinuxMemory{Limit: i64(100), Swap: i64(200)})
	if err == nil || !strings.Contains(err.Error(), "memory.swap.max") {
		t.Errorf("swap allowance without memory.swap.max: got %v", err)
	}
}

func TestV1Writes(t *testing.T) {
	unlimited := "9223372036854771712"
	root := t.TempDir()
	files := map[string]map[string]string{
		"memory":  {"memory.limit_in_bytes": unlimited, "memory.memsw.limit_in_bytes": unlimited, "memory.soft_limit_in_bytes": unlimited, "memory.swappiness": "60", "memory.oom_control": "oom_kill_disable 0"},
		"cpu":     {"cpu.shares": "1024", "cpu.cfs_period_us": "100000", "cpu.cfs_quota_us": "-1"},
		"cpuset":  {"cpuset.cpus": "", "cpuset.mems": ""},
		"pids":    {"pids.max": "max"},
		"blkio":   {"blkio.bfq.weight": "100", "blkio.throttle.write_iops_device": ""},
		"freezer": {"freezer.state": "THAWED"},
	}
	m := &v1{mode: Legacy, path: "/c", mounts: map[string]string{}}
	for c, fs := range files {
		m.mounts[c] = filepath.Join(root, c)
		if err := os.MkdirAll(m.dir(c), 0o755); err != nil {
			t.Fatal(err)
		}
		for name, v := range fs {
			if err := os.WriteFile(filepath.Join(m.dir(c), name), []byte(v), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	err := m.set(&specs.LinuxResources{
		Memory:  &specs.LinuxMemory{Limit: i64(256 << 20), Swap: i64(-1), Reservation: i64(64 << 20), Swappiness: u64(0), DisableOOMKiller: boolp(true)},
		CPU:     &specs.LinuxCPU{Shares: u64(512), Quota: i64(50000), Period: u64(200000), Cpus: "1", Mems: "0"},
		Pids:    &specs.LinuxPids{Limit: i64(-1)},
		BlockIO: &specs.LinuxBlockIO{Weight: u16(200), ThrottleWriteIOPSDevice: []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 253, Minor: 1}, Rate: 300}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	checkFiles(t, m.dir("memory"), map[string]string{"memory.limit_in_bytes": "268435456", "memory.memsw.limit_in_bytes": "-1",
		"memory.soft_limit_in_bytes": "67108864", "memory.swappiness": "0", "memory.oom_control": "1"})
	checkFiles(t, m.dir("cpu"), map[string]string{"cpu.shares": "512", "cpu.cfs_quota_us": "50000", "cpu.cfs_period_us": "200000"})
	checkFiles(t, m.dir("cpuset"), map[string]string{"cpuset.cpus": "1", "cpuset.mems": "0"})
	checkFiles(t, m.dir("pids"), map[string]string{"pids.max": "max"})
	checkFiles(t, m.dir("blkio"), map[string]string{"blkio.bfq.weight": "200", "blkio.throttle.write_iops_device": "253:1 300"})
}

func TestCopyCpuset(t *testing.T) {
	parent := fakeDir(t, map[string]string{"cpuset.cpus": "0-3\n", "cpuset.mems": "0\n"})
	child := filepath.Join(parent, "child")
	if err := os.Mkdir(child, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
		if err := os.WriteFile(filepath.Join(child, f), []byte("\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := copyCpuset(nil, child); err != nil {
		t.Fatal(err)
	}
	checkFiles(t, child, map[string]string{"cpuset.cpus": "0-3", "cpuset.mems": "0"})
}

func TestV1Mounts(t *testing.T) {
	mi := filepath.Join(t.TempDir(), "mountinfo")
	err := os.WriteFile(mi, []byte(`25 30 0:23 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755
26 25 0:24 / /sys/fs/cgroup/unified rw,nosuid shared:6 - cgroup2 cgroup2 rw,nsdelegate
27 25 0:25 / /sys/fs/cgroup/systemd rw,nosuid shared:7 - cgroup cgroup rw,xattr,name=systemd
30 25 0:28 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid shared:11 - cgroup cgroup rw,cpu,cpuacct
31 25 0:29 / /sys/fs/cgroup/memory rw,nosuid shared:12 - cgroup cgroup rw,memory
`), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	got, err := v1Mounts(mi)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"cpu": "/sys/fs/cgroup/cpu,cpuacct", "cpuacct": "/sys/fs/cgroup/cpu,cpuacct", "memory": "/sys/fs/cgroup/memory"}
	if len(got) != len(want) {
		t.Errorf("v1Mounts = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("v1Mounts[%s] = %q, want %q", k, got[k], v)
		}
	}
	m := &v1{path: "/x", mounts: got}
	if h := m.hierarchies(); len(h) != 2 {
		t.Errorf("hierarchies() = %v: a co-mounted cpu,cpuacct is one directory", h)
	}
}

func TestValidateRefusesUnsupported(t *testing.T) {
	for _, c := range []struct {
		r    *specs.LinuxResources
		want string
	}{
		{&specs.LinuxResources{Memory: &specs.LinuxMemory{Kernel: i64(1)}}, "kernel"},
		{&specs.LinuxResources{Memory: &specs.LinuxMemory{Swappiness: u64(101)}}, "swappiness 101"},
		{&specs.LinuxResources{CPU: &specs.LinuxCPU{RealtimeRuntime: i64(1)}}, "realtime"},
		{&specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: i64(2000), Burst: u64(3000)}}, "burst"},
		{&specs.LinuxResources{Network: &specs.LinuxNetwork{}}, "network"},
		{&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(-2)}}, "memory.limit -2"},
	} {
		if err := validate(c.r); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("validate: got %v, want an error containing %q", err, c.want)
		}
	}
	if err := validate(&specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(0)}}); err != nil {
		t.Errorf("pids.limit 0 is a valid limit: %v", err)
	}
}

func TestControllersFor(t *testing.T) {
	got := controllersFor(&specs.LinuxResources{
		Memory:  &specs.LinuxMemory{Limit: i64(1)},
		CPU:     &specs.LinuxCPU{Cpus: "0"},
		Unified: map[string]string{"hugetlb.2MB.max": "0", "cgroup.max.depth": "2"},
	})
	if strings.Join(got, " ") != "cpuset hugetlb memory" {
		t.Errorf("controllersFor = %v", got)
	}
}
