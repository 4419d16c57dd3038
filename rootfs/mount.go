// Package rootfs builds the container's filesystem view inside its new
// mount namespace, in the order the init runs the steps:
//
//  1. SetRootPropagation: stop mount events flowing back to the host.
//  2. BindRootfs: make the rootfs directory a mount point of its own.
//  3. MountAll: the config's mounts (proc, sysfs, tmpfs, devpts, binds...).
//  4. SetupDev: device nodes and the /dev symlinks.
//  5. PivotRoot: swap / for the rootfs and detach the old root.
//  6. MaskPaths, ReadonlyPaths, ReadonlyRoot, WriteSysctls.
//
// See docs/rootfs.md.
package rootfs

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"minidock/internal/trace"
)

// mountFlag is what one mount option means for mount(2).
type mountFlag struct {
	clear bool // the option removes the flag ("rw", "suid", ...)
	flag  uintptr
}

var mountFlags = map[string]mountFlag{
	"ro": {false, unix.MS_RDONLY}, "rw": {true, unix.MS_RDONLY},
	"nosuid": {false, unix.MS_NOSUID}, "suid": {true, unix.MS_NOSUID},
	"nodev": {false, unix.MS_NODEV}, "dev": {true, unix.MS_NODEV},
	"noexec": {false, unix.MS_NOEXEC}, "exec": {true, unix.MS_NOEXEC},
	"sync": {false, unix.MS_SYNCHRONOUS}, "async": {true, unix.MS_SYNCHRONOUS},
	"dirsync": {false, unix.MS_DIRSYNC}, "remount": {false, unix.MS_REMOUNT},
	"mand": {false, unix.MS_MANDLOCK}, "nomand": {true, unix.MS_MANDLOCK},
	"atime": {true, unix.MS_NOATIME}, "noatime": {false, unix.MS_NOATIME},
	"diratime": {true, unix.MS_NODIRATIME}, "nodiratime": {false, unix.MS_NODIRATIME},
	"relatime": {false, unix.MS_RELATIME}, "norelatime": {true, unix.MS_RELATIME},
	"strictatime": {false, unix.MS_STRICTATIME}, "nostrictatime": {true, unix.MS_STRICTATIME},
	"bind": {false, unix.MS_BIND}, "rbind": {false, unix.MS_BIND | unix.MS_REC},
}

var propagationFlags = map[string]uintptr{
	"private": unix.MS_PRIVATE, "rprivate": unix.MS_PRIVATE | unix.MS_REC,
	"shared": unix.MS_SHARED, "rshared": unix.MS_SHARED | unix.MS_REC,
	"slave": unix.MS_SLAVE, "rslave": unix.MS_SLAVE | unix.MS_REC,
	"unbindable": unix.MS_UNBINDABLE, "runbindable": unix.MS_UNBINDABLE | unix.MS_REC,
}

// parsedMount is a spec mount split into what mount(2) takes.
type parsedMount struct {
	flags       uintptr   // MS_* flags
	propagation []uintptr // applied one by one after the mount
	data        string    // filesystem-specific options, comma-separated
}

// parseOptions splits mount options into flags, propagation and data.
// Options mount(2) does not know as flags go to the filesystem as data.
func parseOptions(opts []string) parsedMount {
	var p parsedMount
	var data []string
	for _, o := range opts {
		if f, ok := mountFlags[o]; ok {
			if f.clear {
				p.flags &^= f.flag
			} else {
				p.flags |= f.flag
			}
		} else if f, ok := propagationFlags[o]; ok {
			p.propagation = append(p.propagation, f)
		} else {
			data = append(data, o)
		}
	}
	p.data = strings.Join(data, ",")
	return p
}

// propagationName spells a propagation flag for traces.
func propagationName(f uintptr) string {
	for n, v := range propagationFlags {
		if v == f {
			return n
		}
	}
	return fmt.Sprint(f)
}

// SetRootPropagation changes the propagation of every mount in the new
// mount namespace (mount(2) with MS_REC and MS_SLAVE or MS_PRIVATE on "/").
// The namespace starts as a copy of the host's, with the host's shared
// mounts still shared: without this step, mounts made for the container
// would appear on the host.
func SetRootPropagation(option string) error {
	flag := uintptr(unix.MS_SLAVE | unix.MS_REC) // runc's default
	if option != "" {
		f, ok := propagationFlags[option]
		if !ok {
			return fmt.Errorf("rootfsPropagation %q: unknown", option)
		}
		flag = f
	}
	err := unix.Mount("", "/", "", flag, "")
	if err != nil {
		err = fmt.Errorf("make / %s: %w", propagationName(flag), err)
	}
	return trace.Step("root-propagation", fmt.Sprintf("mount(\"\", \"/\", MS_REC|%s)", strings.ToUpper(strings.TrimPrefix(propagationName(flag), "r"))), err)
}

// BindRootfs bind-mounts the rootfs directory onto itself (MS_BIND|MS_REC):
// pivot_root(2) needs the new root to be a mount point.
func BindRootfs(rootfs string) error {
	err := unix.Mount(rootfs, rootfs, "", unix.MS_BIND|unix.MS_REC, "")
	if err != nil {
		err = fmt.Errorf("bind rootfs %s: %w", rootfs, err)
	}
	return trace.Step("bind-rootfs", fmt.Sprintf("mount(%q, %q, MS_BIND|MS_REC)", rootfs, rootfs), err)
}

// MountAll performs the config's mounts in order, each below rootfs.
func MountAll(rootfs string, mounts []specs.Mount, inUserNS bool) error {
	for _, m := range mounts {
		if err := Mount(rootfs, m, inUserNS); err != nil {
			return err
		}
	}
	return nil
}

// Mount performs one config mount below rootfs: resolve the destination
// inside the rootfs, create it, mount(2), then remount a bind mount to apply
// ro/nosuid/nodev/noexec (the kernel ignores them on the first bind), then
// set its propagation.
func Mount(rootfs string, m specs.Mount, inUserNS bool) error {
	if !filepath.IsAbs(m.Destination) {
		return fmt.Errorf("mount destination %q: not an absolute path", m.Destination)
	}
	dest, err := Resolve(rootfs, m.Destination)
	if err != nil {
		return fmt.Errorf("mount %s: %w", m.Destination, err)
	}
	p := parseOptions(m.Options)
	if m.Type == "bind" {
		p.flags |= unix.MS_BIND
	}
	if m.Type == "cgroup" {
		return mountCgroup(m, dest, p)
	}
	bind := p.flags&unix.MS_BIND != 0
	if err := makeTarget(dest, m.Source, bind); err != nil {
		return fmt.Errorf("mount %s: %w", m.Destination, err)
	}
	call := fmt.Sprintf("mount(%q, %q, %q, %#x, %q)", m.Source, dest, m.Type, p.flags, p.data)
	if bind {
		err = unix.Mount(m.Source, dest, "", p.flags&(unix.MS_BIND|unix.MS_REC), "")
		if err == nil && p.flags&^(unix.MS_BIND|unix.MS_REC) != 0 {
			err = remountBind(dest, p.flags)
		}
	} else {
		err = unix.Mount(m.Source, dest, m.Type, p.flags, p.data)
		if err != nil && m.Type == "sysfs" && inUserNS {
			// sysfs needs a network namespace owned by our user namespace;
			// without one, fall back to the host's /sys, read-only.
			err = unix.Mount("/sys", dest, "", unix.MS_BIND|unix.MS_REC, "")
			if err == nil {
				err = remountBind(dest, p.flags|unix.MS_RDONLY)
			}
		}
		if err != nil && m.Type == "devpts" && strings.Contains(p.data, "gid=") {
			// gid=5 (tty) may not be mapped in a user namespace: retry without.
			err = unix.Mount(m.Source, dest, m.Type, p.flags, dropOption(p.data, "gid="))
		}
	}
	if err != nil {
		return trace.Step("mount", call, fmt.Errorf("mount %s on %s (%s): %w", m.Source, m.Destination, m.Type, err))
	}
	trace.Step("mount", call, nil)
	for _, pf := range p.propagation {
		if err := unix.Mount("", dest, "", pf, ""); err != nil {
			return fmt.Errorf("set propagation %s on %s: %w", propagationName(pf), m.Destination, err)
		}
	}
	return nil
}

// remountBind applies per-mount flags to a bind mount. The flags the kernel
// locks (those already set on the source mount) are kept, or the remount
// would be refused inside a user namespace.
func remountBind(dest string, flags uintptr) error {
	var st unix.Statfs_t
	if err := unix.Statfs(dest, &st); err != nil {
		return fmt.Errorf("statfs %s: %w", dest, err)
	}
	flags |= lockedFlags(st.Flags)
	err := unix.Mount("", dest, "", flags|unix.MS_BIND|unix.MS_REMOUNT, "")
	return trace.Step("remount", fmt.Sprintf("mount(\"\", %q, MS_BIND|MS_REMOUNT|%#x)", dest, flags), err)
}

// lockedFlags converts statfs(2) f_flags into the MS_* flags that a bind
// remount must keep.
func lockedFlags(st int64) uintptr {
	var f uintptr
	for _, x := range []struct{ st, ms uintptr }{
		{unix.ST_NOSUID, unix.MS_NOSUID}, {unix.ST_NODEV, unix.MS_NODEV}, {unix.ST_NOEXEC, unix.MS_NOEXEC},
		{unix.ST_RDONLY, unix.MS_RDONLY}, {unix.ST_NOATIME, unix.MS_NOATIME}, {unix.ST_NODIRATIME, unix.MS_NODIRATIME},
		{unix.ST_RELATIME, unix.MS_RELATIME},
	} {
		if uintptr(st)&x.st != 0 {
			f |= x.ms
		}
	}
	return f
}

func dropOption(data, prefix string) string {
	var kept []string
	for _, o := range strings.Split(data, ",") {
		if !strings.HasPrefix(o, prefix) {
			kept = append(kept, o)
		}
	}
	return strings.Join(kept, ",")
}

// makeTarget creates the mount point: a file when a file is bind-mounted,
// a directory otherwise.
func makeTarget(dest, source string, bind bool) error {
	if bind {
		fi, err := os.Stat(source)
		if err != nil {
			return fmt.Errorf("bind source: %w", err)
		}
		if !fi.IsDir() {
			if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
				return err
			}
			f, err := os.OpenFile(dest, os.O_CREATE|os.O_RDONLY, 0o644)
			if err != nil {
				return err
			}
			return f.Close()
		}
	}
	return os.MkdirAll(dest, 0o755)
}

// mountCgroup gives the container a view of its own cgroup. On a pure v2
// host that is a cgroup2 mount (the cgroup namespace makes the container's
// cgroup its root). On a v1 or hybrid host it is a tmpfs holding, for each
// hierarchy, a bind mount of the container's own cgroup directory.
func mountCgroup(m specs.Mount, dest string, p parsedMount) error {
	if err := os.MkdirAll(dest, 0o755); err != nil {
		return err
	}
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		err := unix.Mount("cgroup2", dest, "cgroup2", p.flags, "")
		return trace.Step("mount", fmt.Sprintf("mount(\"cgroup2\", %q, \"cgroup2\", %#x)", dest, p.flags), wrapf(err, "mount cgroup2 on %s", m.Destination))
	}
	if err := unix.Mount("tmpfs", dest, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=755"); err != nil {
		return fmt.Errorf("mount tmpfs on %s: %w", m.Destination, err)
	}
	own, err := ownCgroups()
	if err != nil {
		return err
	}
	hier, err := cgroupHierarchies()
	if err != nil {
		return err
	}
	for _, h := range hier {
		rel, ok := own[h.key]
		if !ok {
			continue
		}
		src := filepath.Join(h.mountpoint, rel)
		target := filepath.Join(dest, filepath.Base(h.mountpoint))
		if err := os.MkdirAll(target, 0o755); err != nil {
			return err
		}
		if err := unix.Mount(src, target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind cgroup %s on %s: %w", src, target, err)
		}
		if err := remountBind(target, p.flags|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC); err != nil {
			return fmt.Errorf("remount cgroup %s: %w", target, err)
		}
	}
	trace.Step("mount", fmt.Sprintf("cgroup v1 view on %q (tmpfs + %d binds)", dest, len(hier)), nil)
	if p.flags&unix.MS_RDONLY != 0 {
		return remountBind(dest, unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC)
	}
	return nil
}

type hierarchy struct {
	mountpoint string
	key        string // the controllers list as /proc/self/cgroup names it
}

// cgroupHierarchies lists the host's cgroup mounts from mountinfo.
func cgroupHierarchies() ([]hierarchy, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []hierarchy
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(s.Text())
		i := indexOf(fields, "-")
		if i < 0 || i+3 >= len(fields) {
			continue
		}
		fstype, superOpts := fields[i+1], fields[i+3]
		switch fstype {
		case "cgroup2":
			out = append(out, hierarchy{fields[4], ""})
		case "cgroup":
			var ctrls []string
			for _, o := range strings.Split(superOpts, ",") {
				switch {
				case strings.HasPrefix(o, "name="):
					ctrls = append(ctrls, o)
				case o == "rw" || o == "ro" || strings.Contains(o, "=") || o == "clone_children" || o == "noprefix" || o == "xattr" || o == "cpuset_v2_mode":
				default:
					ctrls = append(ctrls, o)
				}
			}
			out = append(out, hierarchy{fields[4], strings.Join(ctrls, ",")})
		}
	}
	return out, s.Err()
}

// ownCgroups reads /proc/self/cgroup: controllers → path.
func ownCgroups() (map[string]string, error) {
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil, err
	}
	own := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) == 3 {
			own[parts[1]] = parts[2]
		}
	}
	return own, nil
}

func indexOf(s []string, x string) int {
	for i, v := range s {
		if v == x {
			return i
		}
	}
	return -1
}

func wrapf(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
}

// KnownOptions lists the mount options this package understands as
// flags or propagation (others go to the filesystem as data).
func KnownOptions() []string {
	var out []string
	for k := range mountFlags {
		out = append(out, k)
	}
	for k := range propagationFlags {
		out = append(out, k)
	}
	return out
}
