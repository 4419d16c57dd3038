package daemon

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"minidock/api"
	"minidock/archive"
	"minidock/internal/errdefs"
	"minidock/overlay"
)

// The archive endpoints are docker cp's: HEAD (stat a path), GET (a tar
// of it) and PUT (extract a tar into a directory) on
// /containers/{id}/archive?path=. Paths are the container's: every one is
// resolved with openat2(2) RESOLVE_IN_ROOT from the container's root, so
// symlinks (absolute, or with "..") are followed as if that root were
// "/" and never lead out of it, and the files are then reached through
// the descriptor that lookup gave, not through a path a running
// container could change meanwhile.

// WithContainerRootfs runs f with the host path of container name's root
// filesystem, mounted for the time of f (see withRootfs): a builder
// writes a step's files there (COPY, WORKDIR) before it commits.
func (d *Daemon) WithContainerRootfs(ctx context.Context, name string, f func(root string) error) error {
	c, err := d.lookup(name)
	if err != nil {
		return err
	}
	return d.withRootfs(c, f)
}

// withRootfs runs f with the container's merged root filesystem: a
// running container's is mounted already; another's is mounted for the
// time of f. c.op is held throughout, so no start or remove meets the
// mount.
func (d *Daemon) withRootfs(c *Container, f func(root string) error) error {
	c.op.Lock()
	defer c.op.Unlock()
	if err := d.stillThere(c); err != nil {
		return err
	}
	rfs, err := d.images.Rootfs(c.ID)
	if err != nil {
		return fmt.Errorf("rootfs of container %s: %w", c.ID, err)
	}
	mounted, err := overlay.IsMounted(rfs.Merged)
	if err != nil {
		return err
	}
	d.mu.Lock()
	running := c.State.Status == "running"
	d.mu.Unlock()
	if running && !mounted {
		// A second overlay mount of a live upper dir would see stale
		// files and corrupt it.
		return errdefs.Conflictf("the root filesystem of running container %s is not mounted in this daemon's mount namespace (an earlier daemon in another namespace started it): stop the container first", c.ID)
	}
	root, err := d.images.Mount(c.ID)
	if err != nil {
		return err
	}
	if !mounted {
		defer d.images.Unmount(c.ID)
	}
	return f(root)
}

// openInRoot opens p, a path in the container whose root is root, as an
// O_PATH descriptor: every symlink is followed (the last one too unless
// nofollow), resolved as if root were "/". It also returns the host path
// the descriptor names.
func openInRoot(root, p string, nofollow bool) (int, string, error) {
	rfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, "", fmt.Errorf("open container root %s: %w", root, err)
	}
	defer unix.Close(rfd)
	how := unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS}
	if nofollow {
		how.Flags |= unix.O_NOFOLLOW
	}
	rel := strings.TrimPrefix(path.Clean("/"+p), "/")
	if rel == "" {
		rel = "."
	}
	for i := 0; ; i++ {
		fd, err := unix.Openat2(rfd, rel, &how)
		if (err == unix.EAGAIN || err == unix.EINTR) && i < 10 {
			continue
		}
		if err != nil {
			return -1, "", &os.PathError{Op: "open", Path: p, Err: err}
		}
		host, err := os.Readlink(archive.FdPath(fd))
		if err == nil && host != root && !strings.HasPrefix(host, root+"/") {
			err = fmt.Errorf("resolves to %s, outside the container root %s", host, root)
		}
		if err != nil {
			unix.Close(fd)
			return -1, "", fmt.Errorf("resolve %s in container: %w", p, err)
		}
		return fd, host, nil
	}
}

// containerPath is where the host path host, below root, is in the
// container.
func containerPath(root, host string) string {
	return "/" + strings.TrimPrefix(strings.TrimPrefix(host, root), "/")
}

// archiveTarget is a path asked for by HEAD or GET archive, resolved.
type archiveTarget struct {
	dir  int    // O_PATH descriptor of the entry's directory
	name string // the entry's name in dir
	as   string // the name the entry has in the tar and the stat
	host string // host path of the entry
}

// resolveArchivePath resolves p as Docker does: the directory part with
// its symlinks followed, the last element as it is, unless p ends with
// "/" or "/." (then it is followed too; "/." asks for the directory's
// content, named "." in the tar). p names the entry; pr says where it is
// looked up (the container's root, or a mount's directory: withPathRoot).
// A missing path is a 404.
func resolveArchivePath(pr pathRoot, p, ctrID string) (*archiveTarget, error) {
	if p == "" {
		return nil, errdefs.Invalidf("path is required: give path=PATH in the container")
	}
	missing := func(err error) error {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
			return errdefs.NotFoundf("Could not find the file %s in container %s", p, ctrID)
		}
		if errors.Is(err, unix.ELOOP) {
			return errdefs.Invalidf("%s in container %s: too many levels of symbolic links (a symlink loop)", p, ctrID)
		}
		return err
	}
	root := pr.root
	abs := path.Clean("/" + p)
	keepDot := abs == "/" || p == "." || strings.HasSuffix(p, "/.")
	as := path.Base(abs)
	if keepDot {
		as = "."
	}
	in := path.Clean("/" + pr.rel)
	if keepDot || strings.HasSuffix(p, "/") || in == "/" {
		fd, host, err := openInRoot(root, in, false)
		if err != nil {
			return nil, missing(err)
		}
		unix.Close(fd)
		if host == root {
			// the root's own directory is the daemon's, outside it
			dfd, err := unix.Open(filepath.Dir(root), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
			if err != nil {
				return nil, fmt.Errorf("open %s: %w", filepath.Dir(root), err)
			}
			return &archiveTarget{dir: dfd, name: filepath.Base(root), as: as, host: root}, nil
		}
		in = containerPath(root, host)
	}
	fd, dir, err := openInRoot(root, path.Dir(in), false)
	if err != nil {
		return nil, missing(err)
	}
	base := path.Base(in)
	var st unix.Stat_t
	if err := unix.Fstatat(fd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		unix.Close(fd)
		return nil, missing(err)
	}
	return &archiveTarget{dir: fd, name: base, as: as, host: filepath.Join(dir, base)}, nil
}

// stat is the X-Docker-Container-Path-Stat of a target found in pr.
func (t *archiveTarget) stat(pr pathRoot) (api.PathStat, error) {
	root := pr.root
	fi, err := os.Lstat(filepath.Join(archive.FdPath(t.dir), t.name))
	if err != nil {
		return api.PathStat{}, err
	}
	st := api.PathStat{Name: t.as, Size: fi.Size(), Mode: uint32(fi.Mode()), Mtime: fi.ModTime().UTC().Format(time.RFC3339Nano)}
	if fi.Mode()&os.ModeSymlink != 0 {
		// where the link leads, in the container; a dangling one as
		// far as it goes
		if fd, host, err := openInRoot(root, containerPath(root, t.host), false); err == nil {
			unix.Close(fd)
			st.LinkTarget = path.Join(pr.at, containerPath(root, host))
		} else if errors.Is(err, unix.ELOOP) {
			return st, errdefs.Invalidf("%s: too many levels of symbolic links (a symlink loop)", containerPath(root, t.host))
		} else if target, err := os.Readlink(filepath.Join(archive.FdPath(t.dir), t.name)); err == nil {
			st.LinkTarget = path.Join(pr.at, path.Dir(containerPath(root, t.host)), target)
			if path.IsAbs(target) {
				st.LinkTarget = path.Clean(target)
			}
		}
	}
	return st, nil
}

// ContainerStatPath is HEAD /containers/{id}/archive?path=: what the path
// is, resolved in the container (see resolveArchivePath).
func (d *Daemon) ContainerStatPath(ctx context.Context, name, p string) (api.PathStat, error) {
	var st api.PathStat
	err := d.archive(name, p, func(pr pathRoot, t *archiveTarget) (err error) {
		st, err = t.stat(pr)
		return err
	})
	return st, err
}

// ContainerArchive is GET /containers/{id}/archive?path=: the path's
// stat goes to begin, which returns where the tar goes. The tar is
// written by descriptors (archive.WriteEntry): a running container that
// swaps a directory for a symlink meanwhile stops the copy rather than
// leading it out of its root.
func (d *Daemon) ContainerArchive(ctx context.Context, name, p string, begin func(api.PathStat) io.Writer) error {
	c, err := d.lookup(name)
	if err != nil {
		return err
	}
	err = d.archive(name, p, func(pr pathRoot, t *archiveTarget) error {
		st, err := t.stat(pr)
		if err != nil {
			return err
		}
		w := begin(st)
		// names below the entry are "name/...": only the first part changes
		rename := func(n string) string { return t.as + strings.TrimPrefix(n, t.name) }
		return c.UserNamespace.writeInContainerIDs(w, func(w io.Writer) error {
			return archive.WriteEntry(w, archive.FdPath(t.dir), t.name, rename)
		})
	})
	if err == nil {
		d.mu.Lock()
		d.emit(c, "archive-path", map[string]string{"path": p})
		d.mu.Unlock()
	}
	return err
}

// archive resolves path p in container name's root, or in the mount
// that holds it (withPathRoot), and calls f with it.
func (d *Daemon) archive(name, p string, f func(pr pathRoot, t *archiveTarget) error) error {
	c, err := d.lookup(name)
	if err != nil {
		return err
	}
	return d.withPathRoot(c, p, func(pr pathRoot) error {
		t, err := resolveArchivePath(pr, p, name)
		if err != nil {
			return err
		}
		defer unix.Close(t.dir)
		if err := f(pr, t); err != nil {
			return fmt.Errorf("%s in container %s: %w", p, c.ID, err)
		}
		return nil
	})
}

// ExtractOptions are PUT archive's: keep the tar's owners (else the
// container's root owns every entry), and refuse a directory over a file
// or the reverse.
type ExtractOptions struct {
	CopyUIDGID           bool
	NoOverwriteDirNonDir bool
}

// ExtractToContainer is PUT /containers/{id}/archive?path=DIR: the tar r
// is extracted into DIR. Every entry is checked before anything is
// written: names with ".." or absolute ones, symlinks that would climb
// above the container's root, hard links out of the archive, device
// nodes, and (NoOverwriteDirNonDir) a directory replacing a file or the
// reverse are refused (400) naming the entry.
func (d *Daemon) ExtractToContainer(ctx context.Context, name, p string, r io.Reader, o ExtractOptions) error {
	c, err := d.lookup(name)
	if err != nil {
		return err
	}
	if p == "" {
		return errdefs.Invalidf("path is required: give path=DIR in the container")
	}
	opts := extractOptions{keepOwner: o.CopyUIDGID, noOverwriteDirNonDir: o.NoOverwriteDirNonDir}
	err = d.withPathRoot(c, p, func(pr pathRoot) error {
		if pr.readOnly && pr.at == "/" {
			return errdefs.Invalidf("container rootfs is marked read-only")
		}
		if pr.readOnly {
			return errdefs.Invalidf("mounted volume is marked read-only")
		}
		root := pr.root
		fd, dest, err := openInRoot(root, pr.rel, false)
		if err != nil {
			if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
				return errdefs.NotFoundf("Could not find the file %s in container %s", p, name)
			}
			return err
		}
		var st unix.Stat_t
		err = unix.Fstat(fd, &st)
		unix.Close(fd)
		if err != nil {
			return err
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return errdefs.Invalidf("extraction point is not a directory: %s", p)
		}
		spool, err := os.CreateTemp(c.paths.dir, ".extract-")
		if err != nil {
			return fmt.Errorf("extract into %s: %w", p, err)
		}
		defer os.Remove(spool.Name())
		defer spool.Close()
		opts.root, opts.at, opts.dest = root, pr.at, containerPath(root, dest)
		if err := opts.check(r, spool); err != nil {
			return err
		}
		if _, err := spool.Seek(0, io.SeekStart); err != nil {
			return err
		}
		if _, err := archive.Unpack(dest, c.UserNamespace.toHostIDs(spool), &archive.UnpackOptions{Root: root}); err != nil {
			var ue *archive.UnpackError
			if errors.As(err, &ue) {
				return errdefs.Invalidf("extract into %s: %v", p, err)
			}
			return fmt.Errorf("extract into %s: %w", p, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	d.mu.Lock()
	d.emit(c, "extract-to-dir", map[string]string{"path": p})
	d.mu.Unlock()
	return nil
}

// extractOptions are what PUT archive checks a tar against.
type extractOptions struct {
	root, dest string // the root (host) and the directory, in it
	at         string // where root is in the container

	keepOwner            bool
	noOverwriteDirNonDir bool
}

// check copies the tar read from r to spool, refusing it whole at the
// first hostile entry, and giving every entry to the container's root
// unless keepOwner.
func (o *extractOptions) check(r io.Reader, spool io.Writer) error {
	err := archive.Retar(spool, r, func(hdr *tar.Header) error {
		if err := o.checkEntry(hdr); err != nil {
			return errdefs.Invalidf("refusing tar entry %q: %v", hdr.Name, err)
		}
		if !o.keepOwner {
			hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
		}
		return nil
	})
	if err != nil && errdefs.KindOf(err) == errdefs.Unknown {
		// mostly a body that is not a tar
		return errdefs.Invalidf("the request body: %v", err)
	}
	return err
}

// checkEntry says what is wrong with one entry, or nil.
func (o *extractOptions) checkEntry(hdr *tar.Header) error {
	name, err := archive.CleanName(hdr.Name)
	if err != nil {
		return err
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "SCHILY.xattr.trusted.overlay.") {
			return fmt.Errorf("overlayfs xattr %q not allowed", strings.TrimPrefix(k, "SCHILY.xattr."))
		}
	}
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeRegA, tar.TypeDir, tar.TypeFifo, tar.TypeGNUSparse, tar.TypeXGlobalHeader:
	case tar.TypeSymlink:
		t := hdr.Linkname
		if t == "" || strings.IndexByte(t, 0) >= 0 {
			return errors.New("bad symlink target")
		}
		if !path.IsAbs(t) && climbsAbove(path.Join(o.at, o.dest, path.Dir(name)), t) {
			return fmt.Errorf("symlink target %q points outside the container", t)
		}
	case tar.TypeLink:
		if _, err := archive.CleanName(hdr.Linkname); err != nil {
			return fmt.Errorf("hard link target %q: %v", hdr.Linkname, err)
		}
	case tar.TypeChar, tar.TypeBlock:
		return fmt.Errorf("device node %d:%d cannot be copied into a container", hdr.Devmajor, hdr.Devminor)
	default:
		return fmt.Errorf("unsupported tar entry type %q", string(hdr.Typeflag))
	}
	if o.noOverwriteDirNonDir && name != "." && hdr.Typeflag != tar.TypeXGlobalHeader {
		return o.checkOverwrite(name, hdr.Typeflag == tar.TypeDir)
	}
	return nil
}

// checkOverwrite refuses a directory over a non-directory or the reverse.
func (o *extractOptions) checkOverwrite(name string, isDir bool) error {
	full := path.Join(o.dest, name)
	fd, _, err := openInRoot(o.root, path.Dir(full), false)
	if err != nil {
		return nil // its directory comes with the tar
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if unix.Fstatat(fd, path.Base(full), &st, unix.AT_SYMLINK_NOFOLLOW) != nil {
		return nil
	}
	existingDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
	switch {
	case existingDir && !isDir:
		return fmt.Errorf("cannot overwrite directory %q with non-directory", full)
	case !existingDir && isDir:
		return fmt.Errorf("cannot overwrite non-directory %q with directory", full)
	}
	return nil
}

// climbsAbove reports whether the relative symlink target, read from
// directory dir (absolute in the container), goes above "/".
func climbsAbove(dir, target string) bool {
	depth := 0
	for _, c := range strings.Split(strings.Trim(dir, "/"), "/") {
		if c != "" {
			depth++
		}
	}
	for _, c := range strings.Split(target, "/") {
		switch c {
		case "", ".":
		case "..":
			depth--
			if depth < 0 {
				return true
			}
		default:
			depth++
		}
	}
	return false
}
