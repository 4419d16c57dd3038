// Package rootfs builds the container's filesystem view inside its new
// mount namespace. Every call to the kernel goes through the seam
// (kernel.Calls), so the order below can be checked without root. The
// init calls these functions in this order (runtime/init.go: prepareRootfs,
// enterRootfs, finalizeRootfs):
//
//	prepareRootfs, still in the host's tree:
//	  SetRootPropagation  mount("", "/", MS_REC|MS_SLAVE): nothing flows back to the host
//	  MakeParentPrivate   only under a shared parent mount (pivot_root refuses one)
//	  BindRootfs          mount(rootfs, rootfs, MS_BIND|MS_REC): a mount point of its own
//	  MountAll            the config's mounts (Mount, each resolved inside the rootfs)
//	  SetupDev            /dev tmpfs, device nodes, /dev symlinks, /dev/shm
//	  BindConsole         the pty's slave on /dev/console (with a terminal)
//	enterRootfs:
//	  PivotRoot           pivot_root(".", "."), then detach the old root
//	  MoveRoot            or MS_MOVE + chroot (--no-pivot)
//	finalizeRootfs, inside the container's tree:
//	  WriteSysctls, ReadonlyPaths, MaskPaths, ReadonlyRoot
//
// See docs/rootfs.md.
package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"minidock/cgroup"
	"minidock/internal/mountinfo"
	"minidock/kernel"
)

// mountOption is what one mount option means for mount(2): a flag set or
// cleared, or a propagation change made by a second mount(2) call.
type mountOption struct {
	name        string
	clear       bool // the option removes the flag ("rw", "suid", ...)
	flag        uintptr
	propagation bool
}

// mountOptions is a table, not a map: a map literal would be built at every
// start of the binary, whatever its role.
var mountOptions = []mountOption{
	{"ro", false, unix.MS_RDONLY, false}, {"rw", true, unix.MS_RDONLY, false},
	{"nosuid", false, unix.MS_NOSUID, false}, {"suid", true, unix.MS_NOSUID, false},
	{"nodev", false, unix.MS_NODEV, false}, {"dev", true, unix.MS_NODEV, false},
	{"noexec", false, unix.MS_NOEXEC, false}, {"exec", true, unix.MS_NOEXEC, false},
	{"sync", false, unix.MS_SYNCHRONOUS, false}, {"async", true, unix.MS_SYNCHRONOUS, false},
	{"dirsync", false, unix.MS_DIRSYNC, false}, {"remount", false, unix.MS_REMOUNT, false},
	{"mand", false, unix.MS_MANDLOCK, false}, {"nomand", true, unix.MS_MANDLOCK, false},
	{"atime", true, unix.MS_NOATIME, false}, {"noatime", false, unix.MS_NOATIME, false},
	{"diratime", true, unix.MS_NODIRATIME, false}, {"nodiratime", false, unix.MS_NODIRATIME, false},
	{"relatime", false, unix.MS_RELATIME, false}, {"norelatime", true, unix.MS_RELATIME, false},
	{"strictatime", false, unix.MS_STRICTATIME, false}, {"nostrictatime", true, unix.MS_STRICTATIME, false},
	{"bind", false, unix.MS_BIND, false}, {"rbind", false, unix.MS_BIND | unix.MS_REC, false},
	{"private", false, unix.MS_PRIVATE, true}, {"rprivate", false, unix.MS_PRIVATE | unix.MS_REC, true},
	{"shared", false, unix.MS_SHARED, true}, {"rshared", false, unix.MS_SHARED | unix.MS_REC, true},
	{"slave", false, unix.MS_SLAVE, true}, {"rslave", false, unix.MS_SLAVE | unix.MS_REC, true},
	{"unbindable", false, unix.MS_UNBINDABLE, true}, {"runbindable", false, unix.MS_UNBINDABLE | unix.MS_REC, true},
}

func lookupOption(name string) (mountOption, bool) {
	for _, o := range mountOptions {
		if o.name == name {
			return o, true
		}
	}
	return mountOption{}, false
}

// KnownOptions lists the mount options this package understands as
// flags or propagation (others go to the filesystem as data).
func KnownOptions() []string {
	var out []string
	for _, o := range mountOptions {
		out = append(out, o.name)
	}
	return out
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
	for _, name := range opts {
		o, ok := lookupOption(name)
		switch {
		case !ok:
			data = append(data, name)
		case o.propagation:
			p.propagation = append(p.propagation, o.flag)
		case o.clear:
			p.flags &^= o.flag
		default:
			p.flags |= o.flag
		}
	}
	p.data = strings.Join(data, ",")
	return p
}

// SetRootPropagation changes the propagation of every mount in the new
// mount namespace (mount(2) with MS_REC and MS_SLAVE or MS_PRIVATE on "/").
// The namespace starts as a copy of the host's, with the host's shared
// mounts still shared: without this step, mounts made for the container
// would appear on the host.
func SetRootPropagation(k kernel.Calls, option string) error {
	flag := uintptr(unix.MS_SLAVE | unix.MS_REC) // runc's default
	if option != "" {
		o, ok := lookupOption(option)
		if !ok || !o.propagation {
			return fmt.Errorf("rootfsPropagation %q: unknown", option)
		}
		flag = o.flag
	}
	return k.Mount("", "/", "", flag, "")
}

// MakeParentPrivate makes the mount that holds the rootfs directory private
// when it is shared, which a root propagation of "shared" or a non-recursive
// one can leave it. pivot_root(2) refuses (EINVAL) a new root that is
// shared or whose parent mount is shared; done before BindRootfs, the bind
// of the rootfs is then private too. After a recursive slave, private or
// unbindable propagation (runc's default, rslave) no mount is shared, and
// mountinfo is not even read.
func MakeParentPrivate(k kernel.Calls, rootfs, propagation string) error {
	switch propagation {
	case "", "rslave", "rprivate", "runbindable":
		return nil
	}
	m, err := mountinfo.Of(filepath.Dir(rootfs))
	if err != nil || !m.Has("shared:") {
		return err
	}
	return k.Mount("", m.Point, "", unix.MS_PRIVATE, "")
}

// BindRootfs bind-mounts the rootfs directory onto itself (MS_BIND|MS_REC):
// pivot_root(2) needs the new root to be a mount point.
func BindRootfs(k kernel.Calls, rootfs string) error {
	return k.Mount(rootfs, rootfs, "", unix.MS_BIND|unix.MS_REC, "")
}

// MountEnv is what the config's mounts depend on besides their entries.
type MountEnv struct {
	UserNS   bool   // a user namespace of its own: sysfs may need a bind, cgroup v1 cannot be mounted
	CgroupNS bool   // a cgroup namespace of its own, already unshared
	Cgroup   string // the container's cgroup, the same path in each hierarchy it is in
}

// MountAll performs the config's mounts in order, each below rootfs.
func MountAll(k kernel.Calls, rootfs string, mounts []specs.Mount, env MountEnv) error {
	for _, m := range mounts {
		if err := Mount(k, rootfs, m, env); err != nil {
			return err
		}
	}
	return nil
}

// Mount performs one config mount below rootfs, in runc's way:
//
//  1. resolve the destination inside the rootfs (Resolve): symlinks
//     followed as the container will see them, ".." stopped at its root;
//  2. create the mount point there when it is missing (makeTarget): a
//     directory, or an empty file when a file is bind-mounted;
//  3. mount(2), not on that path but on the destination opened again
//     inside the rootfs (atTarget: openat2 RESOLVE_IN_ROOT, then
//     /proc/self/fd/N), so that a symlink put on the way meanwhile by a
//     process that shares a volume with the container cannot lead the
//     mount out of the rootfs (runc's fix of CVE-2021-30465);
//  4. for a bind mount, remount it (remountBind) to apply ro, nosuid,
//     nodev, noexec, which the kernel ignores on the first bind;
//  5. set its propagation.
//
// Steps 4 and 5 open the destination again: a descriptor opened before a
// mount names the directory under it, not the new mount.
func Mount(k kernel.Calls, rootfs string, m specs.Mount, env MountEnv) error {
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
		return mountCgroup(k, dest, p, env)
	}
	bind := p.flags&unix.MS_BIND != 0
	if err := makeTarget(rootfs, dest, m.Source, bind); err != nil {
		return fmt.Errorf("mount %s: %w", m.Destination, err)
	}
	root, err := k.Open(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC)
	if err != nil {
		return err
	}
	defer k.Close(root)
	at := func(f func(target string) error) error {
		if err := atTarget(k, root, rootfs, dest, f); err != nil {
			return fmt.Errorf("mount on %s: %w", dest, err)
		}
		return nil
	}
	if bind {
		err = at(func(t string) error { return k.Mount(m.Source, t, "", p.flags&(unix.MS_BIND|unix.MS_REC), "") })
		if err == nil && p.flags&^(unix.MS_BIND|unix.MS_REC) != 0 {
			err = at(func(t string) error { return remountBind(k, t, dest, p.flags) })
		}
	} else {
		err = at(func(t string) error { return k.Mount(m.Source, t, m.Type, p.flags, p.data) })
		if err != nil && m.Type == "sysfs" && env.UserNS {
			// sysfs needs a network namespace owned by our user namespace;
			// without one, fall back to the host's /sys, read-only.
			err = at(func(t string) error { return k.Mount("/sys", t, "", unix.MS_BIND|unix.MS_REC, "") })
			if err == nil {
				err = at(func(t string) error { return remountBind(k, t, dest, p.flags|unix.MS_RDONLY) })
			}
		}
		if err != nil && m.Type == "devpts" && strings.Contains(p.data, "gid=") {
			// gid=5 (tty) may not be mapped in a user namespace: retry without.
			err = at(func(t string) error { return k.Mount(m.Source, t, m.Type, p.flags, dropOption(p.data, "gid=")) })
		}
	}
	if err != nil {
		return err
	}
	for _, pf := range p.propagation {
		if err := at(func(t string) error { return k.Mount("", t, "", pf, "") }); err != nil {
			return err
		}
	}
	return nil
}

// atTarget opens dest (a host path below rootfs, from Resolve) inside the
// rootfs, whose descriptor is root: openat2(2) with RESOLVE_IN_ROOT, so
// that every symlink on the way, absolute or with "..", resolves as if
// the rootfs were "/", and RESOLVE_NO_MAGICLINKS, so that no /proc link
// leads elsewhere. f gets the descriptor as /proc/self/fd/N: a mount(2)
// on it acts on what was opened, not on what the path names by then.
func atTarget(k kernel.Calls, root int, rootfs, dest string, f func(target string) error) error {
	fd, err := k.Openat2(root, rootfs, inRoot(rootfs, dest), unix.O_PATH|unix.O_CLOEXEC, unix.RESOLVE_IN_ROOT|unix.RESOLVE_NO_MAGICLINKS)
	if err != nil {
		return err
	}
	defer k.Close(fd)
	return f("/proc/self/fd/" + strconv.Itoa(fd))
}

// inRoot is host path p, at or below rootfs, relative to rootfs ("." for
// rootfs itself).
func inRoot(rootfs, p string) string {
	rel, err := filepath.Rel(rootfs, p)
	if err != nil {
		return "."
	}
	return rel
}

// remountBind applies per-mount flags to the bind mount at target. The
// flags the kernel locks (those already set on the mount, read with
// statfs(2) of path, the mount's place) are kept, or the remount would
// be refused inside a user namespace.
func remountBind(k kernel.Calls, target, path string, flags uintptr) error {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return fmt.Errorf("statfs %s: %w", path, err)
	}
	flags |= lockedFlags(st.Flags)
	return k.Mount("", target, "", flags|unix.MS_BIND|unix.MS_REMOUNT, "")
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

// makeTarget creates the mount point dest (a host path below rootfs, from
// Resolve) when it is missing: a directory, or an empty file when a file
// is bind-mounted. Each missing piece is made (mkdirat(2), openat(2) with
// O_CREAT|O_EXCL) in its parent directory opened inside the rootfs
// (openat2 RESOLVE_IN_ROOT): a symlink put on the way meanwhile leads
// inside the rootfs, never out of it. Making files is not a call of the
// seam (kernel.Calls): the mount that follows is.
func makeTarget(rootfs, dest, source string, bind bool) error {
	file := false
	if bind {
		fi, err := os.Stat(source)
		if err != nil {
			return fmt.Errorf("bind source: %w", err)
		}
		file = !fi.IsDir()
	}
	rel := inRoot(rootfs, dest)
	if rel == "." {
		return nil
	}
	root, err := unix.Open(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open rootfs %s: %w", rootfs, err)
	}
	defer unix.Close(root)
	parts := strings.Split(rel, "/")
	for i, name := range parts {
		have, err := openInRoot(root, strings.Join(parts[:i+1], "/"))
		if err == nil {
			unix.Close(have)
			continue
		}
		if err != unix.ENOENT {
			return fmt.Errorf("create %s: %w", dest, err)
		}
		parent, err := openInRoot(root, filepath.Join(append([]string{"."}, parts[:i]...)...))
		if err != nil {
			return fmt.Errorf("create %s: %w", dest, err)
		}
		if i == len(parts)-1 && file {
			var fd int
			if fd, err = unix.Openat(parent, name, unix.O_CREAT|unix.O_EXCL|unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644); err == nil {
				unix.Close(fd)
			}
		} else {
			err = unix.Mkdirat(parent, name, 0o755)
		}
		unix.Close(parent)
		if err != nil && err != unix.EEXIST { // made meanwhile: fine
			return fmt.Errorf("create %s: %w", dest, err)
		}
	}
	return nil
}

// createFile makes an empty file at p unless something is there already.
func createFile(p string, perm os.FileMode) error {
	f, err := os.OpenFile(p, os.O_CREATE|os.O_RDONLY, perm)
	if err != nil {
		return err
	}
	return f.Close()
}

// openInRoot opens rel below the directory root as an O_PATH descriptor,
// resolved as if root were "/" (openat2 RESOLVE_IN_ROOT, no /proc links).
func openInRoot(root int, rel string) (int, error) {
	how := unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS}
	for {
		fd, err := unix.Openat2(root, rel, &how)
		if err != unix.EAGAIN && err != unix.EINTR {
			return fd, err
		}
	}
}

// mountCgroup gives the container a view of its own cgroup. On a pure v2
// host that is a cgroup2 mount (the cgroup namespace makes the container's
// cgroup its root). On a v1 or hybrid host it is a tmpfs holding one mount
// per hierarchy the container is in, showing the container's own cgroup:
//
//   - in a cgroup namespace of its own, a cgroup (or cgroup2) mount of the
//     hierarchy, whose root is then the container's cgroup, with its flags
//     given at once;
//   - otherwise (no cgroup namespace, or a user namespace, where cgroup v1
//     cannot be mounted), a bind mount of the container's cgroup directory,
//     remounted for its flags.
func mountCgroup(k kernel.Calls, dest string, p parsedMount, env MountEnv) error {
	if err := os.MkdirAll(dest, 0o755); err != nil {
		return err
	}
	if mode, err := cgroup.DetectMode(); err == nil && mode == cgroup.Unified {
		return k.Mount("cgroup2", dest, "cgroup2", p.flags, "")
	}
	if err := k.Mount("tmpfs", dest, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=755"); err != nil {
		return err
	}
	hier, err := cgroupHierarchies()
	if err != nil {
		return err
	}
	flags := p.flags | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	for _, h := range hier {
		src := filepath.Join(h.mountpoint, env.Cgroup)
		if _, err := os.Stat(src); err != nil {
			continue // the container has no cgroup of its own in this hierarchy
		}
		target := filepath.Join(dest, filepath.Base(h.mountpoint))
		if err := os.MkdirAll(target, 0o755); err != nil {
			return err
		}
		if env.CgroupNS && !env.UserNS {
			fstype, data := "cgroup", h.key
			if h.key == "" {
				fstype = "cgroup2"
			}
			if err := k.Mount("cgroup", target, fstype, flags, data); err != nil {
				return err
			}
			continue
		}
		if err := k.Mount(src, target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return err
		}
		if err := remountBind(k, target, target, flags); err != nil {
			return err
		}
	}
	if p.flags&unix.MS_RDONLY != 0 {
		return remountBind(k, dest, dest, unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC)
	}
	return nil
}

type hierarchy struct {
	mountpoint string
	key        string // the mount options that name it ("cpu,cpuacct"); "" for cgroup2
}

// cgroupHierarchies lists the host's cgroup mounts from mountinfo.
func cgroupHierarchies() ([]hierarchy, error) {
	table, err := mountinfo.Read()
	if err != nil {
		return nil, err
	}
	var out []hierarchy
	for _, m := range table {
		switch m.FSType {
		case "cgroup2":
			out = append(out, hierarchy{m.Point, ""})
		case "cgroup":
			// the options that name the hierarchy: its controllers, or
			// "none,name=..." for a named hierarchy without any
			var opts []string
			for _, o := range strings.Split(m.SuperOptions, ",") {
				switch {
				case strings.HasPrefix(o, "name="):
					opts = append(opts, o)
				case o == "rw" || o == "ro" || strings.Contains(o, "=") || o == "clone_children" || o == "noprefix" || o == "xattr" || o == "cpuset_v2_mode":
				default:
					opts = append(opts, o)
				}
			}
			if len(opts) == 1 && strings.HasPrefix(opts[0], "name=") {
				opts = append([]string{"none"}, opts...)
			}
			out = append(out, hierarchy{m.Point, strings.Join(opts, ",")})
		}
	}
	return out, nil
}

// isNotExist tells a missing path from other failures of the seam.
func isNotExist(err error) bool { return errors.Is(err, unix.ENOENT) }
