package cgroup

import (
	"errors"
	"fmt"
	"math"
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

// v2Controllers are enabled in every ancestor's cgroup.subtree_control when
// the kernel offers them, so that the container's directory has their files
// (for limits and for Stats) whether or not a limit is set.
var v2Controllers = []string{"cpu", "cpuset", "io", "memory", "pids"}

// v2 drives one cgroup in the unified hierarchy: a single directory.
type v2 struct {
	root string // the cgroup2 mount, /sys/fs/cgroup
	path string // the cgroup, /minidock/abc
	dir  string // root + path
	t    *trace.Tracer
}

func newV2(root, p string) *v2 {
	return &v2{root: root, path: p, dir: filepath.Join(root, p)}
}

// Path returns the cgroup path relative to the cgroup2 mount.
func (m *v2) Path() string { return m.path }

// Create makes the directory and each missing ancestor, enabling the
// controllers in every ancestor's cgroup.subtree_control on the way down
// (a v2 controller's files only appear in a cgroup whose parent enabled
// it), then writes r. Whatever it made is removed again if any step fails.
func (m *v2) Create(r *specs.LinuxResources) (err error) {
	need, err := m.check(r, m.root)
	if err != nil {
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
	// An ancestor can vanish under us when the last container of the shared
	// parent is destroyed at that moment (removeDefaultParent): start over.
	err = retryIfVanished(func() error {
		dir := m.root
		for _, e := range strings.Split(strings.Trim(m.path, "/"), "/") {
			if err := enableControllers(m.t, dir, need); err != nil {
				return err
			}
			dir = filepath.Join(dir, e)
			if err := mkdir(m.t, dir); err != nil && !errors.Is(err, unix.EEXIST) {
				return fmt.Errorf("mkdir %s: %w", dir, err)
			} else if err == nil {
				made = append(made, dir)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return m.set(r)
}

// check validates r for cgroup v2 and returns the controllers it needs,
// making sure that dir's cgroup.controllers offers each of them.
func (m *v2) check(r *specs.LinuxResources, dir string) ([]string, error) {
	if err := validate(r); err != nil {
		return nil, err
	}
	if r != nil && r.Memory != nil {
		if r.Memory.Swappiness != nil {
			return nil, fmt.Errorf("memory.swappiness: cgroup v2 has no per-cgroup swappiness")
		}
		if r.Memory.DisableOOMKiller != nil && *r.Memory.DisableOOMKiller {
			return nil, fmt.Errorf("memory.disableOOMKiller: cgroup v2 cannot turn the OOM killer off")
		}
	}
	if r != nil {
		for k := range r.Unified {
			if _, _, ok := strings.Cut(k, "."); !ok || strings.ContainsAny(k, "/\x00") {
				return nil, fmt.Errorf("unified key %q: want a file name such as memory.high", k)
			}
		}
	}
	need := controllersFor(r)
	avail, err := readFile(dir, "cgroup.controllers")
	if err != nil {
		return nil, err
	}
	for _, c := range need {
		if !slices.Contains(strings.Fields(avail), c) {
			return nil, fmt.Errorf("cgroup v2 controller %q is not available in %s (cgroup.controllers: %q)", c, dir, avail)
		}
	}
	return need, nil
}

// enableControllers writes "+name" to dir's cgroup.subtree_control for the
// usual controllers and those in need, one at a time. A needed controller
// that cannot be enabled is an error; the others are skipped.
func enableControllers(t *trace.Tracer, dir string, need []string) error {
	availS, err := readFile(dir, "cgroup.controllers")
	if err != nil {
		return err
	}
	enabledS, err := readFile(dir, "cgroup.subtree_control")
	if err != nil {
		return err
	}
	avail, enabled := strings.Fields(availS), strings.Fields(enabledS)
	for _, c := range append(slices.Clone(v2Controllers), need...) {
		if slices.Contains(enabled, c) {
			continue
		}
		needed := slices.Contains(need, c)
		if !slices.Contains(avail, c) {
			if needed {
				return fmt.Errorf("cgroup v2 controller %q is not available in %s (cgroup.controllers: %q)", c, dir, availS)
			}
			continue
		}
		if err := writeFile(t, dir, "cgroup.subtree_control", "+"+c); err != nil && needed {
			return fmt.Errorf("enable controller %q: %w", c, err)
		}
		enabled = append(enabled, c)
	}
	return nil
}

// set writes r, one controller after the other.
func (m *v2) set(r *specs.LinuxResources) error {
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
	if err := m.setIO(r.BlockIO); err != nil {
		return err
	}
	if err := m.setUnified(r.Unified); err != nil {
		return err
	}
	return m.setDevices(r.Devices) // devices_v2.go: an eBPF program, not a file
}

// setMemory writes memory.swap.max (OCI's swap is memory+swap, v2's is
// swap alone, see swapOnly), memory.max (the hard limit; past it the
// kernel reclaims and then OOM-kills) and memory.low (the reservation:
// memory protected from reclaim). A limit of 0 means "not set", as in runc.
func (m *v2) setMemory(mem *specs.LinuxMemory) error {
	if mem == nil {
		return nil
	}
	swap, ok, err := swapOnly(mem.Limit, mem.Swap)
	if err != nil {
		return err
	}
	if ok {
		err := writeFile(m.t, m.dir, "memory.swap.max", maxOrNum(swap))
		// Without swap accounting there is no file, and no swap to limit:
		// "no swap" and "unlimited swap" both already hold.
		if err != nil && !(errors.Is(err, unix.ENOENT) && (swap == 0 || swap == -1)) {
			return err
		}
	}
	if mem.Limit != nil && *mem.Limit != 0 {
		if err := writeFile(m.t, m.dir, "memory.max", maxOrNum(*mem.Limit)); err != nil {
			return err
		}
	}
	if mem.Reservation != nil && *mem.Reservation != 0 {
		if err := writeFile(m.t, m.dir, "memory.low", maxOrNum(*mem.Reservation)); err != nil {
			return err
		}
	}
	return nil
}

// setCPU writes cpu.weight (converted from OCI's v1-style shares by
// sharesToWeight), cpu.idle, cpu.max ("$QUOTA $PERIOD" in µs: the group
// may run QUOTA µs in every PERIOD µs; "max" is no limit) and
// cpu.max.burst. A quota or period left out keeps its current value.
func (m *v2) setCPU(c *specs.LinuxCPU) error {
	if c == nil {
		return nil
	}
	if c.Shares != nil && *c.Shares != 0 {
		if err := writeFile(m.t, m.dir, "cpu.weight", strconv.FormatUint(sharesToWeight(*c.Shares), 10)); err != nil {
			return err
		}
	}
	if c.Idle != nil {
		if err := writeFile(m.t, m.dir, "cpu.idle", strconv.FormatInt(*c.Idle, 10)); err != nil {
			return err
		}
	}
	if (c.Quota != nil && *c.Quota != 0) || (c.Period != nil && *c.Period != 0) {
		cur, err := readFile(m.dir, "cpu.max")
		if err != nil {
			return err
		}
		quota, period, _ := strings.Cut(cur, " ")
		if c.Quota != nil && *c.Quota != 0 {
			quota = maxOrNum(*c.Quota)
		}
		if c.Period != nil && *c.Period != 0 {
			period = strconv.FormatUint(*c.Period, 10)
		}
		if err := writeFile(m.t, m.dir, "cpu.max", quota+" "+period); err != nil {
			return err
		}
	}
	if c.Burst != nil {
		if err := writeFile(m.t, m.dir, "cpu.max.burst", strconv.FormatUint(*c.Burst, 10)); err != nil {
			return err
		}
	}
	return nil
}

// setCpuset writes cpuset.cpus and cpuset.mems: the CPUs and memory nodes
// the processes may use. Empty means the parent's.
func (m *v2) setCpuset(c *specs.LinuxCPU) error {
	if c == nil {
		return nil
	}
	if c.Cpus != "" {
		if err := writeFile(m.t, m.dir, "cpuset.cpus", c.Cpus); err != nil {
			return err
		}
	}
	if c.Mems != "" {
		if err := writeFile(m.t, m.dir, "cpuset.mems", c.Mems); err != nil {
			return err
		}
	}
	return nil
}

// setPids writes pids.max: fork and clone fail with EAGAIN once the cgroup
// holds that many tasks. -1 is "max"; 0 is a real limit.
func (m *v2) setPids(p *specs.LinuxPids) error {
	if p == nil || p.Limit == nil {
		return nil
	}
	return writeFile(m.t, m.dir, "pids.max", maxOrNum(*p.Limit))
}

// setIO writes io.weight ("default N" and "MAJ:MIN N", converted from
// blkio's 10..1000 by blkioToIOWeight) and io.max ("MAJ:MIN rbps=N" and so
// on; a rate of 0 removes the limit, "max").
func (m *v2) setIO(b *specs.LinuxBlockIO) error {
	if b == nil {
		return nil
	}
	if b.Weight != nil && *b.Weight != 0 {
		if err := writeFile(m.t, m.dir, "io.weight", "default "+strconv.FormatUint(blkioToIOWeight(*b.Weight), 10)); err != nil {
			return err
		}
	}
	for _, d := range b.WeightDevice {
		if d.Weight == nil {
			continue
		}
		if err := writeFile(m.t, m.dir, "io.weight", fmt.Sprintf("%d:%d %d", d.Major, d.Minor, blkioToIOWeight(*d.Weight))); err != nil {
			return err
		}
	}
	for _, t := range []struct {
		key  string
		devs []specs.LinuxThrottleDevice
	}{
		{"rbps", b.ThrottleReadBpsDevice}, {"wbps", b.ThrottleWriteBpsDevice},
		{"riops", b.ThrottleReadIOPSDevice}, {"wiops", b.ThrottleWriteIOPSDevice},
	} {
		for _, d := range t.devs {
			rate := "max"
			if d.Rate != 0 {
				rate = strconv.FormatUint(d.Rate, 10)
			}
			if err := writeFile(m.t, m.dir, "io.max", fmt.Sprintf("%d:%d %s=%s", d.Major, d.Minor, t.key, rate)); err != nil {
				return err
			}
		}
	}
	return nil
}

// setUnified writes OCI's linux.resources.unified: file name to value, as
// given (memory.high, for instance). check has made sure each file's
// controller exists.
func (m *v2) setUnified(u map[string]string) error {
	keys := make([]string, 0, len(u))
	for k := range u {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if err := writeFile(m.t, m.dir, k, u[k]); err != nil {
			return err
		}
	}
	return nil
}

// AddProc writes pid to cgroup.procs, which moves the whole process.
func (m *v2) AddProc(pid int) error {
	return writeFile(m.t, m.dir, "cgroup.procs", strconv.Itoa(pid))
}

// Update writes r to the existing cgroup after the same checks as Create.
func (m *v2) Update(r *specs.LinuxResources) error {
	if _, err := m.check(r, m.dir); err != nil {
		return err
	}
	if err := checkBeforeUpdate(r, m.dir, "memory.current"); err != nil {
		return err
	}
	return m.set(r)
}

// checkBeforeUpdate refuses a memory limit below current usage when the
// spec asks for that check (memory.checkBeforeUpdate).
func checkBeforeUpdate(r *specs.LinuxResources, dir, usageFile string) error {
	if r == nil || r.Memory == nil || r.Memory.CheckBeforeUpdate == nil || !*r.Memory.CheckBeforeUpdate ||
		r.Memory.Limit == nil || *r.Memory.Limit <= 0 {
		return nil
	}
	usage, err := readUint(dir, usageFile)
	if err != nil {
		return err
	}
	if uint64(*r.Memory.Limit) < usage {
		return fmt.Errorf("memory.limit %d is below current usage %d of %s", *r.Memory.Limit, usage, dir)
	}
	return nil
}

// Freeze writes 1 to cgroup.freeze, then waits for cgroup.events to say
// "frozen 1": the kernel stops the tasks one by one, asynchronously.
func (m *v2) Freeze() error {
	if err := writeFile(m.t, m.dir, "cgroup.freeze", "1"); err != nil {
		return err
	}
	return m.waitFrozen("1")
}

// Thaw writes 0 to cgroup.freeze and waits for "frozen 0".
func (m *v2) Thaw() error {
	if err := writeFile(m.t, m.dir, "cgroup.freeze", "0"); err != nil {
		return err
	}
	return m.waitFrozen("0")
}

func (m *v2) waitFrozen(want string) error {
	return waitFor(10*time.Second, "wait for frozen "+want+" in "+m.dir+"/cgroup.events", func() (bool, error) {
		b, err := os.ReadFile(filepath.Join(m.dir, "cgroup.events"))
		return hasLine(b, "frozen "+want), err
	})
}

// Frozen reads cgroup.freeze: 1 when the cgroup was asked to freeze.
func (m *v2) Frozen() (bool, error) {
	state, err := readFile(m.dir, "cgroup.freeze")
	return state == "1", err
}

// Pids reads cgroup.procs of the cgroup and of every cgroup below it.
func (m *v2) Pids() ([]int, error) { return readPidsTree(m.dir) }

// KillAll writes 1 to cgroup.kill when sig is SIGKILL and the kernel has
// that file (Linux 5.14): the kernel kills every task, including those
// forking right now. Otherwise it freezes the cgroup so that nothing new
// appears, signals each process, and thaws it again.
func (m *v2) KillAll(sig unix.Signal) error {
	if sig == unix.SIGKILL {
		err := writeFile(m.t, m.dir, "cgroup.kill", "1")
		if !errors.Is(err, unix.ENOENT) {
			return err
		}
	}
	was, err := readFile(m.dir, "cgroup.freeze")
	if err != nil {
		return err
	}
	return freezeAndSignal(m, sig, was == "1")
}

// freezeAndSignal signals every process of a frozen cgroup. It thaws the
// cgroup afterwards unless it was frozen before and sig is not SIGKILL
// (killed processes must run to die).
func freezeAndSignal(m Manager, sig unix.Signal, wasFrozen bool) error {
	if err := m.Freeze(); err != nil {
		return err
	}
	pids, err := m.Pids()
	if err == nil {
		err = killPids(pids, sig)
	}
	if !wasFrozen || sig == unix.SIGKILL {
		if terr := m.Thaw(); err == nil {
			err = terr
		}
	}
	return err
}

// Stats reads cpu.stat, memory.current/peak/max, memory.swap.*,
// memory.events, memory.stat, pids.current/max and io.stat. The files of a
// controller that is not enabled are skipped.
func (m *v2) Stats() (*Stats, error) {
	s := &Stats{}
	for _, f := range []func(*Stats) error{m.cpuStats, m.memoryStats, m.pidsStats, m.ioStats} {
		if err := f(s); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
	}
	return s, nil
}

func (m *v2) cpuStats(s *Stats) error {
	st, err := readKeyValues(m.dir, "cpu.stat")
	if err != nil {
		return err
	}
	s.CPU.Usage.Total = st["usage_usec"] * 1000
	s.CPU.Usage.User = st["user_usec"] * 1000
	s.CPU.Usage.Kernel = st["system_usec"] * 1000
	s.CPU.Throttling.Periods = st["nr_periods"]
	s.CPU.Throttling.ThrottledPeriods = st["nr_throttled"]
	s.CPU.Throttling.ThrottledTime = st["throttled_usec"] * 1000
	return nil
}

func (m *v2) memoryStats(s *Stats) error {
	var err error
	mem := &s.Memory
	if mem.Usage.Usage, err = readUint(m.dir, "memory.current"); err != nil {
		return err
	}
	if mem.Usage.Limit, err = readUint(m.dir, "memory.max"); err != nil {
		return err
	}
	if mem.Usage.Max, err = readUint(m.dir, "memory.peak"); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err // memory.peak is Linux 5.19+
	}
	events, err := readKeyValues(m.dir, "memory.events")
	if err != nil {
		return err
	}
	mem.Usage.Failcnt = events["max"]
	if mem.Raw, err = readKeyValues(m.dir, "memory.stat"); err != nil {
		return err
	}
	mem.Cache = mem.Raw["file"]
	// Report swap as memory+swap, like v1's memsw and like runc.
	swap, err := readUint(m.dir, "memory.swap.current")
	if err == nil {
		mem.Swap.Usage = swap + mem.Usage.Usage
		mem.Swap.Limit = math.MaxUint64
		if lim, err := readUint(m.dir, "memory.swap.max"); err == nil && lim != math.MaxUint64 && mem.Usage.Limit != math.MaxUint64 {
			mem.Swap.Limit = lim + mem.Usage.Limit
		}
	}
	return nil
}

func (m *v2) pidsStats(s *Stats) error {
	var err error
	if s.Pids.Current, err = readUint(m.dir, "pids.current"); err != nil {
		return err
	}
	if s.Pids.Limit, err = readUint(m.dir, "pids.max"); err != nil {
		return err
	}
	if s.Pids.Limit == math.MaxUint64 {
		s.Pids.Limit = 0
	}
	return nil
}

// ioStats parses io.stat lines: "8:0 rbytes=1 wbytes=2 rios=3 wios=4 ...".
func (m *v2) ioStats(s *Stats) error {
	text, err := readFile(m.dir, "io.stat")
	if err != nil {
		return err
	}
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		var major, minor uint64
		if _, err := fmt.Sscanf(f[0], "%d:%d", &major, &minor); err != nil {
			return fmt.Errorf("parse %q in %s/io.stat: %w", f[0], m.dir, err)
		}
		for _, kv := range f[1:] {
			k, v, _ := strings.Cut(kv, "=")
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				continue
			}
			e := BlkioEntry{Major: major, Minor: minor, Value: n}
			switch k {
			case "rbytes", "wbytes":
				e.Op = opName(k)
				s.Blkio.IoServiceBytesRecursive = append(s.Blkio.IoServiceBytesRecursive, e)
			case "rios", "wios":
				e.Op = opName(k)
				s.Blkio.IoServicedRecursive = append(s.Blkio.IoServicedRecursive, e)
			}
		}
	}
	return nil
}

func opName(k string) string {
	if k[0] == 'r' {
		return "Read"
	}
	return "Write"
}

// OOMKillCount reads oom_kill from memory.events: the number of processes
// the OOM killer chose in this cgroup (and below it).
func (m *v2) OOMKillCount() (uint64, error) {
	ev, err := readKeyValues(m.dir, "memory.events")
	if err != nil {
		return 0, err
	}
	return ev["oom_kill"], nil
}

// Destroy detaches the device program (devices_v2.go) and removes the
// directory (and any cgroups made below it).
func (m *v2) Destroy() error {
	err := errors.Join(m.detachDevicePrograms(), removeTree(m.t, m.dir))
	removeDefaultParent(m.root, m.path)
	return err
}

// removeTree removes dir after its sub-cgroups, deepest first. Only
// directories are removed; the control files go with their directory.
func removeTree(t *trace.Tracer, dir string) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read dir: %w", err)
	}
	for _, e := range ents {
		if e.IsDir() {
			if err := removeTree(t, filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	return rmdir(t, dir)
}
