package daemon

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"minidock/api"
	"minidock/internal/errdefs"
)

// gatherDevices turns --device (HostConfig.Devices) into the device
// nodes the runtime makes in the container (linux.devices: type, major,
// minor, mode, owner, read from the host's node now) and the device
// cgroup rules that let the container use them with the permissions
// given. A directory brings every device below it. A privileged
// container gets every device of the host's /dev and a rule allowing
// all devices.
func gatherDevices(hc *api.HostConfig) ([]specs.LinuxDevice, []specs.LinuxDeviceCgroup, error) {
	if hc.Privileged {
		devs, err := devicesUnder("/dev", "/dev", true)
		if err != nil {
			return nil, nil, errdefs.Invalidf("Privileged: list the host's devices: %v", err)
		}
		return devs, []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}, nil
	}
	var devs []specs.LinuxDevice
	var rules []specs.LinuxDeviceCgroup
	for _, m := range hc.Devices {
		perms := m.CgroupPermissions
		if perms == "" {
			perms = "rwm"
		}
		if !api.ValidDevicePermissions(perms) {
			return nil, nil, errdefs.Invalidf("Devices: %s: invalid permissions %q: a combination of r, w and m", m.PathOnHost, perms)
		}
		dest := m.PathInContainer
		if dest == "" {
			dest = m.PathOnHost
		}
		if !strings.HasPrefix(dest, "/") {
			return nil, nil, errdefs.Invalidf("Devices: %s: the path in the container %q is not absolute", m.PathOnHost, dest)
		}
		found, err := devicesUnder(m.PathOnHost, dest, false)
		if err != nil {
			return nil, nil, errdefs.Invalidf("Devices: error gathering device information while adding custom device %q: %v", m.PathOnHost, err)
		}
		for _, d := range found {
			devs = append(devs, d)
			rules = append(rules, specs.LinuxDeviceCgroup{Allow: true, Type: d.Type, Major: ptr(d.Major), Minor: ptr(d.Minor), Access: perms})
		}
	}
	return devs, rules, nil
}

// notHostDevices are the parts of the host's /dev a privileged container
// does not take: the runtime makes its own (pts, shm, mqueue, the
// console, ptmx, the fd links).
var notHostDevices = []string{"/dev/pts", "/dev/shm", "/dev/mqueue", "/dev/fd", "/dev/console", "/dev/ptmx"}

// devicesUnder reads the device node at host, or every one below it if it
// is a directory, as devices at dest (and below). Following a symlink
// given by the user is fine; symlinks met while walking are skipped, as
// are other files. A path that is neither a device nor a directory with
// devices is an error, unless walking all of /dev (privileged).
func devicesUnder(host, dest string, all bool) ([]specs.LinuxDevice, error) {
	resolved, err := filepath.EvalSymlinks(host)
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(resolved)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		d, ok := deviceOf(resolved, fi, dest)
		if !ok {
			return nil, errors.New("not a device node")
		}
		return []specs.LinuxDevice{d}, nil
	}
	var out []specs.LinuxDevice
	err = filepath.WalkDir(resolved, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if all && slices.Contains(notHostDevices, p) {
			if e.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if e.Type()&fs.ModeDevice == 0 {
			return nil
		}
		fi, err := e.Info()
		if err != nil {
			return nil // gone meanwhile
		}
		if d, ok := deviceOf(p, fi, filepath.Join(dest, strings.TrimPrefix(p, resolved))); ok {
			out = append(out, d)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(out) == 0 && !all {
		return nil, errors.New("a directory with no device nodes")
	}
	return out, nil
}

// deviceOf describes the node at p (already stat'ed) as the OCI device
// dest: its type, numbers, permission bits and owner.
func deviceOf(p string, fi os.FileInfo, dest string) (specs.LinuxDevice, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || fi.Mode()&os.ModeDevice == 0 {
		return specs.LinuxDevice{}, false
	}
	typ := "b"
	if fi.Mode()&os.ModeCharDevice != 0 {
		typ = "c"
	}
	mode := fi.Mode().Perm()
	return specs.LinuxDevice{
		Path: dest, Type: typ,
		Major: int64(unix.Major(uint64(st.Rdev))), Minor: int64(unix.Minor(uint64(st.Rdev))),
		FileMode: &mode, UID: ptr(st.Uid), GID: ptr(st.Gid),
	}, true
}
