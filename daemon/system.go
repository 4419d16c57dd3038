package daemon

import (
	"context"
	"os"
	"runtime"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"minidock/api"
	"minidock/cgroup"
	"minidock/check"
)

// ServerVersion is what /version reports as the engine's version.
const ServerVersion = "0.1.0"

// Version is GET /version.
func (d *Daemon) Version(ctx context.Context) api.VersionResponse {
	v := api.VersionResponse{
		Version: ServerVersion, APIVersion: api.Version, MinAPIVersion: api.MinVersion,
		GoVersion: runtime.Version(), Os: runtime.GOOS, Arch: runtime.GOARCH, KernelVersion: kernelVersion(),
	}
	v.Platform.Name = "minidock"
	return v
}

func kernelVersion() string {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
}

// Info is GET /info.
func (d *Daemon) Info(ctx context.Context) api.Info {
	in := api.Info{
		ID: "minidock", Driver: "overlay2", DockerRootDir: d.cfg.DataRoot, CgroupDriver: "cgroupfs",
		CgroupVersion: "1", KernelVersion: kernelVersion(), OSType: "linux", Architecture: runtime.GOARCH,
		NCPU: runtime.NumCPU(), ServerVersion: ServerVersion, DefaultRuntime: "minidock",
		Swarm: api.SwarmInfo{LocalNodeState: "inactive"}, OperatingSystem: osName(),
	}
	if m, err := cgroup.DetectMode(); err == nil && m == cgroup.Unified {
		in.CgroupVersion = "2"
	}
	if d.cfg.Runtime != "" {
		in.DefaultRuntime = d.cfg.Runtime
	}
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) == nil {
		in.MemTotal = int64(si.Totalram) * int64(si.Unit)
	}
	in.Name, _ = os.Hostname()
	in.Warnings = append(in.Warnings, d.hostWarnings()...)
	var warning string
	in.ClusterStore, in.ClusterAdvertise, in.ClusterPeers, warning = d.network.ClusterInfo()
	if warning != "" {
		in.Warnings = append(in.Warnings, "WARNING: "+warning)
	}
	in.Images = len(d.images.List())
	d.mu.Lock()
	for _, c := range d.containers {
		in.Containers++
		switch c.State.status() {
		case "running":
			in.ContainersRunning++
		case "paused":
			in.ContainersPaused++
		default:
			in.ContainersStopped++
		}
	}
	d.mu.Unlock()
	return in
}

// checkHost starts `minidock check`'s checks of this machine
// (check.Run), once, as the daemon starts: their warnings (what the host
// lacks, each with its fix: a hybrid cgroup hierarchy, no nftables, ...)
// are the first lines of /info's Warnings, which `docker info` prints, as
// Docker's daemon lists what its host lacks. The probes (a child in a new
// user namespace, `nft list tables`) run beside the rest of the start-up;
// the first /info waits for them.
func (d *Daemon) checkHost() {
	d.hostWarnings = sync.OnceValue(func() []string { return check.Warnings(check.Run(check.System())) })
	go d.hostWarnings()
}

func osName() string {
	data, _ := os.ReadFile("/etc/os-release")
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "PRETTY_NAME="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return "Linux"
}
