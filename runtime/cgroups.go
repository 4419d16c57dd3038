package runtime

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"minidock/cgroup"
	"minidock/kernel"
)

// cgroupHandle is the part of cgroup.Manager the runtime uses.
type cgroupHandle = cgroup.Manager

// createCgroup makes the container's cgroup and applies linux.resources
// before the init exists: the init is born inside it (startInit), so that
// its first instruction already runs under the limits.
func createCgroup(k kernel.Calls, c *Container) (cgroupHandle, error) {
	path := c.Config.Linux.CgroupsPath
	if rootless() {
		delegated, err := rootlessCgroup(c.Config, c.ID)
		if err != nil || delegated == "" {
			k.Note("cgroup", "none: rootless, and no cgroup v2 subtree is delegated to the caller", err)
			return nil, err
		}
		path = delegated
	}
	cg, err := cgroup.NewTraced(path, c.ID, c.trace) // each mkdir and write is a trace line
	if err != nil {
		return nil, err
	}
	if err := kernel.PauseBefore(k, "mkdir", cg.Path()+" in each hierarchy, and its limits"); err != nil {
		return nil, err
	}
	err = cg.Create(withDefaultDevices(runcResources(c.Config.Linux.Resources, c.warn)))
	if err != nil {
		return nil, fmt.Errorf("cgroup %s: %w", cg.Path(), err)
	}
	c.CgroupPath, c.cg = cg.Path(), cg
	return cg, nil
}

// runcResources returns r without what runc ignores with a warning, and
// so minidock too (the cgroup package, which refuses it, never sees it):
// memory.kernel and memory.kernelTCP, kernel memory limits that Linux 5.4
// removed from cgroup v1 and v2 never had, and that dockerd 20.10 still
// sends in every update. r is not modified.
func runcResources(r *specs.LinuxResources, warn func(string)) *specs.LinuxResources {
	if r == nil || r.Memory == nil || (r.Memory.Kernel == nil && r.Memory.KernelTCP == nil) {
		return r
	}
	warnTo(warn)("memory.kernel and memory.kernelTCP ignored: kernel memory limits are not supported (Linux 5.4 removed them)")
	out, m := *r, *r.Memory
	m.Kernel, m.KernelTCP = nil, nil
	out.Memory = &m
	return &out
}

// systemdCgroup answers runc's --systemd-cgroup at create: runc's own
// errors where systemd does not run or the path is not systemd's
// "slice:prefix:name", and otherwise the plain truth, since minidock has
// no systemd cgroup driver (it writes cgroup files itself, and a systemd
// that owns the hierarchy would not know of them).
func systemdCgroup(path string) error {
	if _, err := os.Stat("/run/systemd/system"); err != nil {
		return errors.New("--systemd-cgroup: systemd not running on this host (no /run/systemd/system), so its cgroup driver cannot be used; leave --systemd-cgroup out (containerd: SystemdCgroup = false)")
	}
	if path != "" && strings.Count(path, ":") != 2 {
		return fmt.Errorf(`--systemd-cgroup: expected cgroupsPath to be of format "slice:prefix:name" for systemd cgroups, got %q instead`, path)
	}
	return errors.New("--systemd-cgroup: the systemd cgroup driver is not supported; minidock writes cgroup files itself: leave --systemd-cgroup out (containerd: SystemdCgroup = false)")
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

// cgroup is the container's cgroup, made by Create or opened again from
// its saved path (once per Container).
func (c *Container) cgroup() (cgroupHandle, error) {
	if c.cg != nil {
		return c.cg, nil
	}
	if c.CgroupPath == "" {
		return nil, errors.New("the container has no cgroup (rootless, no delegated cgroup v2 subtree)")
	}
	cg, err := cgroup.NewTraced(c.CgroupPath, c.ID, c.trace)
	if err != nil {
		return nil, err
	}
	c.cg = cg
	return cg, nil
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

// Pause freezes every process of a running container (the freezer).
func (c *Container) Pause() error {
	if st := c.Status(); st != "running" {
		return fmt.Errorf("pause: container %s is %s, not running", c.ID, st)
	}
	cg, err := c.cgroup()
	if err != nil {
		return err
	}
	return cg.Freeze()
}

// Resume thaws a paused container.
func (c *Container) Resume() error {
	if st := c.Status(); st != "paused" {
		return fmt.Errorf("resume: container %s is %s, not paused", c.ID, st)
	}
	cg, err := c.cgroup()
	if err != nil {
		return err
	}
	return cg.Thaw()
}

// Update applies r to the cgroup of a container that has not stopped;
// nil fields are left alone.
func (c *Container) Update(r *specs.LinuxResources) error {
	if st := c.Status(); st == "stopped" {
		return fmt.Errorf("update: container %s is stopped", c.ID)
	}
	cg, err := c.cgroup()
	if err != nil {
		return err
	}
	return cg.Update(withDefaultDevices(runcResources(r, c.warn)))
}

// Stats reads the cgroup's usage and limits (runc's `events --stats` data).
func (c *Container) Stats() (*cgroup.Stats, error) {
	if c.Status() == "stopped" {
		return nil, fmt.Errorf("container %s is not running", c.ID)
	}
	cg, err := c.cgroup()
	if err != nil {
		return nil, err
	}
	return cg.Stats()
}

// OOMKillCount is how many of the container's processes the kernel's OOM
// killer has killed.
func (c *Container) OOMKillCount() (uint64, error) {
	cg, err := c.cgroup()
	if err != nil {
		return 0, err
	}
	return cg.OOMKillCount()
}
