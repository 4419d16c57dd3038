package cgroup

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"minidock/internal/trace"
)

// v1Controllers are the v1 hierarchies a container joins. Several may share
// one mount (cpu,cpuacct); the directory is then made once.
var v1Controllers = []string{"memory", "cpu", "cpuacct", "cpuset", "pids", "blkio", "freezer", "devices"}

// unifiedKey names the cgroup2 mount of a hybrid host in v1.mounts.
const unifiedKey = "unified"

// v1 drives one cgroup made of a directory in each v1 hierarchy, plus one
// in the cgroup2 mount on a hybrid host (which holds no controllers there
// but tracks the processes, and offers cgroup.kill).
type v1 struct {
	mode   Mode
	path   string            // the cgroup, /minidock/abc
	mounts map[string]string // controller (or unifiedKey) -> mount point
	t      *trace.Tracer
}

func newV1(mode Mode, p string) (*v1, error) {
	mounts, err := v1Mounts("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	if len(mounts) == 0 {
		return nil, fmt.Errorf("cgroup v1: no controller hierarchy is mounted (see /proc/self/mountinfo)")
	}
	if mode == Hybrid {
		mounts[unifiedKey] = hybridRoot
	}
	return &v1{mode: mode, path: p, mounts: mounts}, nil
}

// v1Mounts finds the mount point of each v1 controller in mountinfo: lines
// whose filesystem type is "cgroup" list their controllers among the
// super options, e.g. "... - cgroup cgroup rw,cpu,cpuacct".
func v1Mounts(mountinfo string) (map[string]string, error) {
	f, err := os.Open(mountinfo)
	if err != nil {
		return nil, fmt.Errorf("open %w", err)
	}
	defer f.Close()
	mounts := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		sep := slices.Index(fields, "-")
		if sep < 5 || len(fields) < sep+4 || fields[sep+1] != "cgroup" {
			continue
		}
		for _, opt := range strings.Split(fields[sep+3], ",") {
			if slices.Contains(v1Controllers, opt) {
				if _, seen := mounts[opt]; !seen {
					mounts[opt] = fields[4]
				}
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", mountinfo, err)
	}
	return mounts, nil
}

// Path returns the cgroup path relative to each hierarchy's mount.
func (m *v1) Path() string { return m.path }

// dir is the cgroup's directory in the hierarchy of controller c, or ""
// when that hierarchy is not mounted.
func (m *v1) dir(c string) string {
	mp, ok := m.mounts[c]
	if !ok {
		return ""
	}
	return filepath.Join(mp, m.path)
}

// hierarchies lists the distinct mount points, in a fixed order.
func (m *v1) hierarchies() []string {
	var out []string
	for _, mp := range m.mounts {
		if !slices.Contains(out, mp) {
			out = append(out, mp)
		}
	}
	slices.Sort(out)
	return out
}

// Create makes the cgroup's directory in every hierarchy, copying cpuset.cpus
// and cpuset.mems down into each new cpuset directory (the kernel leaves
// them empty, and no task may join an empty cpuset), then writes r. On
// error it removes whatever it made.
func (m *v1) Create(r *specs.LinuxResources) (err error) {
	if err := m.check(r); err != nil {
		return err
	}
	var made []string
	defer func() {
		if err != nil {
			for _, d := range slices.Backward(made) {
				_ = rmdir(m.t, d)
			}
		}
	}()
	for _, mp := range m.hierarchies() {
		isCpuset := mp == m.mounts["cpuset"]
		err := retryIfVanished(func() error {
			err := mkdirAll(m.t, mp, m.path, func(dir string) error {
				made = append(made, dir)
				return nil
			})
			if err != nil || !isCpuset {
				return err
			}
			// Every level, not only the new ones: a parent made a moment
			// ago by a concurrent Create may still have an empty cpuset.
			dir := mp
			for _, e := range strings.Split(strings.Trim(m.path, "/"), "/") {
				dir = filepath.Join(dir, e)
				if err := copyCpuset(m.t, dir); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return m.set(r)
}

// copyCpuset fills an empty cpuset.cpus and cpuset.mems of a directory
// with its parent's values: a v1 cpuset cgroup with no CPUs or memory nodes
// takes no process.
func copyCpuset(t *trace.Tracer, dir string) error {
	for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
		v, err := readFile(dir, f)
		if err != nil {
			return err
		}
		if v != "" {
			continue
		}
		parent, err := readFile(filepath.Dir(dir), f)
		if err != nil {
			return err
		}
		if err := writeFile(t, dir, f, parent); err != nil {
			return err
		}
	}
	return nil
}

// check validates r for cgroup v1 and makes sure each controller it needs
// is mounted.
func (m *v1) check(r *specs.LinuxResources) error {
	if err := validate(r); err != nil {
		return err
	}
	if r == nil {
		return nil
	}
	if len(r.Unified) > 0 {
		return fmt.Errorf("linux.resources.unified needs cgroup v2; this host's cgroups are %s", m.mode)
	}
	for _, c := range controllersFor(r) {
		if c == "io" {
			c = "blkio"
		}
		if m.dir(c) == "" {
			return fmt.Errorf("cgroup v1 controller %q is not mounted (see /proc/self/mountinfo)", c)
		}
	}
	if len(r.Devices) > 0 && m.dir("devices") == "" {
		return fmt.Errorf("linux.resources.devices: cgroup v1 controller \"devices\" is not mounted (see /proc/self/mountinfo)")
	}
	return nil
}

// set writes r, one controller after the other.
func (m *v1) set(r *specs.LinuxResources) error {
	if r == nil {
		return nil
	}
	if err := m.setMemory(r.Memory); err != nil {
		return err
	}
	if err := m.setCPU(r.CPU); err != nil {
		return err
	}
	if err := m.setCpuset(r.CPU); err != nil {
		return err
	}
	if err := m.setPids(r.Pids); err != nil {
		return err
	}
	if err := m.setBlkio(r.BlockIO); err != nil {
		return err
	}
	return m.setDevices(r.Devices) // devices_v1.go
}

// setMemory writes memory.limit_in_bytes (the hard limit),
// memory.memsw.limit_in_bytes (memory+swap, exactly OCI's swap),
// memory.soft_limit_in_bytes (the reservation), memory.swappiness and
// memory.oom_control. The kernel refuses a memsw limit below the memory
// limit at every moment, so when the limit grows memsw is written first,
// and when it shrinks last. -1 means no limit; 0 means "not set".
func (m *v1) setMemory(mem *specs.LinuxMemory) error {
	if mem == nil {
		return nil
	}
	dir := m.dir("memory")
	limit, swap := int64(0), int64(0)
	if mem.Limit != nil {
		limit = *mem.Limit
	}
	if mem.Swap != nil {
		swap = *mem.Swap
	}
	writeLimit := func() error {
		if limit == 0 {
			return nil
		}
		return writeFile(m.t, dir, "memory.limit_in_bytes", strconv.FormatInt(limit, 10))
	}
	writeSwap := func() error {
		if swap == 0 {
			return nil
		}
		err := writeFile(m.t, dir, "memory.memsw.limit_in_bytes", strconv.FormatInt(swap, 10))
		if errors.Is(err, unix.ENOENT) && swap == -1 {
			return nil // no swap accounting: memory+swap is already unlimited
		}
		return err
	}
	first, second := writeLimit, writeSwap
	if limit != 0 && swap != 0 {
		cur, err := readUint(dir, "memory.limit_in_bytes")
		if err != nil {
			return err
		}
		if limit == -1 || uint64(limit) > cur {
			first, second = writeSwap, writeLimit
		}
	}
	if err := first(); err != nil {
		return err
	}
	if err := second(); err != nil {
		return err
	}
	if mem.Reservation != nil && *mem.Reservation != 0 {
		if err := writeFile(m.t, dir, "memory.soft_limit_in_bytes", strconv.FormatInt(*mem.Reservation, 10)); err != nil {
			return err
		}
	}
	if mem.Swappiness != nil {
		if err := writeFile(m.t, dir, "memory.swappiness", strconv.FormatUint(*mem.Swappiness, 10)); err != nil {
			return err
		}
	}
	if mem.DisableOOMKiller != nil {
		v := "0"
		if *mem.DisableOOMKiller {
			v = "1"
		}
		if err := writeFile(m.t, dir, "memory.oom_control", v); err != nil {
			return err
		}
	}
	return nil
}

// setCPU writes cpu.shares (relative weight), cpu.cfs_period_us then
// cpu.cfs_quota_us (the group may run quota µs in every period µs; -1 is
// no limit), cpu.cfs_burst_us and cpu.idle.
func (m *v1) setCPU(c *specs.LinuxCPU) error {
	if c == nil {
		return nil
	}
	dir := m.dir("cpu")
	if c.Shares != nil && *c.Shares != 0 {
		if err := writeFile(m.t, dir, "cpu.shares", strconv.FormatUint(*c.Shares, 10)); err != nil {
			return err
		}
	}
	if c.Period != nil && *c.Period != 0 {
		if err := writeFile(m.t, dir, "cpu.cfs_period_us", strconv.FormatUint(*c.Period, 10)); err != nil {
			return err
		}
	}
	if c.Quota != nil && *c.Quota != 0 {
		if err := writeFile(m.t, dir, "cpu.cfs_quota_us", strconv.FormatInt(*c.Quota, 10)); err != nil {
			return err
		}
	}
	if c.Burst != nil {
		if err := writeFile(m.t, dir, "cpu.cfs_burst_us", strconv.FormatUint(*c.Burst, 10)); err != nil {
			return err
		}
	}
	if c.Idle != nil {
		if err := writeFile(m.t, dir, "cpu.idle", strconv.FormatInt(*c.Idle, 10)); err != nil {
			return err
		}
	}
	return nil
}

// setCpuset writes cpuset.cpus and cpuset.mems.
func (m *v1) setCpuset(c *specs.LinuxCPU) error {
	if c == nil {
		return nil
	}
	dir := m.dir("cpuset")
	if c.Cpus != "" {
		if err := writeFile(m.t, dir, "cpuset.cpus", c.Cpus); err != nil {
			return err
		}
	}
	if c.Mems != "" {
		if err := writeFile(m.t, dir, "cpuset.mems", c.Mems); err != nil {
			return err
		}
	}
	return nil
}

// setPids writes pids.max; -1 is "max".
func (m *v1) setPids(p *specs.LinuxPids) error {
	if p == nil || p.Limit == nil {
		return nil
	}
	return writeFile(m.t, m.dir("pids"), "pids.max", maxOrNum(*p.Limit))
}

// setBlkio writes blkio.weight and blkio.weight_device (or their BFQ
// twins blkio.bfq.*, which kernels without CFQ offer instead), and the
// blkio.throttle.*_device limits ("MAJ:MIN RATE"; 0 removes the limit).
func (m *v1) setBlkio(b *specs.LinuxBlockIO) error {
	if b == nil {
		return nil
	}
	dir := m.dir("blkio")
	weight, weightDev := "blkio.weight", "blkio.weight_device"
	if _, err := os.Stat(filepath.Join(dir, weight)); errors.Is(err, os.ErrNotExist) {
		weight, weightDev = "blkio.bfq.weight", "blkio.bfq.weight_device"
	}
	if b.Weight != nil && *b.Weight != 0 {
		if err := writeFile(m.t, dir, weight, strconv.FormatUint(uint64(*b.Weight), 10)); err != nil {
			return err
		}
	}
	for _, d := range b.WeightDevice {
		if d.Weight == nil {
			continue
		}
		if err := writeFile(m.t, dir, weightDev, fmt.Sprintf("%d:%d %d", d.Major, d.Minor, *d.Weight)); err != nil {
			return err
		}
	}
	for _, t := range []struct {
		file string
		devs []specs.LinuxThrottleDevice
	}{
		{"blkio.throttle.read_bps_device", b.ThrottleReadBpsDevice},
		{"blkio.throttle.write_bps_device", b.ThrottleWriteBpsDevice},
		{"blkio.throttle.read_iops_device", b.ThrottleReadIOPSDevice},
		{"blkio.throttle.write_iops_device", b.ThrottleWriteIOPSDevice},
	} {
		for _, d := range t.devs {
			if err := writeFile(m.t, dir, t.file, fmt.Sprintf("%d:%d %d", d.Major, d.Minor, d.Rate)); err != nil {
				return err
			}
		}
	}
	return nil
}

// AddProc writes pid to cgroup.procs in every hierarchy.
func (m *v1) AddProc(pid int) error {
	for _, mp := range m.hierarchies() {
		if err := writeFile(m.t, filepath.Join(mp, m.path), "cgroup.procs", strconv.Itoa(pid)); err != nil {
			return err
		}
	}
	return nil
}

// Update writes r to the existing cgroup after the same checks as Create.
func (m *v1) Update(r *specs.LinuxResources) error {
	if err := m.check(r); err != nil {
		return err
	}
	if err := checkBeforeUpdate(r, m.dir("memory"), "memory.usage_in_bytes"); err != nil {
		return err
	}
	return m.set(r)
}

// Freeze writes FROZEN to freezer.state until it reads back FROZEN. While
// it reads FREEZING some task has not stopped yet (perhaps it was forking);
// writing FROZEN again retries it. If the cgroup will not freeze, Freeze
// thaws it and fails rather than leave it half frozen.
func (m *v1) Freeze() error {
	dir := m.dir("freezer")
	if dir == "" {
		return fmt.Errorf("freeze %s: cgroup v1 controller \"freezer\" is not mounted", m.path)
	}
	err := waitFor(10*time.Second, "freeze "+dir, func() (bool, error) {
		if err := writeFile(m.t, dir, "freezer.state", "FROZEN"); err != nil {
			return false, err
		}
		state, err := readFile(dir, "freezer.state")
		return state == "FROZEN", err
	})
	if err != nil {
		_ = writeFile(m.t, dir, "freezer.state", "THAWED")
	}
	return err
}

// Thaw writes THAWED to freezer.state.
func (m *v1) Thaw() error {
	dir := m.dir("freezer")
	if dir == "" {
		return fmt.Errorf("thaw %s: cgroup v1 controller \"freezer\" is not mounted", m.path)
	}
	return writeFile(m.t, dir, "freezer.state", "THAWED")
}

// Frozen reads freezer.state: FROZEN once every task has stopped.
func (m *v1) Frozen() (bool, error) {
	dir := m.dir("freezer")
	if dir == "" {
		return false, nil
	}
	state, err := readFile(dir, "freezer.state")
	return state == "FROZEN", err
}

// Pids reads cgroup.procs of the cgroup and of every cgroup below it, in
// the pids hierarchy (or another one when pids is not mounted: every
// hierarchy holds the same processes).
func (m *v1) Pids() ([]int, error) {
	for _, c := range []string{"pids", "freezer", "memory", "cpu", unifiedKey} {
		if d := m.dir(c); d != "" {
			return readPidsTree(d)
		}
	}
	return readPidsTree(filepath.Join(m.hierarchies()[0], m.path))
}

// KillAll uses cgroup.kill of the cgroup2 directory on a hybrid host when
// sig is SIGKILL, then thaws the v1 freezer: a frozen v1 task only dies
// once it runs. Otherwise it freezes the cgroup so that no process forks
// in the meantime, signals each one, and thaws it again; without a freezer
// it can only signal the processes it sees.
func (m *v1) KillAll(sig unix.Signal) error {
	fdir := m.dir("freezer")
	if d := m.dir(unifiedKey); d != "" && sig == unix.SIGKILL {
		err := writeFile(m.t, d, "cgroup.kill", "1")
		if err == nil && fdir != "" {
			err = m.Thaw()
		}
		if !errors.Is(err, unix.ENOENT) {
			return err
		}
	}
	if fdir == "" {
		pids, err := m.Pids()
		if err != nil {
			return err
		}
		return killPids(pids, sig)
	}
	state, err := readFile(fdir, "freezer.state")
	if err != nil {
		return err
	}
	return freezeAndSignal(m, sig, state == "FROZEN")
}

// Stats reads cpuacct.usage, cpuacct.usage_percpu and cpuacct.stat, cpu.stat,
// the memory.* usage/limit/failcnt files (memory, memsw and kmem) and
// memory.stat, pids.current/max and the blkio.throttle counters. A
// hierarchy that is not mounted is skipped.
func (m *v1) Stats() (*Stats, error) {
	s := &Stats{}
	for c, f := range map[string]func(string, *Stats) error{
		"cpuacct": cpuacctStats, "cpu": throttleStats, "memory": memoryStatsV1,
		"pids": pidsStatsV1, "blkio": blkioStatsV1,
	} {
		if d := m.dir(c); d != "" {
			if err := f(d, s); err != nil {
				return nil, err
			}
		}
	}
	return s, nil
}

// userHZ is the unit of cpuacct.stat: clock ticks of 1/100 s (USER_HZ is
// part of the kernel ABI and 100 on every architecture Go runs on Linux).
const userHZ = 100

func cpuacctStats(dir string, s *Stats) error {
	var err error
	if s.CPU.Usage.Total, err = readUint(dir, "cpuacct.usage"); err != nil {
		return err
	}
	percpu, err := readFile(dir, "cpuacct.usage_percpu")
	if err != nil {
		return err
	}
	for _, f := range strings.Fields(percpu) {
		v, err := parseUint(f, dir+"/cpuacct.usage_percpu")
		if err != nil {
			return err
		}
		s.CPU.Usage.Percpu = append(s.CPU.Usage.Percpu, v)
	}
	st, err := readKeyValues(dir, "cpuacct.stat")
	if err != nil {
		return err
	}
	s.CPU.Usage.User = st["user"] * (1e9 / userHZ)
	s.CPU.Usage.Kernel = st["system"] * (1e9 / userHZ)
	return nil
}

func throttleStats(dir string, s *Stats) error {
	st, err := readKeyValues(dir, "cpu.stat")
	if err != nil {
		return err
	}
	s.CPU.Throttling.Periods = st["nr_periods"]
	s.CPU.Throttling.ThrottledPeriods = st["nr_throttled"]
	s.CPU.Throttling.ThrottledTime = st["throttled_time"]
	return nil
}

func memoryStatsV1(dir string, s *Stats) error {
	for _, e := range []struct {
		prefix string
		entry  *MemoryEntry
	}{
		{"memory.", &s.Memory.Usage},
		{"memory.memsw.", &s.Memory.Swap},
		{"memory.kmem.", &s.Memory.Kernel},
	} {
		if _, err := os.Stat(filepath.Join(dir, e.prefix+"usage_in_bytes")); errors.Is(err, os.ErrNotExist) {
			continue // no swap accounting, or no kmem accounting
		}
		for _, f := range []struct {
			name string
			val  *uint64
		}{
			{"usage_in_bytes", &e.entry.Usage}, {"max_usage_in_bytes", &e.entry.Max},
			{"limit_in_bytes", &e.entry.Limit}, {"failcnt", &e.entry.Failcnt},
		} {
			v, err := readUint(dir, e.prefix+f.name)
			if err != nil {
				return err
			}
			*f.val = v
		}
	}
	raw, err := readKeyValues(dir, "memory.stat")
	if err != nil {
		return err
	}
	s.Memory.Raw = raw
	s.Memory.Cache = raw["cache"]
	return nil
}

func pidsStatsV1(dir string, s *Stats) error {
	var err error
	if s.Pids.Current, err = readUint(dir, "pids.current"); err != nil {
		return err
	}
	lim, err := readUint(dir, "pids.max")
	if err != nil {
		return err
	}
	if lim != ^uint64(0) {
		s.Pids.Limit = lim
	}
	return nil
}

// blkioStatsV1 parses the throttle counters ("8:0 Read 4096" lines, then
// "Total N"); they count I/O on every kernel, whatever the I/O scheduler.
func blkioStatsV1(dir string, s *Stats) error {
	for _, f := range []struct {
		name string
		out  *[]BlkioEntry
	}{
		{"blkio.throttle.io_service_bytes_recursive", &s.Blkio.IoServiceBytesRecursive},
		{"blkio.throttle.io_serviced_recursive", &s.Blkio.IoServicedRecursive},
	} {
		text, err := readFile(dir, f.name)
		if err != nil {
			return err
		}
		for _, line := range strings.Split(text, "\n") {
			fields := strings.Fields(line)
			if len(fields) != 3 {
				continue // "Total N"
			}
			var e BlkioEntry
			if _, err := fmt.Sscanf(fields[0], "%d:%d", &e.Major, &e.Minor); err != nil {
				return fmt.Errorf("parse %q in %s/%s: %w", line, dir, f.name, err)
			}
			e.Op = fields[1]
			if e.Value, err = strconv.ParseUint(fields[2], 10, 64); err != nil {
				return fmt.Errorf("parse %q in %s/%s: %w", line, dir, f.name, err)
			}
			*f.out = append(*f.out, e)
		}
	}
	return nil
}

// OOMKillCount reads oom_kill from memory.oom_control (Linux 4.13+).
func (m *v1) OOMKillCount() (uint64, error) {
	dir := m.dir("memory")
	if dir == "" {
		return 0, fmt.Errorf("oom count of %s: cgroup v1 controller \"memory\" is not mounted", m.path)
	}
	st, err := readKeyValues(dir, "memory.oom_control")
	if err != nil {
		return 0, err
	}
	v, ok := st["oom_kill"]
	if !ok {
		return 0, fmt.Errorf("%s/memory.oom_control has no oom_kill line (Linux 4.13+ needed)", dir)
	}
	return v, nil
}

// Destroy removes the cgroup's directory (and any below it) in every
// hierarchy.
func (m *v1) Destroy() error {
	var errs []error
	for _, mp := range m.hierarchies() {
		errs = append(errs, removeTree(m.t, filepath.Join(mp, m.path)))
		removeDefaultParent(mp, m.path)
	}
	return errors.Join(errs...)
}
