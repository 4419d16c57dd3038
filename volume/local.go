package volume

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// The local driver's options (`volume create -o`), as Docker's: with none,
// a volume is a directory. With type and device, a filesystem is mounted
// on the volume's _data while a container uses it:
//
//	-o type=tmpfs -o device=tmpfs -o o=size=64m   memory, lost when unmounted
//	-o type=none -o device=/srv/data -o o=bind    a host directory
//	-o type=ext4 -o device=/dev/vdb1              a block device
//
// o holds mount(2) flags (ro, nosuid, bind, rshared, ...) and the
// filesystem's own options (size=64m, uid=1000, ...).

// validateOptions checks a volume's driver options, in Docker's words
// where Docker has them.
func validateOptions(opts map[string]string) error {
	keys := make([]string, 0, len(opts))
	for k := range opts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		switch k {
		case "type", "device", "o":
		case "size":
			return invalidf("quota size requested but no quota support")
		default:
			return invalidf("invalid option: %q", k)
		}
	}
	for _, req := range []struct{ opt, needs string }{{"device", "type"}, {"type", "device"}, {"o", "device"}, {"o", "type"}} {
		if _, ok := opts[req.opt]; !ok {
			continue
		}
		if _, ok := opts[req.needs]; !ok {
			return invalidf("missing required option: %q", req.needs)
		}
	}
	flags, _, data := mountOptions(opts["o"])
	switch {
	case flags&unix.MS_BIND != 0:
		dev := opts["device"]
		if !filepath.IsAbs(dev) {
			return invalidf("invalid option \"device\": %q: a bind volume's device must be an absolute host path", dev)
		}
		if _, err := os.Stat(dev); err != nil {
			return invalidf("invalid option \"device\": the bind volume's host path %s: %v", dev, errors.Unwrap(err))
		}
	case opts["type"] == "tmpfs":
		if err := validateTmpfsData(data); err != nil {
			return invalidf("invalid option \"o\": %v", err)
		}
	}
	return nil
}

// needsMount reports whether a volume with these options has a
// filesystem mounted on its _data.
func needsMount(opts map[string]string) bool {
	return opts["type"] != "" || opts["device"] != ""
}

var (
	// mount(2) flags the o= option may set; their opposites (rw, suid,
	// exec, ...) are the defaults and are dropped
	setFlags = map[string]uintptr{
		"ro": unix.MS_RDONLY, "nosuid": unix.MS_NOSUID, "nodev": unix.MS_NODEV, "noexec": unix.MS_NOEXEC,
		"sync": unix.MS_SYNCHRONOUS, "dirsync": unix.MS_DIRSYNC, "noatime": unix.MS_NOATIME,
		"nodiratime": unix.MS_NODIRATIME, "relatime": unix.MS_RELATIME, "strictatime": unix.MS_STRICTATIME,
		"bind": unix.MS_BIND, "rbind": unix.MS_BIND | unix.MS_REC,
	}
	defaultFlags = map[string]bool{"rw": true, "suid": true, "dev": true, "exec": true, "async": true, "atime": true, "diratime": true}
	// propagation types, set by a mount(2) call of their own afterwards
	propagationFlags = map[string]uintptr{
		"private": unix.MS_PRIVATE, "rprivate": unix.MS_PRIVATE | unix.MS_REC,
		"shared": unix.MS_SHARED, "rshared": unix.MS_SHARED | unix.MS_REC,
		"slave": unix.MS_SLAVE, "rslave": unix.MS_SLAVE | unix.MS_REC,
		"unbindable": unix.MS_UNBINDABLE, "runbindable": unix.MS_UNBINDABLE | unix.MS_REC,
	}
)

// mountOptions splits o= into mount(2)'s flags, propagation changes and
// the filesystem's data string.
func mountOptions(o string) (flags uintptr, propagation []uintptr, data string) {
	var rest []string
	for _, opt := range strings.Split(o, ",") {
		switch {
		case opt == "" || defaultFlags[opt]:
		case setFlags[opt] != 0:
			flags |= setFlags[opt]
		case propagationFlags[opt] != 0:
			propagation = append(propagation, propagationFlags[opt])
		default:
			rest = append(rest, opt)
		}
	}
	return flags, propagation, strings.Join(rest, ",")
}

// mountData mounts the volume's filesystem on its _data directory, as
// Docker's local driver does: mount(2) of the device with the type, the
// flags and the data of o=. A bind takes its flags in a second call
// (MS_REMOUNT|MS_BIND), since the kernel ignores them on the first.
func (v *volume) mountData() error {
	o := v.meta.Options
	target := v.data()
	flags, propagation, data := mountOptions(o["o"])
	var err error
	if flags&unix.MS_BIND != 0 {
		err = unix.Mount(o["device"], target, o["type"], flags&(unix.MS_BIND|unix.MS_REC), "")
		if rest := flags &^ (unix.MS_BIND | unix.MS_REC); err == nil && rest != 0 {
			if err = unix.Mount("", target, "", rest|unix.MS_BIND|unix.MS_REMOUNT, ""); err != nil {
				unix.Unmount(target, unix.MNT_DETACH)
			}
		}
	} else {
		err = unix.Mount(o["device"], target, o["type"], flags, data)
	}
	if err != nil {
		return fmt.Errorf("mount %s (type %s, options %q) on %s: %w", o["device"], o["type"], o["o"], target, err)
	}
	for _, p := range propagation {
		if err := unix.Mount("", target, "", p, ""); err != nil {
			unix.Unmount(target, unix.MNT_DETACH)
			return fmt.Errorf("set propagation on %s: %w", target, err)
		}
	}
	return nil
}

// unmountData unmounts the volume's filesystem from _data, lazily
// (MNT_DETACH, as Docker does): a process of the host that still has a
// file open there does not keep the volume from going.
func (v *volume) unmountData() error {
	if err := unix.Unmount(v.data(), unix.MNT_DETACH); err != nil && err != unix.EINVAL {
		return fmt.Errorf("unmount %s: %w", v.data(), err)
	}
	return nil
}

// Mount makes the volume called name ready for container and returns the
// host directory to bind into it (its _data). A volume with driver options
// gets its filesystem mounted by its first user and keeps it until the
// last one calls Unmount; a plain volume is just its directory. Each
// container counts once.
func (s *Store) Mount(name, container string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := s.get("mount", name)
	if err != nil {
		return "", err
	}
	if needsMount(v.meta.Options) && !v.mounted {
		if err := v.mountData(); err != nil {
			return "", &Error{Op: "mount", Name: name, Err: err}
		}
		v.mounted = true
	}
	v.mounts[container] = true
	return v.data(), nil
}

// Unmount records that container no longer has the volume mounted; when
// it was the last, a volume's driver filesystem is unmounted (a tmpfs
// volume's data is then gone, as with Docker).
func (s *Store) Unmount(name, container string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := s.get("unmount", name)
	if err != nil {
		return err
	}
	delete(v.mounts, container)
	if len(v.mounts) > 0 || !v.mounted {
		return nil
	}
	if err := v.unmountData(); err != nil {
		return &Error{Op: "unmount", Name: name, Err: err}
	}
	v.mounted = false
	return nil
}

// UnmountIdle unmounts the driver filesystems that no container has
// mounted: after a daemon restart, once the engine has declared the
// containers still running (Restore), those whose users stopped while it
// was down.
func (s *Store) UnmountIdle() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for _, v := range s.sorted() {
		if v.mounted && len(v.mounts) == 0 {
			if err := v.unmountData(); err != nil {
				errs = append(errs, &Error{Op: "unmount", Name: v.meta.Name, Err: err})
				continue
			}
			v.mounted = false
		}
	}
	return errors.Join(errs...)
}
