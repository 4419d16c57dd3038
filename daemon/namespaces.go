package daemon

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"minidock/api"
	"minidock/internal/errdefs"
	"minidock/ns"
	"minidock/rootfs"
)

// A container gets new pid, ipc, uts and mount namespaces (and a network
// one, network/); the HostConfig can share one instead, with the host
// ("host": the namespace is left out of linux.namespaces, so the runtime
// keeps its own, the host's) or with another running container
// ("container:<name|id>": the namespace is given by path,
// /proc/<its pid>/ns/<kind>, and the runtime joins it with setns(2)).

// checkNamespaceModes checks at create the namespace modes, that a
// container named by one exists, the sysctls against the namespaces the
// container will own, and settles what a mode implies: with --uts=host
// the hostname is the host's.
func (d *Daemon) checkNamespaceModes(cfg *api.ContainerConfig, hc *api.HostConfig) error {
	modes := []struct {
		field, value string
		allowed      []string
		container    bool // container:<name|id> allowed
	}{
		{"PidMode", hc.PidMode, []string{"", "host"}, true},
		{"IpcMode", hc.IpcMode, []string{"", "private", "shareable", "host"}, true},
		{"UTSMode", hc.UTSMode, []string{"", "host"}, false},
		{"UsernsMode", hc.UsernsMode, []string{"", "host"}, false},
		{"CgroupnsMode", hc.CgroupnsMode, []string{"", "private", "host"}, false},
	}
	for _, m := range modes {
		if other, ok := strings.CutPrefix(m.value, "container:"); ok && m.container {
			if _, err := d.lookup(other); err != nil {
				return errdefs.Invalidf("%s %s: %v", m.field, m.value, err)
			}
			continue
		}
		if !slices.Contains(m.allowed, m.value) {
			return errdefs.Invalidf("%s: invalid mode %q (known: %s)", m.field, m.value, knownModes(m.allowed, m.container))
		}
	}
	if hc.UTSMode == "host" {
		if cfg.Hostname != "" || cfg.Domainname != "" {
			return errdefs.Invalidf("Conflicting options: Hostname or Domainname and UTSMode host: the container has the host's")
		}
		cfg.Hostname, _ = os.Hostname()
	}
	own := map[string]bool{
		"network": hc.NetworkMode != "host" && !strings.HasPrefix(hc.NetworkMode, "container:"),
		"ipc":     hc.IpcMode != "host" && !strings.HasPrefix(hc.IpcMode, "container:"),
		"uts":     hc.UTSMode != "host",
	}
	if err := rootfs.CheckSysctls(hc.Sysctls, own); err != nil {
		return errdefs.Invalidf("Sysctls: %v", err)
	}
	return nil
}

func knownModes(allowed []string, container bool) string {
	var out []string
	for _, a := range allowed {
		if a != "" {
			out = append(out, a)
		}
	}
	if container {
		out = append(out, "container:<name|id>")
	}
	return strings.Join(out, ", ")
}

// setNamespaces applies the modes to the spec at start: a shared
// namespace is left out or given by path; /dev/shm follows the IPC
// namespace (a tmpfs of ShmSize in the container's mount namespace; for
// a shareable one a tmpfs the daemon mounts on the host, in the
// container's directory, which the containers that join it bind too; or
// the host's /dev/shm); a private cgroup namespace is added;
// --userns-remap maps the container's ids (userns.go).
func (d *Daemon) setNamespaces(c *Container, s *specs.Spec) error {
	hc := &c.HostConfig
	if err := d.shareNamespace(s, specs.PIDNamespace, "PidMode", hc.PidMode); err != nil {
		return err
	}
	if hc.UTSMode == "host" {
		removeNamespace(s, specs.UTSNamespace)
		s.Hostname = ""
	} else {
		s.Domainname = c.Config.Domainname // setdomainname(2) in its UTS namespace
	}
	if hc.CgroupnsMode == "private" {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.CgroupNamespace})
	}
	shm := specs.Mount{Destination: "/dev/shm", Type: "tmpfs", Source: "shm",
		Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=" + strconv.FormatInt(shmSize(hc), 10)}}
	ipc := hc.IpcMode
	if ipc == "shareable" {
		dir, err := d.mountShm(c)
		if err != nil {
			return err
		}
		shm = bindShm(dir)
	}
	if other, ok := strings.CutPrefix(ipc, "container:"); ok {
		o, pid, err := d.runningOther("IpcMode", other)
		if err != nil {
			return err
		}
		switch o.HostConfig.IpcMode {
		case "shareable":
			setNamespacePath(s, specs.IPCNamespace, ns.ProcPath(pid, specs.IPCNamespace))
			shm = bindShm(o.paths.shm())
		case "host":
			ipc = "host"
		default:
			return errdefs.Conflictf("IpcMode %s: container %s's IPC namespace is not shareable (start it with --ipc=shareable)", hc.IpcMode, o.Name)
		}
	}
	if ipc == "host" {
		removeNamespace(s, specs.IPCNamespace)
		shm = bindShm("/dev/shm")
	}
	for i, m := range s.Mounts {
		if m.Destination == "/dev/shm" {
			s.Mounts[i] = shm
		}
	}
	return d.remapUsers(c, s)
}

// shm is where a shareable IPC container's /dev/shm is mounted on the
// host. A mount in another mount namespace cannot be bound (mount(2)
// answers EINVAL for /proc/<pid>/root/dev/shm), so the daemon holds it.
func (p paths) shm() string { return filepath.Join(p.dir, "shm") }

// mountShm mounts c's shareable /dev/shm, unless it is mounted already,
// owned by the container's root (which --userns-remap moves).
func (d *Daemon) mountShm(c *Container) (string, error) {
	dir := c.paths.shm()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("/dev/shm of %s: %w", c.ID, err)
	}
	if mounted(dir) {
		return dir, nil
	}
	opts := fmt.Sprintf("mode=1777,size=%d", shmSize(&c.HostConfig))
	if m := c.UserNamespace; m != nil {
		opts += fmt.Sprintf(",uid=%d,gid=%d", m.rootUID(), m.rootGID())
	}
	if err := unix.Mount("shm", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, opts); err != nil {
		return "", fmt.Errorf("/dev/shm of %s: mount tmpfs on %s: %w", c.ID, dir, err)
	}
	return dir, nil
}

// unmountShm unmounts c's shareable /dev/shm once it has stopped (and
// with it every container that joined its IPC namespace).
func (d *Daemon) unmountShm(c *Container) {
	dir := c.paths.shm()
	if mounted(dir) {
		if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
			d.log.Printf("container %s: unmount %s: %v", c.ID, dir, err)
		}
	}
	os.Remove(dir)
}

// mounted tells whether dir is a mount point (another device than its
// parent).
func mounted(dir string) bool {
	var st, parent unix.Stat_t
	return unix.Stat(dir, &st) == nil && unix.Stat(filepath.Dir(dir), &parent) == nil && st.Dev != parent.Dev
}

func bindShm(source string) specs.Mount {
	return specs.Mount{Destination: "/dev/shm", Type: "bind", Source: source, Options: []string{"rbind", "nosuid", "noexec", "nodev"}}
}

// shmSize is the size of the container's /dev/shm: ShmSize, or Docker's
// 64 MiB.
func shmSize(hc *api.HostConfig) int64 {
	if hc.ShmSize > 0 {
		return hc.ShmSize
	}
	return 64 << 20
}

// shareNamespace applies a "host" or "container:" mode to namespace t.
func (d *Daemon) shareNamespace(s *specs.Spec, t specs.LinuxNamespaceType, field, mode string) error {
	if mode == "host" {
		removeNamespace(s, t)
		return nil
	}
	other, ok := strings.CutPrefix(mode, "container:")
	if !ok {
		return nil
	}
	_, pid, err := d.runningOther(field, other)
	if err != nil {
		return err
	}
	setNamespacePath(s, t, ns.ProcPath(pid, t))
	return nil
}

// runningOther finds the container a "container:" mode names, and its
// pid: it must be running.
func (d *Daemon) runningOther(field, ref string) (*Container, int, error) {
	o, err := d.lookup(ref)
	if err != nil {
		return nil, 0, errdefs.Invalidf("%s container:%s: %v", field, ref, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if o.State.Status != "running" {
		return nil, 0, errdefs.Conflictf("%s container:%s: cannot join the namespace of a container that is not running", field, ref)
	}
	return o, o.State.Pid, nil
}

func removeNamespace(s *specs.Spec, t specs.LinuxNamespaceType) {
	s.Linux.Namespaces = slices.DeleteFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == t })
}

func setNamespacePath(s *specs.Spec, t specs.LinuxNamespaceType, path string) {
	for i, n := range s.Linux.Namespaces {
		if n.Type == t {
			s.Linux.Namespaces[i].Path = path
		}
	}
}
