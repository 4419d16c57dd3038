package daemon

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"minidock/api"
	"minidock/internal/errdefs"
	"minidock/network"
	"minidock/volume"
)

// defaultCaps are the capabilities Docker gives a container by default.
var defaultCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// buildSpec makes the OCI runtime config of a container whose root
// filesystem is mounted at rootfs, with the network namespace and the
// /etc files of net (network.Controller.Join) and the container's mounts
// (volume.Spec). It reads only the
// container's record: its config was merged with the image's at create.
func buildSpec(c *Container, rootfs string, net network.Spec) (*specs.Spec, error) {
	cfg := &c.Config
	uid, gid, extra, err := resolveUser(rootfs, cfg.User)
	if err != nil {
		return nil, err
	}
	env := append([]string{}, cfg.Env...)
	hasPath := false
	for _, kv := range env {
		hasPath = hasPath || strings.HasPrefix(kv, "PATH=")
	}
	if !hasPath {
		env = append([]string{defaultPath}, env...)
	}
	env = append(env, "HOSTNAME="+net.Hostname)
	if cfg.Tty {
		env = append(env, "TERM=xterm")
	}
	cwd := firstNonEmpty(cfg.WorkingDir, "/")
	if !filepath.IsAbs(cwd) {
		return nil, errdefs.Invalidf("the working directory %q is not an absolute path", cwd)
	}
	caps := append([]string{}, defaultCaps...)
	s := &specs.Spec{
		Version: specs.Version,
		Process: &specs.Process{
			Terminal: cfg.Tty,
			User:     specs.User{UID: uid, GID: gid, AdditionalGids: extra},
			Args:     c.argv(),
			Env:      env,
			Cwd:      cwd,
			Capabilities: &specs.LinuxCapabilities{
				Bounding: caps, Effective: caps, Permitted: caps,
			},
		},
		Root:       &specs.Root{Path: rootfs, Readonly: c.HostConfig.ReadonlyRootfs},
		Hostname:   net.Hostname,
		Domainname: cfg.Domainname,
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
			{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"ro", "nosuid", "noexec", "nodev"}},
			{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
		},
		Linux: &specs.Linux{
			CgroupsPath: c.CgroupPath,
			Resources:   resources(&c.HostConfig),
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace}, {Type: specs.IPCNamespace},
				{Type: specs.UTSNamespace}, {Type: specs.MountNamespace},
			},
			MaskedPaths: []string{"/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
				"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware"},
			ReadonlyPaths: []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
		},
	}
	// the network namespace: the host's (none listed), another's, or new
	ns := s.Linux.Namespaces[:0]
	for _, n := range s.Linux.Namespaces {
		if n.Type == specs.NetworkNamespace {
			if net.HostNS {
				continue
			}
			n.Path = net.Join
		}
		ns = append(ns, n)
	}
	s.Linux.Namespaces = ns
	if net.EtcDir != "" {
		for _, f := range []string{"hosts", "hostname", "resolv.conf"} {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/etc/" + f, Type: "bind",
				Source: filepath.Join(net.EtcDir, f), Options: []string{"rbind", "rprivate"}})
		}
	}
	// the container's volumes, binds and tmpfs mounts, over the defaults
	// at their places, and the root propagation a shared bind needs
	if s.Mounts, s.Linux.RootfsPropagation, err = volume.Spec(s.Mounts, c.Mounts); err != nil {
		return nil, volumeError(err)
	}
	return s, nil
}

func resources(h *api.HostConfig) *specs.LinuxResources {
	r := &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}}
	for _, d := range [][2]int64{{1, 3}, {1, 5}, {1, 7}, {1, 8}, {1, 9}, {5, 0}, {5, 1}, {5, 2}, {136, -1}} {
		dev := specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: ptr(d[0]), Access: "rwm"}
		if d[1] >= 0 {
			dev.Minor = ptr(d[1])
		}
		r.Devices = append(r.Devices, dev)
	}
	if h.Memory > 0 {
		r.Memory = &specs.LinuxMemory{Limit: ptr(h.Memory)}
	}
	if h.NanoCPUs > 0 || h.CPUShares > 0 {
		r.CPU = &specs.LinuxCPU{}
		if h.NanoCPUs > 0 {
			period := uint64(100000)
			r.CPU.Period = &period
			r.CPU.Quota = ptr(h.NanoCPUs * int64(period) / 1e9)
		}
		if h.CPUShares > 0 {
			sh := uint64(h.CPUShares)
			r.CPU.Shares = &sh
		}
	}
	if h.PidsLimit != nil && *h.PidsLimit > 0 {
		r.Pids = &specs.LinuxPids{Limit: ptr(*h.PidsLimit)}
	}
	return r
}

func ptr[T any](v T) *T { return &v }

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

// resolveUser turns Docker's user[:group] (names or numbers) into ids,
// looking names up in the container's /etc/passwd and /etc/group.
func resolveUser(rootfs, user string) (uid, gid uint32, extra []uint32, err error) {
	if user == "" {
		return 0, 0, nil, nil
	}
	u, g, hasGroup := strings.Cut(user, ":")
	passwd := readDB(rootfs, "/etc/passwd")
	if n, perr := parseID(u); perr == nil {
		uid = uint32(n)
		for _, f := range passwd {
			if len(f) > 3 && f[2] == u {
				if n, err := parseID(f[3]); err == nil {
					gid = uint32(n)
				}
				break
			}
		}
	} else {
		found := false
		for _, f := range passwd {
			if len(f) > 3 && f[0] == u {
				a, e1 := parseID(f[2])
				b, e2 := parseID(f[3])
				if e1 == nil && e2 == nil {
					uid, gid, found = uint32(a), uint32(b), true
				}
				break
			}
		}
		if !found {
			return 0, 0, nil, errdefs.Invalidf("unable to find user %s: no matching entries in passwd file", u)
		}
	}
	if hasGroup {
		if n, perr := parseID(g); perr == nil {
			gid = uint32(n)
		} else {
			found := false
			for _, f := range readDB(rootfs, "/etc/group") {
				if len(f) > 2 && f[0] == g {
					if n, err := parseID(f[2]); err == nil {
						gid, found = uint32(n), true
					}
					break
				}
			}
			if !found {
				return 0, 0, nil, errdefs.Invalidf("unable to find group %s: no matching entries in group file", g)
			}
		}
	}
	return uid, gid, nil, nil
}

// readDB reads a colon-separated database file of the container's root,
// refusing symlinks, which could point outside it.
func readDB(rootfs, name string) [][]string {
	p := filepath.Join(rootfs, name)
	if fi, err := os.Lstat(p); err != nil || !fi.Mode().IsRegular() {
		return nil
	}
	f, err := os.Open(p)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out [][]string
	s := bufio.NewScanner(f)
	for s.Scan() {
		if line := strings.TrimSpace(s.Text()); line != "" && !strings.HasPrefix(line, "#") {
			out = append(out, strings.Split(line, ":"))
		}
	}
	return out
}
