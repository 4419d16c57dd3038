package daemon

import (
	"bufio"
	"context"
	"os"
	"strconv"
	"strings"
	"time"

	"minidock/api"
)

// systemCPUUsage is the host's total CPU time in nanoseconds, from the
// first line of /proc/stat, and the number of CPUs online.
func systemCPUUsage() (uint64, uint32) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	var total uint64
	var cpus uint32
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) == 0 {
			continue
		}
		switch {
		case fs[0] == "cpu":
			for _, v := range fs[1:] {
				n, _ := strconv.ParseUint(v, 10, 64)
				total += n
			}
		case strings.HasPrefix(fs[0], "cpu"):
			cpus++
		}
	}
	return total * (1e9 / clockTicks), cpus
}

// sample reads the container's cgroup counters through its shim, in
// Docker's shape; the zero stats when it is not running.
func (d *Daemon) sample(c *Container, memTotal uint64) api.StatsJSON {
	d.mu.Lock()
	s := api.StatsJSON{Name: "/" + c.Name, ID: c.ID, Read: zeroTime, PreRead: zeroTime}
	running := c.State.Status == "running"
	d.mu.Unlock()
	if !running {
		return s
	}
	st, err := c.shim().Stats()
	if err != nil {
		return s
	}
	s.Read = time.Now().UTC().Format(time.RFC3339Nano)
	cu := &s.CPUStats.CPUUsage
	cu.TotalUsage = st.CPU.Usage.Total
	cu.UsageInKernelmode = st.CPU.Usage.Kernel
	cu.UsageInUsermode = st.CPU.Usage.User
	if cu.TotalUsage == 0 {
		cu.TotalUsage = cu.UsageInKernelmode + cu.UsageInUsermode
	}
	cu.PercpuUsage = st.CPU.Usage.Percpu
	s.CPUStats.SystemUsage, s.CPUStats.OnlineCPUs = systemCPUUsage()
	s.CPUStats.ThrottlingData.Periods = st.CPU.Throttling.Periods
	s.CPUStats.ThrottlingData.ThrottledPeriods = st.CPU.Throttling.ThrottledPeriods
	s.CPUStats.ThrottlingData.ThrottledTime = st.CPU.Throttling.ThrottledTime
	s.MemoryStats.Usage = st.Memory.Usage.Usage
	s.MemoryStats.MaxUsage = st.Memory.Usage.Max
	s.MemoryStats.Limit = st.Memory.Usage.Limit
	if s.MemoryStats.Limit == 0 || s.MemoryStats.Limit > memTotal {
		s.MemoryStats.Limit = memTotal
	}
	s.MemoryStats.Stats = st.Memory.Raw
	if s.MemoryStats.Stats == nil {
		s.MemoryStats.Stats = map[string]uint64{}
	}
	s.PidsStats.Current = st.Pids.Current
	s.PidsStats.Limit = st.Pids.Limit
	return s
}

// ContainerStats is GET /containers/{id}/stats: one sample (not stream),
// or one a second until ctx ends or the container stops; each goes to
// send, with the previous one's CPU figures as PreCPUStats.
func (d *Daemon) ContainerStats(ctx context.Context, name string, stream bool, send func(*api.StatsJSON) error) error {
	c, err := d.lookup(name)
	if err != nil {
		return err
	}
	memTotal := uint64(0)
	if in, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, l := range strings.Split(string(in), "\n") {
			if v, ok := strings.CutPrefix(l, "MemTotal:"); ok {
				fs := strings.Fields(v)
				if len(fs) > 0 {
					n, _ := strconv.ParseUint(fs[0], 10, 64)
					memTotal = n * 1024
				}
			}
		}
	}
	var prev api.StatsJSON
	prev.Read = zeroTime
	for {
		s := d.sample(c, memTotal)
		s.PreRead, s.PreCPUStats = prev.Read, prev.CPUStats
		if err := send(&s); err != nil || !stream {
			return nil
		}
		d.mu.Lock()
		running := c.State.Status == "running"
		d.mu.Unlock()
		if !running {
			return nil
		}
		prev = s
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(time.Second):
		}
	}
}
