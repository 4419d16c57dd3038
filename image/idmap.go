package image

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"

	"minidock/overlay"
)

// A container under the daemon's --userns-remap runs as an unprivileged
// range of host ids (container uid 0 is host uid 100000, say), but the
// image's layers on disk belong to 0. The layers are not copied: each
// one is seen through an idmapped mount (mount_setattr(2)
// MOUNT_ATTR_IDMAP, Linux 5.12; overlayfs accepts idmapped layers from
// 5.19), which shows on-disk uid 0 as 100000, and the overlay is made of
// those. The upper dir stays a plain directory: what the container
// writes belongs to its host ids there (the daemon shifts them back when
// it commits, exports or copies out; daemon/userns.go). overlayfs itself
// cannot be idmapped (mount_setattr answers EINVAL), or the upper could
// stay in the container's ids too. docs/security.md.

// idmappedDir is where a container's idmapped layers are mounted:
// <root>/containers/<id>/idmapped/<n>, n in lowerdir= order.
func idmappedDir(rfs *Rootfs) string { return filepath.Join(filepath.Dir(rfs.Upper), "idmapped") }

// MountIDMapped is Mount for a container under --userns-remap: each layer
// (the container's init layer included) is bound idmapped through the
// user namespace userns (open /proc/<pid>/ns/user, whose maps are the
// container's), the overlay is made of those, and the upper dir's root
// is given to the container's root (rootUID, rootGID on the host), whose
// "/" it is. Mounting a mounted rootfs is not an error.
func (s *Store) MountIDMapped(containerID string, userns *os.File, rootUID, rootGID int) (string, error) {
	rfs, err := s.Rootfs(containerID)
	if err != nil {
		return "", err
	}
	if m, err := overlay.IsMounted(rfs.Merged); err != nil || m {
		return rfs.Merged, err
	}
	dir := idmappedDir(rfs)
	var lower []string
	for i, l := range rfs.Lower {
		target := filepath.Join(dir, strconv.Itoa(i))
		if err := idmappedBind(l, target, userns); err != nil {
			unmountIDMapped(rfs)
			return "", fmt.Errorf("mount rootfs of %s: layer %s: %w", containerID, l, err)
		}
		lower = append(lower, target)
	}
	var st unix.Stat_t
	if err := unix.Lstat(rfs.Upper, &st); err == nil && st.Uid == 0 && st.Gid == 0 {
		if err := os.Lchown(rfs.Upper, rootUID, rootGID); err != nil {
			unmountIDMapped(rfs)
			return "", fmt.Errorf("mount rootfs of %s: %w", containerID, err)
		}
	}
	if err := overlay.MountOverlay(overlay.Mount{Lower: lower, Upper: rfs.Upper, Work: rfs.Work, Target: rfs.Merged}); err != nil {
		unmountIDMapped(rfs)
		return "", fmt.Errorf("mount rootfs of %s: %w", containerID, err)
	}
	return rfs.Merged, nil
}

// idmappedBind mounts src at target as an idmapped bind: open_tree(2)
// clones src's mount detached, mount_setattr(2) gives the clone the id
// mapping of userns, move_mount(2) attaches it at target.
func idmappedBind(src, target string, userns *os.File) error {
	if err := os.MkdirAll(target, 0o700); err != nil {
		return err
	}
	fd, err := unix.OpenTree(unix.AT_FDCWD, src, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return fmt.Errorf("open_tree %s: %w", src, err)
	}
	defer unix.Close(fd)
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP, Userns_fd: uint64(userns.Fd())}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, &attr); err != nil {
		return fmt.Errorf("mount_setattr MOUNT_ATTR_IDMAP on %s: %w (the layers' filesystem, or this kernel, does not support idmapped mounts)", src, err)
	}
	if err := unix.MoveMount(fd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("move_mount %s: %w", target, err)
	}
	return nil
}

// unmountIDMapped unmounts and removes a container's idmapped layers, if
// it has any; the overlay over them must be unmounted first.
func unmountIDMapped(rfs *Rootfs) error {
	dir := idmappedDir(rfs)
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	var errs []error
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", p, err))
			continue
		}
		os.Remove(p)
	}
	if len(errs) == 0 {
		os.Remove(dir)
	}
	return errors.Join(errs...)
}
