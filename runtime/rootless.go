package runtime

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"minidock/cgroup"
	"minidock/kernel"
	"minidock/ns"
)

// Rootless: the runtime run by a user who is not root (docs/runtime.md,
// "Rootless"). Such a user can still make every namespace, as long as a
// user namespace comes first: in it the user is root, with every
// capability over the namespaces that user namespace owns, and none over
// the host. What changes:
//
//   - the config must have a user namespace, and map only ids the user may
//     map: its own uid and gid, written by the runtime itself; or, with
//     newuidmap and newgidmap (package uidmap, setuid root), the ranges
//     /etc/subuid and /etc/subgid give the user;
//   - with its own ids only, setgroups(2) is denied in the namespace (the
//     kernel requires it before an unprivileged gid_map), so the process
//     keeps the user's groups;
//   - device nodes cannot be made: the host's are bound (rootfs.CreateDevices);
//   - cgroups: only in a cgroup v2 subtree delegated to the user (its
//     directory writable by it); without one there is no cgroup, and a
//     config that asks for limits is refused.

// envAwaitIDMaps tells the init it was born in a user namespace with no
// maps yet (they need newuidmap): awaitIDMaps.
const envAwaitIDMaps = "_MINIDOCK_AWAIT_IDMAPS"

// awaitIDMaps is the first thing an init born unmapped does: it waits for
// the parent's msgIDMaps, then executes itself again. Its execve happened
// while its uid was not mapped in the namespace, which cost it every
// capability; now that the caller's uid is the namespace's 0, a new
// execve gives them back (and the runtime's steps need them).
func awaitIDMaps() error {
	m, _, err := recvMsg(fdSync)
	if err != nil {
		return err
	}
	if m.Type != msgIDMaps {
		return fmt.Errorf("sync: expected %q, got %q", msgIDMaps, m.Type)
	}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, envAwaitIDMaps+"=") {
			env = append(env, kv)
		}
	}
	return unix.Exec("/proc/self/exe", os.Args, env)
}

// rootless tells whether the runtime runs without root.
func rootless() bool { return os.Geteuid() != 0 }

// defaultRootlessRoot is the state directory of a rootless runtime, as
// runc's: $XDG_RUNTIME_DIR/minidock-runtime, else a directory of the
// user's own under the temporary directory.
func defaultRootlessRoot() string {
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "minidock-runtime")
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("minidock-runtime-%d", os.Geteuid()))
}

// checkRootless refuses, before anything is made, a config that an
// unprivileged caller cannot run, saying why.
func checkRootless(spec *specs.Spec) error {
	if !ns.New(spec.Linux.Namespaces, specs.UserNamespace) {
		return errors.New("rootless: the config needs a new user namespace (see `minidock runtime spec --rootless`)")
	}
	if len(spec.Linux.UIDMappings) == 0 || len(spec.Linux.GIDMappings) == 0 {
		return errors.New("rootless: the config maps no uid or gid in its user namespace")
	}
	if needIDMapHelpers(spec) {
		for _, helper := range []string{"newuidmap", "newgidmap"} {
			if _, err := exec.LookPath(helper); err != nil {
				return fmt.Errorf("rootless: mapping more than the caller's own uid and gid needs %s (package uidmap): %w", helper, err)
			}
		}
	}
	return nil
}

// needIDMapHelpers tells whether the maps go beyond what an unprivileged
// process may write itself: exactly one id, its own, in each map.
func needIDMapHelpers(spec *specs.Spec) bool {
	own := func(m []specs.LinuxIDMapping, id int) bool {
		return len(m) == 1 && m[0].Size == 1 && int(m[0].HostID) == id
	}
	return !own(spec.Linux.UIDMappings, os.Geteuid()) || !own(spec.Linux.GIDMappings, os.Getegid())
}

// writeIDMaps has newuidmap and newgidmap write the maps of the user
// namespace of pid. They are setuid root and check each range against
// /etc/subuid and /etc/subgid (the caller's own id is always allowed);
// they leave setgroups(2) allowed.
func writeIDMaps(k kernel.Calls, pid int, spec *specs.Spec) error {
	for _, m := range []struct {
		helper string
		maps   []specs.LinuxIDMapping
	}{{"newuidmap", spec.Linux.UIDMappings}, {"newgidmap", spec.Linux.GIDMappings}} {
		args := []string{strconv.Itoa(pid)}
		for _, r := range m.maps {
			args = append(args, strconv.FormatUint(uint64(r.ContainerID), 10), strconv.FormatUint(uint64(r.HostID), 10), strconv.FormatUint(uint64(r.Size), 10))
		}
		if err := kernel.PauseBefore(k, m.helper, strings.Join(args, " ")); err != nil {
			return err
		}
		out, err := exec.Command(m.helper, args...).CombinedOutput()
		if err != nil {
			err = fmt.Errorf("%w: %s", err, strings.TrimSpace(string(out)))
		}
		if err := k.Note(m.helper, strings.Join(args, " "), err); err != nil {
			return err
		}
	}
	return nil
}

// rootlessCgroup is the cgroup path of a rootless container: only on a
// cgroup v2 host, under a directory the caller may write (a subtree
// delegated to it, e.g. by systemd's Delegate=yes): the config's
// cgroupsPath, else <the caller's own cgroup>/<id>. Without one it is "",
// and a config with resource limits is refused.
func rootlessCgroup(spec *specs.Spec, id string) (string, error) {
	if p := delegatedPath(spec, id); p != "" {
		return p, nil
	}
	if r := spec.Linux.Resources; r != nil && hasLimits(r) {
		return "", fmt.Errorf("rootless: linux.resources needs a cgroup, and no cgroup v2 subtree is delegated to uid %d (the parent of the container's cgroup is not writable, or the host is not cgroup v2 only)", os.Geteuid())
	}
	return "", nil
}

// delegatedPath is the cgroup path of the container if the caller may
// write the directory it would be made in; else "".
func delegatedPath(spec *specs.Spec, id string) string {
	if m, err := cgroup.DetectMode(); err != nil || m != cgroup.Unified {
		return "" // the v1 hierarchies are root's
	}
	p := spec.Linux.CgroupsPath
	if p == "" {
		p = filepath.Join(ownCgroup(), id)
	}
	p = filepath.Clean("/" + p)
	dir := filepath.Join(cgroup.Root, filepath.Dir(p))
	if unix.Access(dir, unix.W_OK) != nil || unix.Access(filepath.Join(dir, "cgroup.procs"), unix.W_OK) != nil {
		return ""
	}
	return p
}

// ownCgroup is the caller's cgroup v2 path (/proc/self/cgroup, "0::").
func ownCgroup() string {
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return "/"
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if p, ok := strings.CutPrefix(s.Text(), "0::"); ok {
			return p
		}
	}
	return "/"
}

// hasLimits tells whether r asks for anything but device rules (which
// a rootless container cannot use: it makes no device nodes).
func hasLimits(r *specs.LinuxResources) bool {
	return r.Memory != nil || r.CPU != nil || r.Pids != nil || r.BlockIO != nil || len(r.HugepageLimits) > 0 ||
		r.Network != nil || len(r.Rdma) > 0 || len(r.Unified) > 0
}

// rootlessIDs are the maps `runtime spec --rootless` writes for the
// caller: its own uid and gid as 0, and, when newuidmap and newgidmap are
// installed and /etc/subuid and /etc/subgid give it a range, that range
// from 1 on, so that the container has more than one user.
func rootlessIDs() (uids, gids []specs.LinuxIDMapping) {
	uid, gid := os.Geteuid(), os.Getegid()
	uids = []specs.LinuxIDMapping{{ContainerID: 0, HostID: uint32(uid), Size: 1}}
	gids = []specs.LinuxIDMapping{{ContainerID: 0, HostID: uint32(gid), Size: 1}}
	if _, err := exec.LookPath("newuidmap"); err != nil {
		return uids, gids
	}
	if _, err := exec.LookPath("newgidmap"); err != nil {
		return uids, gids
	}
	name := ""
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		name = u.Username
	}
	su, sg := ns.SubordinateIDs("/etc/subuid", name, uid), ns.SubordinateIDs("/etc/subgid", name, uid)
	if len(su) > 0 && len(sg) > 0 {
		uids = append(uids, specs.LinuxIDMapping{ContainerID: 1, HostID: su[0].HostID, Size: su[0].Size})
		gids = append(gids, specs.LinuxIDMapping{ContainerID: 1, HostID: sg[0].HostID, Size: sg[0].Size})
	}
	return uids, gids
}
