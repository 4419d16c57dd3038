package archive

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// WriteDiff writes the upper directory of an overlay mount to w as a layer
// tarball: a 0:0 character device (overlayfs's whiteout) becomes an empty
// ".wh.NAME" entry and a directory with trusted.overlay.opaque=y gets a
// ".wh..wh..opq" entry, as the OCI layer format says. Entries are sorted,
// so the same upper dir always gives the same bytes.
func WriteDiff(w io.Writer, upper string) error {
	return writeTar(w, upper, true)
}

// WriteTree writes the tree at dir to w as a plain tarball with names
// relative to dir (used to export a container's merged filesystem).
func WriteTree(w io.Writer, dir string) error {
	return writeTar(w, dir, false)
}

// WriteEntry writes the entry name of dir, and everything below it when
// it is a directory, to w as a tarball, each name in it passed through
// rename: docker cp names the entries after the path asked for, which
// may differ from the name on disk.
func WriteEntry(w io.Writer, dir, name string, rename func(string) string) error {
	t, err := newTarWriter(w, dir, false)
	if err != nil {
		return err
	}
	defer unix.Close(t.rootFd)
	t.rename = rename
	if err := t.entry(name); err != nil {
		return err
	}
	if err := t.tw.Close(); err != nil {
		return fmt.Errorf("write tar of %q: %w", filepath.Join(dir, name), err)
	}
	return nil
}

type inode struct{ dev, ino uint64 }

// tarWriter walks a tree by descriptors: every entry is opened relative
// to the root's descriptor with openat2(RESOLVE_BENEATH |
// RESOLVE_NO_SYMLINKS), and read through that descriptor. A directory
// that a running container swaps for a symlink meanwhile makes the walk
// fail; it never leads the walk out of the tree.
type tarWriter struct {
	tw     *tar.Writer
	root   string // for messages
	rootFd int    // O_PATH descriptor of the root
	diff   bool
	// rename maps names under root to names in the tar (nil: the same)
	rename func(string) string
	links  map[inode]string
	buf    []byte
}

func newTarWriter(w io.Writer, root string, diff bool) (*tarWriter, error) {
	fd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("write tar: open %q: %w", root, err)
	}
	return &tarWriter{tw: tar.NewWriter(w), root: root, rootFd: fd, diff: diff, links: map[inode]string{}, buf: make([]byte, 1<<20)}, nil
}

func writeTar(w io.Writer, root string, diff bool) error {
	t, err := newTarWriter(w, root, diff)
	if err != nil {
		return err
	}
	defer unix.Close(t.rootFd)
	if err := t.walk(""); err != nil {
		return err
	}
	if err := t.tw.Close(); err != nil {
		return fmt.Errorf("write tar of %q: %w", root, err)
	}
	return nil
}

// open opens name (relative to the root; "" is the root) with flags,
// refusing a symlink anywhere on the way. With O_PATH|O_NOFOLLOW a
// symlink as the last element is opened itself.
func (t *tarWriter) open(name string, flags int) (int, error) {
	if name == "" {
		name = "."
	}
	how := unix.OpenHow{Flags: uint64(flags | unix.O_NOFOLLOW | unix.O_CLOEXEC), Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS}
	for i := 0; ; i++ {
		fd, err := unix.Openat2(t.rootFd, name, &how)
		if (err == unix.EAGAIN || err == unix.EINTR) && i < 10 {
			continue
		}
		if err == unix.ELOOP || err == unix.ENOTDIR {
			// what was listed as a directory is a symlink (or a file) now
			return -1, fmt.Errorf("write tar: %q changed while being archived: %w", filepath.Join(t.root, name), err)
		}
		if err != nil {
			return -1, fmt.Errorf("write tar: open %q: %w", filepath.Join(t.root, name), err)
		}
		return fd, nil
	}
}

func (t *tarWriter) walk(rel string) error {
	fd, err := t.open(rel, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return err
	}
	d := os.NewFile(uintptr(fd), filepath.Join(t.root, rel))
	entries, err := d.ReadDir(-1)
	d.Close()
	if err != nil {
		return fmt.Errorf("write tar: read directory %q: %w", filepath.Join(t.root, rel), err)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	for _, e := range entries {
		name := path.Join(rel, e.Name())
		if err := t.entry(name); err != nil {
			return err
		}
	}
	return nil
}

// statTime converts a stat timestamp.
func statTime(ts unix.Timespec) time.Time { return time.Unix(ts.Sec, ts.Nsec) }

func (t *tarWriter) entry(name string) error {
	fd, err := t.open(name, unix.O_PATH)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("write tar: stat %q: %w", name, err)
	}
	tarName := name
	if t.rename != nil {
		tarName = t.rename(name)
	}
	hdr := &tar.Header{
		Name:    tarName,
		Mode:    int64(st.Mode & 0o7777),
		Uid:     int(st.Uid),
		Gid:     int(st.Gid),
		ModTime: statTime(st.Mtim),
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		key := inode{uint64(st.Dev), st.Ino}
		if first, ok := t.links[key]; ok && st.Nlink > 1 {
			hdr.Typeflag, hdr.Linkname = tar.TypeLink, first
		} else {
			if st.Nlink > 1 {
				t.links[key] = tarName
			}
			hdr.Typeflag, hdr.Size = tar.TypeReg, st.Size
		}
	case unix.S_IFDIR:
		hdr.Typeflag, hdr.Name = tar.TypeDir, tarName+"/"
	case unix.S_IFLNK:
		// readlinkat with an empty path reads the link fd names
		buf := make([]byte, unix.PathMax)
		n, err := unix.Readlinkat(fd, "", buf)
		if err != nil {
			return fmt.Errorf("write tar: readlink %q: %w", name, err)
		}
		hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, string(buf[:n])
	case unix.S_IFCHR, unix.S_IFBLK:
		if t.diff && st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0 {
			dir, base := path.Split(name)
			wh := &tar.Header{Name: dir + WhiteoutPrefix + base, Typeflag: tar.TypeReg, ModTime: hdr.ModTime}
			if err := t.tw.WriteHeader(wh); err != nil {
				return fmt.Errorf("write tar: whiteout for %q: %w", name, err)
			}
			return nil
		}
		hdr.Typeflag = tar.TypeChar
		if st.Mode&unix.S_IFMT == unix.S_IFBLK {
			hdr.Typeflag = tar.TypeBlock
		}
		hdr.Devmajor, hdr.Devminor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
	case unix.S_IFIFO:
		hdr.Typeflag = tar.TypeFifo
	default:
		return nil // sockets cannot be archived; tar skips them too
	}
	if hdr.Typeflag != tar.TypeSymlink {
		// through the descriptor (getxattr follows /proc/self/fd/N to
		// the file itself); a symlink carries no xattrs worth keeping
		if err := xattrsToTar(FdPath(fd), hdr); err != nil {
			return err
		}
	}
	if err := t.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("write tar: header of %q: %w", name, err)
	}
	switch hdr.Typeflag {
	case tar.TypeReg:
		return t.content(name, &st, hdr.Size)
	case tar.TypeDir:
		if t.diff && isOpaqueFd(fd) {
			op := &tar.Header{Name: name + "/" + OpaqueMarker, Typeflag: tar.TypeReg, ModTime: hdr.ModTime}
			if err := t.tw.WriteHeader(op); err != nil {
				return fmt.Errorf("write tar: opaque marker of %q: %w", name, err)
			}
		}
		return t.walk(name)
	}
	return nil
}

// content copies the file name, which must still be the one st describes.
func (t *tarWriter) content(name string, st *unix.Stat_t, size int64) error {
	fd, err := t.open(name, unix.O_RDONLY)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	var now unix.Stat_t
	if err := unix.Fstat(fd, &now); err != nil || now.Dev != st.Dev || now.Ino != st.Ino {
		return fmt.Errorf("write tar: %q was replaced while being archived", name)
	}
	n, err := io.CopyBuffer(struct{ io.Writer }{t.tw}, io.LimitReader(f, size), t.buf)
	if err != nil {
		return fmt.Errorf("write tar: content of %q: %w", name, err)
	}
	if n != size {
		return fmt.Errorf("write tar: %q shrank from %d to %d bytes while being archived", name, size, n)
	}
	return nil
}

// FdPath names the file open at fd: /proc/self/fd/N.
func FdPath(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

// IsOpaque reports whether directory p carries overlayfs's opaque marker
// (what Unpack makes of a ".wh..wh..opq" entry).
func IsOpaque(p string) bool {
	var b [8]byte
	n, err := unix.Lgetxattr(p, OpaqueXattr, b[:])
	return err == nil && n == 1 && b[0] == 'y'
}

// isOpaqueFd is IsOpaque for the directory open at fd (getxattr follows
// /proc/self/fd/N to the directory itself).
func isOpaqueFd(fd int) bool {
	var b [8]byte
	n, err := unix.Getxattr(FdPath(fd), OpaqueXattr, b[:])
	return err == nil && n == 1 && b[0] == 'y'
}

// IsWhiteout reports whether st is overlayfs's whiteout: a 0:0 character
// device (what Unpack makes of a ".wh.NAME" entry).
func IsWhiteout(st *unix.Stat_t) bool {
	return st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0
}

// xattrsToTar copies the extended attributes of p (a /proc/self/fd/N
// path: read through it, they are the file's own) into hdr's PAX records,
// leaving out overlayfs's own (which only make sense inside one mount) and
// SELinux labels (which belong to the host's policy).
func xattrsToTar(p string, hdr *tar.Header) error {
	size, err := unix.Listxattr(p, nil)
	if err != nil {
		if errors.Is(err, unix.ENOTSUP) {
			return nil
		}
		return fmt.Errorf("write tar: list xattrs of %q: %w", p, err)
	}
	if size == 0 {
		return nil
	}
	buf := make([]byte, size)
	size, err = unix.Listxattr(p, buf)
	if err != nil {
		return fmt.Errorf("write tar: list xattrs of %q: %w", p, err)
	}
	for _, name := range strings.Split(string(bytes.TrimRight(buf[:size], "\x00")), "\x00") {
		if name == "" || strings.HasPrefix(name, "trusted.overlay.") || name == "security.selinux" {
			continue
		}
		vs, err := unix.Getxattr(p, name, nil)
		if err != nil {
			return fmt.Errorf("write tar: get xattr %q of %q: %w", name, p, err)
		}
		val := make([]byte, vs)
		vs, err = unix.Getxattr(p, name, val)
		if err != nil {
			return fmt.Errorf("write tar: get xattr %q of %q: %w", name, p, err)
		}
		if hdr.PAXRecords == nil {
			hdr.PAXRecords = map[string]string{}
		}
		hdr.PAXRecords[xattrPrefix+name] = string(val[:vs])
	}
	return nil
}
