package volume

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// CopyUp gives a new volume a copy of what the image has where the volume
// is mounted, as Docker does at container create: an image's
// /var/lib/mysql with its files and owners appears in the volume mounted
// over it, instead of being hidden by an empty directory. dest is the
// mount's path in the container, rootfs the container's root filesystem
// (its merged overlay), dir the volume's data directory.
//
// It copies only into an empty dir, so a volume that holds data is never
// overwritten and the copy happens once; it returns whether it copied.
// What the image has at dest must be a directory (a volume cannot be
// mounted over a file); nothing there is nothing to copy.
//
// The image is untrusted. dest is resolved inside rootfs as the container
// would resolve it (openat2 RESOLVE_IN_ROOT: an absolute symlink or ".."
// stops at rootfs), and the tree below is walked by descriptors, each
// entry opened relative to its directory with O_NOFOLLOW: a symlink is
// copied as a symlink, never followed, so nothing outside rootfs is read
// and nothing outside dir is written. Owners, modes (set-id bits too),
// extended attributes (but SELinux labels and overlayfs's own), times,
// symlinks, hard links (within the copy), device nodes and fifos are kept;
// sockets are left out.
func CopyUp(rootfs, dest, dir string) (bool, error) {
	root, err := unix.Open(rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false, fmt.Errorf("copy-up %s: open rootfs: %w", dest, err)
	}
	defer unix.Close(root)
	src, err := openat2(root, dest, unix.O_PATH, unix.RESOLVE_IN_ROOT|unix.RESOLVE_NO_MAGICLINKS)
	if errors.Is(err, unix.ENOENT) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("copy-up %s: resolve in %s: %w", dest, rootfs, err)
	}
	defer unix.Close(src)
	var st unix.Stat_t
	if err := unix.Fstat(src, &st); err != nil {
		return false, fmt.Errorf("copy-up %s: %w", dest, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return false, invalidf("cannot mount volume over existing file, file exists %s", dest)
	}
	// readable, for its entries and xattrs (an O_PATH descriptor is not)
	srcDir, err := unix.Openat(src, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false, fmt.Errorf("copy-up %s: %w", dest, err)
	}
	defer unix.Close(srcDir)
	dst, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return false, fmt.Errorf("copy-up %s: open volume: %w", dest, err)
	}
	defer unix.Close(dst)
	names, err := readNames(dst)
	if err != nil {
		return false, fmt.Errorf("copy-up %s: read volume: %w", dest, err)
	}
	if len(names) > 0 {
		return false, nil
	}
	c := &copier{dest: dest, dstRoot: dst, links: map[inode]string{}}
	if err := c.dir(srcDir, dst, ""); err != nil {
		return false, err
	}
	if err := c.meta(srcDir, dst, &st, ""); err != nil {
		return false, err
	}
	return true, nil
}

// openat2 opens name below the directory dirfd with the given resolve
// flags, retrying as the kernel asks (EAGAIN when a rename raced the
// lookup).
func openat2(dirfd int, name string, flags int, resolve uint64) (int, error) {
	how := unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC), Resolve: resolve}
	for i := 0; ; i++ {
		fd, err := unix.Openat2(dirfd, name, &how)
		if (err == unix.EAGAIN || err == unix.EINTR) && i < 10 {
			continue
		}
		return fd, err
	}
}

// readNames lists the directory open at fd, through a descriptor of its
// own (with its own read offset).
func readNames(fd int) ([]string, error) {
	d, err := unix.Openat(fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(d), "dir")
	defer f.Close()
	return f.Readdirnames(-1)
}

type inode struct{ dev, ino uint64 }

// copier is one copy-up: where it writes, and the files with several
// names already copied (source inode -> path in the copy).
type copier struct {
	dest    string // for messages
	dstRoot int
	links   map[inode]string
}

func (c *copier) fail(rel string, err error) error {
	return fmt.Errorf("copy-up %s: %s: %w", c.dest, path.Join("/", rel), err)
}

// dir copies the entries of the directory src into dst; rel is its path
// below dest.
func (c *copier) dir(src, dst int, rel string) error {
	names, err := readNames(src)
	if err != nil {
		return c.fail(rel, err)
	}
	for _, name := range names {
		if err := c.entry(src, dst, name, path.Join(rel, name)); err != nil {
			return err
		}
	}
	return nil
}

// entry copies one entry of the directory srcDir into dstDir.
func (c *copier) entry(srcDir, dstDir int, name, rel string) error {
	var st unix.Stat_t
	if err := unix.Fstatat(srcDir, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return c.fail(rel, err)
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		if err := unix.Mkdirat(dstDir, name, 0o700); err != nil {
			return c.fail(rel, err)
		}
		s, err := unix.Openat(srcDir, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return c.fail(rel, err)
		}
		defer unix.Close(s)
		d, err := unix.Openat(dstDir, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return c.fail(rel, err)
		}
		defer unix.Close(d)
		if err := c.dir(s, d, rel); err != nil {
			return err
		}
		// after the children, which change its times
		return c.meta(s, d, &st, rel)
	case unix.S_IFREG:
		return c.file(srcDir, dstDir, name, rel, &st)
	case unix.S_IFLNK:
		buf := make([]byte, unix.PathMax)
		n, err := unix.Readlinkat(srcDir, name, buf)
		if err != nil {
			return c.fail(rel, err)
		}
		if err := unix.Symlinkat(string(buf[:n]), dstDir, name); err != nil {
			return c.fail(rel, err)
		}
		if err := unix.Fchownat(dstDir, name, int(st.Uid), int(st.Gid), unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return c.fail(rel, err)
		}
		return c.times(dstDir, name, &st, rel)
	case unix.S_IFCHR, unix.S_IFBLK, unix.S_IFIFO:
		if err := unix.Mknodat(dstDir, name, st.Mode&unix.S_IFMT|0o600, int(st.Rdev)); err != nil {
			return c.fail(rel, err)
		}
		if err := unix.Fchownat(dstDir, name, int(st.Uid), int(st.Gid), unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return c.fail(rel, err)
		}
		if err := unix.Fchmodat(dstDir, name, st.Mode&0o7777, 0); err != nil {
			return c.fail(rel, err)
		}
		// a node cannot be opened for its xattrs without being a device
		// opened: l*xattr on its name, through the directories'
		// descriptors
		s, d := fdPath(srcDir)+"/"+name, fdPath(dstDir)+"/"+name
		err := copyXattrs(
			func(b []byte) (int, error) { return unix.Llistxattr(s, b) },
			func(k string, b []byte) (int, error) { return unix.Lgetxattr(s, k, b) },
			func(k string, v []byte) error { return unix.Lsetxattr(d, k, v, 0) })
		if err != nil {
			return c.fail(rel, err)
		}
		return c.times(dstDir, name, &st, rel)
	}
	return nil // a socket: nothing to copy
}

// file copies a regular file: its content (copy_file_range(2) through
// io.Copy), then its metadata; a second name of a file already copied
// becomes a hard link to the copy.
func (c *copier) file(srcDir, dstDir int, name, rel string, st *unix.Stat_t) error {
	if st.Nlink > 1 {
		key := inode{uint64(st.Dev), st.Ino}
		if first, ok := c.links[key]; ok {
			return c.link(first, dstDir, name, rel)
		}
		c.links[key] = rel
	}
	s, err := unix.Openat(srcDir, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return c.fail(rel, err)
	}
	sf := os.NewFile(uintptr(s), name)
	defer sf.Close()
	d, err := unix.Openat(dstDir, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return c.fail(rel, err)
	}
	df := os.NewFile(uintptr(d), name)
	defer df.Close()
	if _, err := io.Copy(df, sf); err != nil {
		return c.fail(rel, err)
	}
	return c.meta(s, d, st, rel)
}

// link makes name in dstDir a hard link to first, the copy made of the
// same source inode; first's directory is opened beneath the volume with
// no symlink allowed on the way.
func (c *copier) link(first string, dstDir int, name, rel string) error {
	dir, base := path.Split(first)
	pfd := c.dstRoot
	if dir = strings.TrimSuffix(dir, "/"); dir != "" {
		fd, err := openat2(c.dstRoot, dir, unix.O_PATH|unix.O_DIRECTORY, unix.RESOLVE_BENEATH|unix.RESOLVE_NO_SYMLINKS)
		if err != nil {
			return c.fail(rel, err)
		}
		defer unix.Close(fd)
		pfd = fd
	}
	if err := unix.Linkat(pfd, base, dstDir, name, 0); err != nil {
		return c.fail(rel, fmt.Errorf("hard link to %s: %w", first, err))
	}
	return nil
}

// meta gives the copy open at dst the owner, mode, extended attributes and
// times of the source open at src: chown(2) first, since it clears the
// set-id bits and file capabilities (security.capability) set before it.
func (c *copier) meta(src, dst int, st *unix.Stat_t, rel string) error {
	if err := unix.Fchown(dst, int(st.Uid), int(st.Gid)); err != nil {
		return c.fail(rel, err)
	}
	if err := unix.Fchmod(dst, st.Mode&0o7777); err != nil {
		return c.fail(rel, err)
	}
	err := copyXattrs(
		func(b []byte) (int, error) { return unix.Flistxattr(src, b) },
		func(k string, b []byte) (int, error) { return unix.Fgetxattr(src, k, b) },
		func(k string, v []byte) error { return unix.Fsetxattr(dst, k, v, 0) })
	if err != nil {
		return c.fail(rel, err)
	}
	// utimensat(2) on /proc/self/fd/N reaches the file itself
	return c.times(unix.AT_FDCWD, fdPath(dst), st, rel)
}

// times sets the access and modification times of name in dirfd (not
// following a symlink) to those of st.
func (c *copier) times(dirfd int, name string, st *unix.Stat_t, rel string) error {
	ts := []unix.Timespec{st.Atim, st.Mtim}
	flags := unix.AT_SYMLINK_NOFOLLOW
	if dirfd == unix.AT_FDCWD {
		flags = 0
	}
	if err := unix.UtimesNanoAt(dirfd, name, ts, flags); err != nil {
		return c.fail(rel, fmt.Errorf("set times: %w", err))
	}
	return nil
}

func fdPath(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

// copyXattrs copies extended attributes with the given list, get and set
// calls, leaving out SELinux labels (they belong to the host's policy)
// and overlayfs's own (they mean something only inside an overlay's
// layers). A filesystem without xattrs (ENOTSUP) is not an error.
func copyXattrs(list func([]byte) (int, error), get func(string, []byte) (int, error), set func(string, []byte) error) error {
	size, err := list(nil)
	if err == unix.ENOTSUP || size == 0 {
		return nil
	}
	if err != nil {
		return fmt.Errorf("list xattrs: %w", err)
	}
	buf := make([]byte, size)
	if size, err = list(buf); err != nil {
		return fmt.Errorf("list xattrs: %w", err)
	}
	for _, name := range strings.Split(strings.TrimRight(string(buf[:size]), "\x00"), "\x00") {
		if name == "" || name == "security.selinux" || strings.HasPrefix(name, "trusted.overlay.") {
			continue
		}
		n, err := get(name, nil)
		if err != nil {
			return fmt.Errorf("get xattr %s: %w", name, err)
		}
		val := make([]byte, n)
		if n, err = get(name, val); err != nil {
			return fmt.Errorf("get xattr %s: %w", name, err)
		}
		if err := set(name, val[:n]); err != nil && err != unix.ENOTSUP {
			return fmt.Errorf("set xattr %s: %w", name, err)
		}
	}
	return nil
}
