package runtime

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"minidock/cgroup"
)

// cgroupHandle is the part of cgroup.Manager the runtime uses.
type cgroupHandle = cgroup.Manager

// createCgroup makes the container's cgroup and applies linux.resources
// before the init exists, so that its first instruction already runs
// under the limits.
func createCgroup(c *Container) (cgroupHandle, error) {
	cg, err := cgroup.New(c.Config.Linux.CgroupsPath, c.ID)
	if err != nil {
		return nil, err
	}
	if err := cg.Create(withDefaultDevices(c.Config.Linux.Resources)); err != nil {
		return nil, err
	}
	c.CgroupPath = cg.Path()
	return cg, nil
}

// withDefaultDevices appends cgroup.DefaultDeviceRules (the nodes every
// container gets: null, zero, full, random, urandom, tty, ptmx, pts, tun)
// after the config's device rules, as runc does, so that a config that
// denies all devices still leaves those usable. r is not modified.
func withDefaultDevices(r *specs.LinuxResources) *specs.LinuxResources {
	if r == nil || len(r.Devices) == 0 {
		return r
	}
	out := *r
	out.Devices = append(slices.Clone(r.Devices), cgroup.DefaultDeviceRules...)
	return &out
}

// cgroup reopens the container's cgroup from its saved path.
func (c *Container) cgroup() (cgroupHandle, error) {
	return cgroup.New(c.CgroupPath, c.ID)
}

// frozen reports whether the container's cgroup is frozen (paused).
func (c *Container) frozen() bool {
	cg, err := c.cgroup()
	if err != nil {
		return false
	}
	f, err := cg.Frozen()
	return err == nil && f
}

func cmdPause(args []string) (int, error) {
	c, cg, err := runningCgroup("pause", args)
	if err != nil {
		return 1, err
	}
	if st := c.Status(); st != "running" {
		return 1, fmt.Errorf("pause: container %s is %s, not running", c.ID, st)
	}
	return 0, cg.Freeze()
}

func cmdResume(args []string) (int, error) {
	c, cg, err := runningCgroup("resume", args)
	if err != nil {
		return 1, err
	}
	if st := c.Status(); st != "paused" {
		return 1, fmt.Errorf("resume: container %s is %s, not paused", c.ID, st)
	}
	return 0, cg.Thaw()
}

// runningCgroup loads the container named by the only argument and its
// cgroup.
func runningCgroup(name string, args []string) (*Container, cgroupHandle, error) {
	fs := newFlags(name)
	if err := parse(fs, args, 1); err != nil {
		return nil, nil, err
	}
	c, err := load(g.root, fs.Arg(0))
	if err != nil {
		return nil, nil, err
	}
	cg, err := c.cgroup()
	if err != nil {
		return nil, nil, err
	}
	return c, cg, nil
}

func cmdUpdate(args []string) (int, error) {
	fs := newFlags("update")
	resources := fs.String("resources", "", "file with LinuxResources JSON, - for stdin")
	fs.StringVar(resources, "r", "", "file with LinuxResources JSON, - for stdin")
	memory := fs.Int64("memory", 0, "memory limit in bytes")
	memSwap := fs.Int64("memory-swap", 0, "memory+swap limit in bytes")
	cpuQuota := fs.Int64("cpu-quota", 0, "CPU quota in µs per period")
	cpuPeriod := fs.Uint64("cpu-period", 0, "CPU period in µs")
	cpuShares := fs.Uint64("cpu-shares", 0, "CPU shares (relative weight)")
	cpusetCpus := fs.String("cpuset-cpus", "", "CPUs to run on")
	pidsLimit := fs.Int64("pids-limit", 0, "maximum number of processes")
	if err := parse(fs, args, 1); err != nil {
		return 1, err
	}
	c, err := load(g.root, fs.Arg(0))
	if err != nil {
		return 1, err
	}
	if st := c.Status(); st == "stopped" {
		return 1, fmt.Errorf("update: container %s is stopped", c.ID)
	}
	r := &specs.LinuxResources{}
	if *resources != "" {
		var data []byte
		if *resources == "-" {
			data, err = io.ReadAll(os.Stdin)
		} else {
			data, err = os.ReadFile(*resources)
		}
		if err != nil {
			return 1, fmt.Errorf("update --resources: %w", err)
		}
		if err := json.Unmarshal(data, r); err != nil {
			return 1, fmt.Errorf("update --resources: not LinuxResources JSON: %w", err)
		}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if set["memory"] || set["memory-swap"] {
		if r.Memory == nil {
			r.Memory = &specs.LinuxMemory{}
		}
		if set["memory"] {
			r.Memory.Limit = memory
		}
		if set["memory-swap"] {
			r.Memory.Swap = memSwap
		}
	}
	if set["cpu-quota"] || set["cpu-period"] || set["cpu-shares"] || set["cpuset-cpus"] {
		if r.CPU == nil {
			r.CPU = &specs.LinuxCPU{}
		}
		if set["cpu-quota"] {
			r.CPU.Quota = cpuQuota
		}
		if set["cpu-period"] {
			r.CPU.Period = cpuPeriod
		}
		if set["cpu-shares"] {
			r.CPU.Shares = cpuShares
		}
		if set["cpuset-cpus"] {
			r.CPU.Cpus = *cpusetCpus
		}
	}
	if set["pids-limit"] {
		r.Pids = &specs.LinuxPids{Limit: pidsLimit}
	}
	cg, err := c.cgroup()
	if err != nil {
		return 1, err
	}
	return 0, cg.Update(withDefaultDevices(r))
}

// event is one line of `events`, runc's shape.
type event struct {
	Type string `json:"type"`
	ID   string `json:"id"`
	Data any    `json:"data,omitempty"`
}

func cmdEvents(args []string) (int, error) {
	fs := newFlags("events")
	stats := fs.Bool("stats", false, "print one stats event and exit")
	interval := fs.Duration("interval", 5*time.Second, "time between stats events")
	if err := parse(fs, args, 1); err != nil {
		return 1, err
	}
	c, err := load(g.root, fs.Arg(0))
	if err != nil {
		return 1, err
	}
	cg, err := c.cgroup()
	if err != nil {
		return 1, err
	}
	enc := json.NewEncoder(os.Stdout)
	var lastOOM uint64
	if n, err := cg.OOMKillCount(); err == nil {
		lastOOM = n
	}
	for {
		if c.Status() == "stopped" {
			return 1, fmt.Errorf("events: container %s is not running", c.ID)
		}
		s, err := cg.Stats()
		if err != nil {
			return 1, err
		}
		if err := enc.Encode(event{Type: "stats", ID: c.ID, Data: s}); err != nil {
			return 1, err
		}
		if *stats {
			return 0, nil
		}
		time.Sleep(*interval)
		if n, err := cg.OOMKillCount(); err == nil && n > lastOOM {
			lastOOM = n
			enc.Encode(event{Type: "oom", ID: c.ID})
		}
	}
}
