package overlay

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
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
	t := &tarWriter{tw: tar.NewWriter(w), root: dir, rename: rename, links: map[inode]string{}, buf: make([]byte, 1<<20)}
	if err := t.entry(name); err != nil {
		return err
	}
	if err := t.tw.Close(); err != nil {
		return fmt.Errorf("write tar of %q: %w", filepath.Join(dir, name), err)
	}
	return nil
}

type inode struct{ dev, ino uint64 }

type tarWriter struct {
	tw   *tar.Writer
	root string
	diff bool
	// rename maps names under root to names in the tar (nil: the same)
	rename func(string) string
	links  map[inode]string
	buf    []byte
}

func writeTar(w io.Writer, root string, diff bool) error {
	t := &tarWriter{tw: tar.NewWriter(w), root: root, diff: diff, links: map[inode]string{}, buf: make([]byte, 1<<20)}
	if err := t.walk(""); err != nil {
		return err
	}
	if err := t.tw.Close(); err != nil {
		return fmt.Errorf("write tar of %q: %w", root, err)
	}
	return nil
}

func (t *tarWriter) walk(rel string) error {
	dir := filepath.Join(t.root, rel)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("write tar: read directory %q: %w", dir, err)
	}
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
	full := filepath.Join(t.root, name)
	var st unix.Stat_t
	if err := unix.Lstat(full, &st); err != nil {
		return fmt.Errorf("write tar: stat %q: %w", full, err)
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
		target, err := os.Readlink(full)
		if err != nil {
			return fmt.Errorf("write tar: readlink %q: %w", full, err)
		}
		hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, target
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
	if err := xattrsToTar(full, hdr); err != nil {
		return err
	}
	if err := t.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("write tar: header of %q: %w", name, err)
	}
	switch hdr.Typeflag {
	case tar.TypeReg:
		return t.content(full, name, hdr.Size)
	case tar.TypeDir:
		if t.diff && isOpaque(full) {
			op := &tar.Header{Name: name + "/" + OpaqueMarker, Typeflag: tar.TypeReg, ModTime: hdr.ModTime}
			if err := t.tw.WriteHeader(op); err != nil {
				return fmt.Errorf("write tar: opaque marker of %q: %w", name, err)
			}
		}
		return t.walk(name)
	}
	return nil
}

func (t *tarWriter) content(full, name string, size int64) error {
	f, err := os.OpenFile(full, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return fmt.Errorf("write tar: %w", err)
	}
	defer f.Close()
	n, err := io.CopyBuffer(struct{ io.Writer }{t.tw}, io.LimitReader(f, size), t.buf)
	if err != nil {
		return fmt.Errorf("write tar: content of %q: %w", name, err)
	}
	if n != size {
		return fmt.Errorf("write tar: %q shrank from %d to %d bytes while being archived", name, size, n)
	}
	return nil
}

// isOpaque reports whether directory p carries overlayfs's opaque marker.
func isOpaque(p string) bool {
	var b [8]byte
	n, err := unix.Lgetxattr(p, OpaqueXattr, b[:])
	return err == nil && n == 1 && b[0] == 'y'
}

// isWhiteout reports whether st is overlayfs's whiteout: a 0:0 char device.
func isWhiteout(st *unix.Stat_t) bool {
	return st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0
}

// xattrsToTar copies p's extended attributes into hdr's PAX records,
// leaving out overlayfs's own (which only make sense inside one mount) and
// SELinux labels (which belong to the host's policy).
func xattrsToTar(p string, hdr *tar.Header) error {
	size, err := unix.Llistxattr(p, nil)
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
	size, err = unix.Llistxattr(p, buf)
	if err != nil {
		return fmt.Errorf("write tar: list xattrs of %q: %w", p, err)
	}
	for _, name := range strings.Split(string(bytes.TrimRight(buf[:size], "\x00")), "\x00") {
		if name == "" || strings.HasPrefix(name, "trusted.overlay.") || name == "security.selinux" {
			continue
		}
		vs, err := unix.Lgetxattr(p, name, nil)
		if err != nil {
			return fmt.Errorf("write tar: get xattr %q of %q: %w", name, p, err)
		}
		val := make([]byte, vs)
		vs, err = unix.Lgetxattr(p, name, val)
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
