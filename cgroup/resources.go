package cgroup

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Limits the kernel enforces on the values below (kernel/sched/core.c and
// block/blk-cgroup.c); checking them first gives a clear error and lets
// Create fail before it has made anything.
const (
	minCPUPeriod = 1000    // µs, cpu.cfs_period_us / cpu.max
	maxCPUPeriod = 1000000 // µs
	minCPUQuota  = 1000    // µs
	minShares    = 2       // cpu.shares
	maxShares    = 262144
	minBlkWeight = 10 // blkio.weight
	maxBlkWeight = 1000
)

// validate checks r for values no kernel accepts and for settings this
// package does not implement, so that nothing is silently ignored.
func validate(r *specs.LinuxResources) error {
	if r == nil {
		return nil
	}
	if m := r.Memory; m != nil {
		for name, v := range map[string]*int64{"limit": m.Limit, "reservation": m.Reservation, "swap": m.Swap} {
			if v != nil && *v < -1 {
				return fmt.Errorf("memory.%s %d: want a byte count or -1 for no limit", name, *v)
			}
		}
		if m.Limit != nil && m.Swap != nil && *m.Limit > 0 && *m.Swap >= 0 && *m.Swap < *m.Limit {
			return fmt.Errorf("memory.swap %d is below memory.limit %d: swap is memory+swap, so it must be at least the limit", *m.Swap, *m.Limit)
		}
		if m.Kernel != nil || m.KernelTCP != nil {
			return fmt.Errorf("memory.kernel and memory.kernelTCP are not supported (kernel memory limits were removed in Linux 5.4)")
		}
		if m.UseHierarchy != nil && !*m.UseHierarchy {
			return fmt.Errorf("memory.useHierarchy false is not supported: memory accounting is always hierarchical since Linux 5.16")
		}
		if m.Swappiness != nil && *m.Swappiness > 100 {
			return fmt.Errorf("memory.swappiness %d: want 0 to 100", *m.Swappiness)
		}
	}
	if c := r.CPU; c != nil {
		if c.Shares != nil && *c.Shares != 0 && (*c.Shares < minShares || *c.Shares > maxShares) {
			return fmt.Errorf("cpu.shares %d: the kernel accepts %d to %d", *c.Shares, minShares, maxShares)
		}
		if c.Quota != nil && *c.Quota != -1 && *c.Quota != 0 && *c.Quota < minCPUQuota {
			return fmt.Errorf("cpu.quota %dµs: below the kernel's minimum of %dµs (or -1 for no limit)", *c.Quota, minCPUQuota)
		}
		if c.Period != nil && *c.Period != 0 && (*c.Period < minCPUPeriod || *c.Period > maxCPUPeriod) {
			return fmt.Errorf("cpu.period %dµs: the kernel accepts %dµs to %dµs", *c.Period, minCPUPeriod, maxCPUPeriod)
		}
		if c.Burst != nil && c.Quota != nil && *c.Quota > 0 && int64(*c.Burst) > *c.Quota {
			return fmt.Errorf("cpu.burst %dµs is larger than cpu.quota %dµs", *c.Burst, *c.Quota)
		}
		if c.RealtimeRuntime != nil || c.RealtimePeriod != nil {
			return fmt.Errorf("cpu.realtimeRuntime and cpu.realtimePeriod are not supported")
		}
		if c.Idle != nil && *c.Idle != 0 && *c.Idle != 1 {
			return fmt.Errorf("cpu.idle %d: want 0 or 1", *c.Idle)
		}
	}
	if p := r.Pids; p != nil && p.Limit != nil && *p.Limit < -1 {
		return fmt.Errorf("pids.limit %d: want a count or -1 for no limit", *p.Limit)
	}
	if b := r.BlockIO; b != nil {
		if err := checkBlkWeight("blockIO.weight", b.Weight); err != nil {
			return err
		}
		if b.LeafWeight != nil {
			return fmt.Errorf("blockIO.leafWeight is not supported (it was CFQ-only, removed in Linux 5.0)")
		}
		for _, d := range b.WeightDevice {
			if err := checkBlkWeight(fmt.Sprintf("blockIO.weightDevice %d:%d", d.Major, d.Minor), d.Weight); err != nil {
				return err
			}
			if d.LeafWeight != nil {
				return fmt.Errorf("blockIO.weightDevice leafWeight is not supported")
			}
		}
	}
	if len(r.HugepageLimits) > 0 {
		return fmt.Errorf("hugepageLimits are not supported by minidock")
	}
	if r.Network != nil {
		return fmt.Errorf("network (net_cls/net_prio) is not supported by minidock")
	}
	if len(r.Rdma) > 0 {
		return fmt.Errorf("rdma limits are not supported by minidock")
	}
	return checkDevices(r.Devices) // devices.go
}

func checkBlkWeight(what string, w *uint16) error {
	if w != nil && *w != 0 && (*w < minBlkWeight || *w > maxBlkWeight) {
		return fmt.Errorf("%s %d: the kernel accepts %d to %d", what, *w, minBlkWeight, maxBlkWeight)
	}
	return nil
}

// sharesToWeight converts v1 cpu.shares (2..262144, default 1024) to v2
// cpu.weight (1..10000, default 100). The curve is the one runc uses, from
// ConvertCPUSharesToCgroupV2Value in github.com/opencontainers/cgroups
// (utils.go, also used by crun): a quadratic in log2(shares) that maps the
// minimum, the default and the maximum exactly (2→1, 1024→100,
// 262144→10000). Older runc used the straight line
// 1 + (shares-2)*9999/262142, which sent the default 1024 to 39.
func sharesToWeight(shares uint64) uint64 {
	if shares == 0 {
		return 0
	}
	if shares <= minShares {
		return 1
	}
	if shares >= maxShares {
		return 10000
	}
	l := math.Log2(float64(shares))
	exp := (l*l+125*l)/612.0 - 7.0/34.0
	return uint64(math.Ceil(math.Pow(10, exp)))
}

// blkioToIOWeight converts v1 blkio.weight (10..1000) to v2 io.weight
// (1..10000) linearly, as runc's ConvertBlkIOToIOWeightValue does.
func blkioToIOWeight(w uint16) uint64 {
	if w == 0 {
		return 0
	}
	return 1 + (uint64(w)-10)*9999/990
}

// swapOnly turns OCI's memory.swap (memory+swap, as v1's memsw) into v2's
// memory.swap.max (swap alone), the way runc converts it. ok is false when
// nothing should be written.
func swapOnly(limit, swap *int64) (v int64, ok bool, err error) {
	if swap == nil {
		if limit != nil && *limit == -1 {
			// Unlimited memory and no word on swap: unlimited swap, as v1 does.
			return -1, true, nil
		}
		return 0, false, nil
	}
	switch {
	case *swap == -1:
		return -1, true, nil
	case *swap == 0:
		return 0, false, nil
	case limit == nil || *limit == 0:
		return 0, false, fmt.Errorf("memory.swap %d needs memory.limit: v2 keeps swap apart from memory, so the limit is subtracted", *swap)
	case *limit == -1:
		return *swap, true, nil
	}
	return *swap - *limit, true, nil
}

// maxOrNum renders a limit for a v2 file: -1 is "max".
func maxOrNum(v int64) string {
	if v == -1 {
		return "max"
	}
	return strconv.FormatInt(v, 10)
}

// controllersFor lists the controllers that r needs, sorted. Keys of
// r.Unified name their controller before the first dot.
func controllersFor(r *specs.LinuxResources) []string {
	if r == nil {
		return nil
	}
	need := map[string]bool{}
	if m := r.Memory; m != nil && (m.Limit != nil || m.Reservation != nil || m.Swap != nil || m.Swappiness != nil || m.DisableOOMKiller != nil) {
		need["memory"] = true
	}
	if c := r.CPU; c != nil {
		if c.Shares != nil || c.Quota != nil || c.Period != nil || c.Burst != nil || c.Idle != nil {
			need["cpu"] = true
		}
		if c.Cpus != "" || c.Mems != "" {
			need["cpuset"] = true
		}
	}
	if r.Pids != nil && r.Pids.Limit != nil {
		need["pids"] = true
	}
	if b := r.BlockIO; b != nil && (b.Weight != nil || len(b.WeightDevice) > 0 || len(b.ThrottleReadBpsDevice) > 0 ||
		len(b.ThrottleWriteBpsDevice) > 0 || len(b.ThrottleReadIOPSDevice) > 0 || len(b.ThrottleWriteIOPSDevice) > 0) {
		need["io"] = true
	}
	for k := range r.Unified {
		c, _, _ := strings.Cut(k, ".")
		if c != "cgroup" {
			need[c] = true
		}
	}
	var out []string
	for c := range need {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}
