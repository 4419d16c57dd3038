package daemon

import (
	"archive/tar"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"minidock/api"
	"minidock/archive"
	"minidock/internal/errdefs"
	"minidock/ns"
)

// --userns-remap (docs/security.md): every container the daemon makes
// (but those run with --userns=host) gets a user namespace whose ids 0,
// 1, ... are the subordinate ids of one host user (/etc/subuid and
// /etc/subgid): root in the container is, on the host, an unprivileged
// uid that owns nothing. "default" is Docker's: a user "dockremap", made
// with a 65536-id range if missing. The image layers are not copied: the
// container's root filesystem is an overlay of idmapped mounts of them
// (image/idmap.go).

// IDMapping is the id mapping of a container made under --userns-remap,
// saved in its record: the maps it was made with are the ones it keeps.
type IDMapping struct {
	UIDs []specs.LinuxIDMapping
	GIDs []specs.LinuxIDMapping
}

// rootUID and rootGID are the host ids of the container's root.
func (m *IDMapping) rootUID() int { return int(hostID(m.UIDs, 0)) }
func (m *IDMapping) rootGID() int { return int(hostID(m.GIDs, 0)) }

// hostID maps a container id to the host's (unmapped ids stay as they
// are); containerID is the reverse.
func hostID(maps []specs.LinuxIDMapping, id uint32) uint32 {
	for _, r := range maps {
		if id >= r.ContainerID && id-r.ContainerID < r.Size {
			return r.HostID + (id - r.ContainerID)
		}
	}
	return id
}

func containerID(maps []specs.LinuxIDMapping, id uint32) uint32 {
	for _, r := range maps {
		if id >= r.HostID && id-r.HostID < r.Size {
			return r.ContainerID + (id - r.HostID)
		}
	}
	return id
}

// remapping is the daemon's --userns-remap: the maps new containers get.
type remapping struct {
	user string
	IDMapping
}

// setupRemap reads --userns-remap: "default", "USER" or "USER:GROUP"
// (names or ids); the ranges of the user in /etc/subuid and of the group
// (the user's name by default, as in Docker) in /etc/subgid, laid end to
// end from container id 0.
func setupRemap(spec string) (*remapping, error) {
	if spec == "" {
		return nil, nil
	}
	name, group, _ := strings.Cut(spec, ":")
	if spec == "default" {
		if err := ensureDockremap(); err != nil {
			return nil, fmt.Errorf("--userns-remap default: %w", err)
		}
		name, group = "dockremap", "dockremap"
	}
	u, err := lookupUser(name)
	if err != nil {
		return nil, fmt.Errorf("--userns-remap %s: %w", spec, err)
	}
	if group == "" {
		group = u.Username
	}
	gid := -1
	if g, err := lookupRemapGroup(group); err == nil {
		gid, _ = strconv.Atoi(g.Gid)
		group = g.Name
	}
	uid, _ := strconv.Atoi(u.Uid)
	r := &remapping{user: u.Username}
	r.UIDs = laidEndToEnd(ns.SubordinateIDs("/etc/subuid", u.Username, uid))
	r.GIDs = laidEndToEnd(ns.SubordinateIDs("/etc/subgid", group, gid))
	if len(r.UIDs) == 0 {
		return nil, fmt.Errorf("--userns-remap %s: /etc/subuid gives %s no range", spec, u.Username)
	}
	if len(r.GIDs) == 0 {
		return nil, fmt.Errorf("--userns-remap %s: /etc/subgid gives %s no range", spec, group)
	}
	return r, nil
}

func lookupUser(name string) (*user.User, error) {
	if _, err := strconv.Atoi(name); err == nil {
		return user.LookupId(name)
	}
	return user.Lookup(name)
}

func lookupRemapGroup(name string) (*user.Group, error) {
	if _, err := strconv.Atoi(name); err == nil {
		return user.LookupGroupId(name)
	}
	return user.LookupGroup(name)
}

// laidEndToEnd numbers the container side of ranges from 0.
func laidEndToEnd(ranges []specs.LinuxIDMapping) []specs.LinuxIDMapping {
	next := uint32(0)
	for i := range ranges {
		ranges[i].ContainerID = next
		next += ranges[i].Size
	}
	return ranges
}

// ensureDockremap makes Docker's default remap user when it is missing,
// as dockerd does: a system user and group "dockremap", and a range of
// 65536 ids in /etc/subuid and /etc/subgid after every range there.
func ensureDockremap() error {
	if _, err := user.Lookup("dockremap"); err != nil {
		if out, err := exec.Command("useradd", "--system", "--no-create-home", "--user-group", "--shell", "/bin/false", "dockremap").CombinedOutput(); err != nil {
			return fmt.Errorf("useradd dockremap: %v: %s", err, strings.TrimSpace(string(out)))
		}
	}
	u, err := user.Lookup("dockremap")
	if err != nil {
		return err
	}
	uid, _ := strconv.Atoi(u.Uid)
	if len(ns.SubordinateIDs("/etc/subuid", "dockremap", uid)) > 0 && len(ns.SubordinateIDs("/etc/subgid", "dockremap", uid)) > 0 {
		return nil
	}
	first := uint64(100000)
	for _, f := range []string{"/etc/subuid", "/etc/subgid"} {
		data, _ := os.ReadFile(f)
		for _, line := range strings.Split(string(data), "\n") {
			if p := strings.Split(line, ":"); len(p) == 3 {
				s, e1 := strconv.ParseUint(p[1], 10, 32)
				n, e2 := strconv.ParseUint(p[2], 10, 32)
				if e1 == nil && e2 == nil && s+n > first {
					first = s + n
				}
			}
		}
	}
	rng := fmt.Sprintf("%d-%d", first, first+65535)
	if out, err := exec.Command("usermod", "--add-subuids", rng, "--add-subgids", rng, "dockremap").CombinedOutput(); err != nil {
		return fmt.Errorf("usermod --add-subuids %s dockremap: %v: %s", rng, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// makeReachable lets an unprivileged uid, the containers' root under
// --userns-remap, go through the data root and its containers directory
// (mode 0711: search, no listing), where each container's root
// filesystem (the image store's containers/<id>/merged) and the files the
// daemon binds into it (hosts, hostname, resolv.conf) are: its init binds
// them, from inside its user namespace, where the directories' owner,
// host root, is not mapped and its capabilities do not override their
// modes. The image store makes that directory 0700; made here first, or
// made so by an older daemon, it is set to 0711. Then checkReachable.
func makeReachable(dataRoot string) error {
	ctrs := filepath.Join(dataRoot, "containers")
	if err := os.MkdirAll(ctrs, 0o711); err != nil {
		return fmt.Errorf("--userns-remap: %w", err)
	}
	for _, d := range []string{dataRoot, ctrs} {
		if err := os.Chmod(d, 0o711); err != nil {
			return fmt.Errorf("--userns-remap: %w", err)
		}
	}
	return checkReachable(dataRoot)
}

// checkReachable makes sure an unprivileged uid can go through every
// directory above the data root (search permission for others): the
// containers' root, under --userns-remap, reaches its root filesystem and
// the files bound into it there.
func checkReachable(dataRoot string) error {
	abs, err := filepath.Abs(dataRoot)
	if err != nil {
		return err
	}
	for d := filepath.Dir(abs); ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("--userns-remap: %w", err)
		}
		if fi.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("--userns-remap: the containers' root cannot reach the data root %s: %s is mode %#o (others need search permission, o+x)", dataRoot, d, fi.Mode().Perm())
		}
		if d == "/" {
			return nil
		}
	}
}

// checkRemap refuses, at create, what a remapped container cannot have
// (Docker's rules): the host's namespaces and --privileged need
// --userns=host, which opts the container out of the remapping.
func (d *Daemon) checkRemap(hc *api.HostConfig) error {
	if d.remap == nil || hc.UsernsMode == "host" {
		return nil
	}
	switch {
	case hc.Privileged:
		return errdefs.Invalidf("Privileged: privileged mode is incompatible with user namespaces (--userns-remap): run the container with --userns=host")
	case hc.NetworkMode == "host":
		return errdefs.Invalidf("NetworkMode host: cannot share the host's network namespace when user namespaces are enabled (--userns-remap): add --userns=host")
	case hc.PidMode == "host":
		return errdefs.Invalidf("PidMode host: cannot share the host's pid namespace when user namespaces are enabled (--userns-remap): add --userns=host")
	case hc.IpcMode == "host":
		return errdefs.Invalidf("IpcMode host: cannot share the host's ipc namespace when user namespaces are enabled (--userns-remap): add --userns=host")
	case hc.UTSMode == "host":
		return errdefs.Invalidf("UTSMode host: cannot share the host's uts namespace when user namespaces are enabled (--userns-remap): add --userns=host")
	}
	return nil
}

// remappingOf is the id mapping a container made now with hc gets: the
// daemon's --userns-remap, unless it runs with --userns=host.
func (d *Daemon) remappingOf(hc *api.HostConfig) *IDMapping {
	if d.remap == nil || hc.UsernsMode == "host" {
		return nil
	}
	m := d.remap.IDMapping
	return &m
}

// remapUsers gives a container made under --userns-remap its user
// namespace: the maps of its record. Its root filesystem was mounted
// idmapped with the same maps (mountRootfs).
func (d *Daemon) remapUsers(c *Container, s *specs.Spec) error {
	m := c.UserNamespace
	if m == nil {
		return nil
	}
	s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
	s.Linux.UIDMappings, s.Linux.GIDMappings = m.UIDs, m.GIDs
	return nil
}

// mountRootfs mounts c's root filesystem: idmapped for a container under
// --userns-remap, through a user namespace with its maps, made for the
// mount and closed after it (the mounts keep the mapping).
func (d *Daemon) mountRootfs(c *Container) (string, error) {
	m := c.UserNamespace
	if m == nil {
		return d.images.MountTraced(c.ID, d.tracer(c))
	}
	userns, err := ns.NewUserNamespace(m.UIDs, m.GIDs)
	if err != nil {
		return "", fmt.Errorf("mount the rootfs of %s: %w", c.ID, err)
	}
	defer userns.Close()
	return d.images.MountIDMapped(c.ID, userns, m.rootUID(), m.rootGID())
}

// shiftTar copies a tar stream from r, mapping each entry's owner with
// uid and gid: a remapped container's files are in host ids on disk and
// in its merged view, and in the container's ids in what the daemon
// hands out (commit, export, cp out), and the other way for cp in.
func shiftTar(r io.Reader, uid, gid func(uint32) uint32) io.Reader {
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(archive.Retar(pw, r, func(hdr *tar.Header) error {
			hdr.Uid, hdr.Gid = int(uid(uint32(hdr.Uid))), int(gid(uint32(hdr.Gid)))
			hdr.Uname, hdr.Gname = "", ""
			return nil
		}))
	}()
	return pr
}

// toContainerIDs is shiftTar from host ids to c's (nil: r unchanged).
func (m *IDMapping) toContainerIDs(r io.Reader) io.Reader {
	if m == nil {
		return r
	}
	return shiftTar(r, func(id uint32) uint32 { return containerID(m.UIDs, id) }, func(id uint32) uint32 { return containerID(m.GIDs, id) })
}

// toHostIDs is shiftTar from c's ids to the host's.
func (m *IDMapping) toHostIDs(r io.Reader) io.Reader {
	if m == nil {
		return r
	}
	return shiftTar(r, func(id uint32) uint32 { return hostID(m.UIDs, id) }, func(id uint32) uint32 { return hostID(m.GIDs, id) })
}

// commitFilter is the image.CommitOptions.Filter of c's commits.
func (m *IDMapping) commitFilter() func(io.Reader) io.Reader {
	if m == nil {
		return nil
	}
	return m.toContainerIDs
}

// writeInContainerIDs runs write, which writes a tar of c's files in host
// ids, so that w receives them in the container's ids.
func (m *IDMapping) writeInContainerIDs(w io.Writer, write func(io.Writer) error) error {
	if m == nil {
		return write(w)
	}
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := io.Copy(w, m.toContainerIDs(pr))
		pr.CloseWithError(err)
		done <- err
	}()
	err := write(pw)
	pw.CloseWithError(err)
	if cerr := <-done; err == nil {
		err = cerr
	}
	return err
}
