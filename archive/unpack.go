package archive

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Whiteout names used by OCI and Docker layer tarballs, and the overlayfs
// xattr that marks an opaque directory.
const (
	// WhiteoutPrefix starts the name of an entry that deletes the file
	// named by the rest of its name from the layers below.
	WhiteoutPrefix = ".wh."
	// OpaqueMarker is the entry that hides everything the layers below
	// hold in its directory.
	OpaqueMarker = ".wh..wh..opq"
	// OpaqueXattr set to "y" on a directory is overlayfs's opaque marker.
	OpaqueXattr = "trusted.overlay.opaque"
)

// Default limits for Unpack; each can be changed in UnpackOptions.
const (
	DefaultMaxFileSize  int64 = 16 << 30 // one regular file
	DefaultMaxLayerSize int64 = 64 << 30 // all regular files of a layer
)

// UnpackOptions bounds what a layer tarball may contain. The zero value
// (or nil) gives the defaults: no device nodes, DefaultMaxFileSize and
// DefaultMaxLayerSize, DefaultReserve kept free (space.go).
type UnpackOptions struct {
	// AllowDevices lets the layer hold character and block device nodes
	// (a whiteout is never counted as one).
	AllowDevices bool
	// MaxFileSize is the largest regular file accepted (its size, holes
	// included).
	MaxFileSize int64
	// MaxLayerSize is the largest total of regular file sizes accepted
	// (holes included; on disk, holes stay holes).
	MaxLayerSize int64
	// Budget, when set, is shared with the other steps of one operation
	// (all the layers and blobs of an image load): the total is bounded
	// too, and the free space is watched. Without it the free space is
	// watched with DefaultReserve.
	Budget *Budget
	// Root makes Unpack extract into dst, an existing directory at or
	// below Root, as docker cp does: paths resolve as if Root were "/"
	// (openat2 RESOLVE_IN_ROOT: a symlink met on the way, absolute or
	// with "..", stays inside Root), names are plain (".wh." entries are
	// files like others), a "." entry leaves dst as it is, and a failure
	// puts back everything as it was (undo.go).
	Root string
}

// UnpackError names the tar entry that made Unpack refuse a layer.
type UnpackError struct {
	Entry string // the entry's name as written in the tarball
	Err   error
}

func (e *UnpackError) Error() string {
	return fmt.Sprintf("refusing layer entry %q: %v", e.Entry, e.Err)
}

func (e *UnpackError) Unwrap() error { return e.Err }

// Unpack extracts the layer tarball read from r into the new directory dst
// (which must not exist yet; its parent must), in the form overlayfs wants
// for a lower layer: a ".wh.NAME" entry becomes a 0:0 character device NAME
// and ".wh..wh..opq" sets trusted.overlay.opaque=y on its directory. It
// returns the number of bytes of file content written.
//
// Nothing is ever written outside dst: every path is resolved with
// openat2(RESOLVE_BENEATH) from a descriptor of dst, so a symlink met on
// the way (absolute, or with "..") that would leave dst fails the call
// instead of being followed. Holes stay holes (space.go): a sparse file
// costs on disk only its data, and the free space is checked before
// anything is written and while it is. Entries with ".." or absolute names, symlinks
// whose relative target climbs out of dst, hard links to anything outside
// the layer, device nodes (unless allowed), overlayfs xattrs and sizes over
// the limits are refused with an *UnpackError naming the entry, and dst is
// removed.
func Unpack(dst string, r io.Reader, opts *UnpackOptions) (size int64, err error) {
	u := &unpacker{dst: dst, cacheFd: -1, root: -1, inRoot: -1}
	if opts != nil {
		u.opts = *opts
	}
	if u.opts.MaxFileSize <= 0 {
		u.opts.MaxFileSize = DefaultMaxFileSize
	}
	if u.opts.MaxLayerSize <= 0 {
		u.opts.MaxLayerSize = DefaultMaxLayerSize
	}
	if u.opts.Budget == nil {
		u.opts.Budget = &Budget{}
	}
	if u.opts.Root != "" {
		return u.into(r)
	}
	if err := os.Mkdir(dst, 0o755); err != nil {
		return 0, fmt.Errorf("unpack layer: %w", err)
	}
	defer func() {
		u.close()
		if err != nil {
			os.RemoveAll(dst)
		}
	}()
	u.root, err = unix.Open(dst, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("unpack layer: open %q: %w", dst, err)
	}
	return u.run(r)
}

// into is Unpack with a Root: dst exists and is opened through Root.
func (u *unpacker) into(r io.Reader) (int64, error) {
	rel, err := filepath.Rel(u.opts.Root, u.dst)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return 0, fmt.Errorf("extract into %q: not below %q", u.dst, u.opts.Root)
	}
	defer u.close()
	u.inRoot, err = unix.Open(u.opts.Root, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("extract into %q: open %q: %w", u.dst, u.opts.Root, err)
	}
	u.prefix = rel
	if u.root, err = u.openBeneath("."); err != nil {
		return 0, fmt.Errorf("extract into %q: %w", u.dst, err)
	}
	u.undo = newUndoLog()
	n, err := u.run(r)
	if ferr := u.finish(err != nil); ferr != nil {
		if err != nil {
			return n, fmt.Errorf("%w; and while putting %q back as it was: %v", err, u.dst, ferr)
		}
		return n, fmt.Errorf("extract into %q: %w", u.dst, ferr)
	}
	return n, err
}

// run extracts every entry of the tar read from r.
func (u *unpacker) run(r io.Reader) (int64, error) {
	dst := u.dst
	if err := CheckFree(u.root, 0, u.opts.Budget.ReserveOrDefault()); err != nil {
		return 0, fmt.Errorf("unpack into %q: %w", dst, err)
	}
	u.buf = make([]byte, 1<<20)
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return u.total, fmt.Errorf("unpack layer into %q: read tar: %w", dst, err)
		}
		if err := u.entry(hdr, tr); err != nil {
			var ue *UnpackError
			if errors.As(err, &ue) {
				return u.total, err
			}
			return u.total, &UnpackError{Entry: hdr.Name, Err: err}
		}
	}
	if err := u.finishDirs(); err != nil {
		return u.total, err
	}
	// Read what follows the end-of-archive marker, so that a caller that
	// hashes r sees every byte.
	if _, err := io.Copy(io.Discard, r); err != nil {
		return u.total, fmt.Errorf("unpack layer into %q: read tail: %w", dst, err)
	}
	return u.total, nil
}

type dirTime struct {
	name         string
	atime, mtime time.Time
}

type unpacker struct {
	dst  string
	opts UnpackOptions
	root int // O_PATH descriptor of dst; every path is resolved from it
	// with opts.Root: its descriptor, paths resolve from it in root mode,
	// and dst relative to it
	inRoot int
	prefix string
	undo   *undoLog // in root mode: what to put back on failure

	// One-entry cache of the last parent directory opened, since tar
	// entries of one directory usually come together.
	cacheDir string
	cacheFd  int

	total int64
	dirs  []dirTime
	buf   []byte
}

func (u *unpacker) close() {
	u.dropCache()
	for _, fd := range []*int{&u.root, &u.inRoot} {
		if *fd >= 0 {
			unix.Close(*fd)
			*fd = -1
		}
	}
}

func (u *unpacker) dropCache() {
	if u.cacheFd >= 0 {
		unix.Close(u.cacheFd)
	}
	u.cacheFd, u.cacheDir = -1, ""
}

// CleanName checks a name from a tarball and returns it cleaned,
// relative to the root it is extracted into ("." for the root itself):
// empty names, NUL bytes, absolute names and ".." are refused.
func CleanName(n string) (string, error) {
	if n == "" {
		return "", errors.New("empty name")
	}
	if strings.IndexByte(n, 0) >= 0 {
		return "", errors.New("NUL byte in name")
	}
	if strings.HasPrefix(n, "/") {
		return "", errors.New("absolute path")
	}
	for _, c := range strings.Split(n, "/") {
		if c == ".." {
			return "", errors.New(`path contains ".."`)
		}
	}
	return path.Clean(n), nil
}

// openBeneath opens directory p (relative to the layer root) as an O_PATH
// descriptor with openat2(2) RESOLVE_BENEATH: the kernel fails the lookup
// with EXDEV if any step, symlinks included, would leave the root.
func (u *unpacker) openBeneath(p string) (int, error) {
	how := unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS,
	}
	from, name := u.root, p
	if u.inRoot >= 0 {
		how.Resolve = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS
		from, name = u.inRoot, path.Join(u.prefix, p)
	}
	for i := 0; ; i++ {
		fd, err := unix.Openat2(from, name, &how)
		if (err == unix.EAGAIN || err == unix.EINTR) && i < 10 {
			continue
		}
		if err != nil {
			return -1, explainResolve(p, err)
		}
		return fd, nil
	}
}

// explainResolve turns the errors of a RESOLVE_BENEATH lookup into words.
func explainResolve(p string, err error) error {
	switch err {
	case unix.EXDEV:
		return fmt.Errorf("directory %q resolves outside the layer (through a symlink): %w", p, err)
	case unix.ELOOP:
		return fmt.Errorf("directory %q: too many symlinks: %w", p, err)
	case unix.ENOTDIR:
		return fmt.Errorf("directory %q: a component is not a directory: %w", p, err)
	}
	return fmt.Errorf("open directory %q in layer: %w", p, err)
}

// parent returns a descriptor of directory dir (relative to the root,
// may be ""), creating missing directories as tar does. The descriptor
// belongs to the cache: callers do not close it.
func (u *unpacker) parent(dir string) (int, error) {
	dir = strings.TrimSuffix(dir, "/")
	if dir == "" || dir == "." {
		return u.root, u.keepDir(".", u.root)
	}
	if u.cacheFd >= 0 && u.cacheDir == dir {
		return u.cacheFd, nil
	}
	u.dropCache()
	fd, err := u.openBeneath(dir)
	if errors.Is(err, unix.ENOENT) {
		fd, err = u.mkdirAll(dir)
	}
	if err == nil {
		if err = u.keepDir(dir, fd); err != nil {
			unix.Close(fd)
		}
	}
	if err != nil {
		return -1, err
	}
	u.cacheDir, u.cacheFd = dir, fd
	return fd, nil
}

// mkdirAll creates the missing directories of dir one component at a time,
// each with mkdirat(2) in a descriptor already resolved beneath the root.
func (u *unpacker) mkdirAll(dir string) (int, error) {
	comps := strings.Split(dir, "/")
	prev := u.root
	closePrev := func() {
		if prev != u.root {
			unix.Close(prev)
		}
	}
	for i, c := range comps {
		p := strings.Join(comps[:i+1], "/")
		fd, err := u.openBeneath(p)
		if errors.Is(err, unix.ENOENT) {
			merr := unix.Mkdirat(prev, c, 0o755)
			if merr != nil && merr != unix.EEXIST {
				closePrev()
				return -1, fmt.Errorf("mkdir %q in layer: %w", p, merr)
			}
			if merr == nil {
				u.undo.create(p)
			}
			fd, err = u.openBeneath(p)
		}
		closePrev()
		if err != nil {
			return -1, err
		}
		prev = fd
	}
	return prev, nil
}

// procPath names entry base of the directory open as fd through
// /proc/self/fd, for the calls (lsetxattr) that have no *at form.
func procPath(fd int, base string) string {
	p := "/proc/self/fd/" + strconv.Itoa(fd)
	if base != "" && base != "." {
		p += "/" + base
	}
	return p
}

func (u *unpacker) entry(hdr *tar.Header, tr *tar.Reader) error {
	switch hdr.Typeflag {
	case tar.TypeXGlobalHeader:
		return nil
	}
	name, err := CleanName(hdr.Name)
	if err != nil {
		return err
	}
	if name == "." {
		if hdr.Typeflag != tar.TypeDir {
			return errors.New("the layer root must be a directory")
		}
		if u.inRoot >= 0 {
			return nil
		}
		return u.dirMeta(u.root, ".", name, hdr)
	}
	dir, base := path.Split(name)
	switch {
	case u.inRoot >= 0:
		// extracting into a container's files: plain names, no whiteouts
	case base == OpaqueMarker:
		fd, err := u.parent(dir)
		if err != nil {
			return err
		}
		// setxattr (not l-) follows the /proc magic link to the directory.
		if err := unix.Setxattr(procPath(fd, ""), OpaqueXattr, []byte("y"), 0); err != nil {
			return fmt.Errorf("set %s on %q: %w", OpaqueXattr, dir, err)
		}
		return nil
	case strings.HasPrefix(base, WhiteoutPrefix):
		return u.whiteout(dir, strings.TrimPrefix(base, WhiteoutPrefix))
	}
	pfd, err := u.parent(dir)
	if err != nil {
		return err
	}
	if err := u.replaceExisting(pfd, dir, name, base, hdr.Typeflag == tar.TypeDir); err != nil {
		return err
	}
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeGNUSparse:
		return u.regular(pfd, name, base, hdr, tr)
	case tar.TypeDir:
		switch err := unix.Mkdirat(pfd, base, 0o700); err {
		case nil:
			u.undo.create(name)
		case unix.EEXIST:
			if u.undo != nil {
				fd, err := u.openBeneath(name)
				if err != nil {
					return err
				}
				err = u.keepDir(name, fd)
				unix.Close(fd)
				if err != nil {
					return err
				}
			}
		default:
			return fmt.Errorf("mkdir: %w", err)
		}
		return u.dirMeta(pfd, base, name, hdr)
	case tar.TypeSymlink:
		t := hdr.Linkname
		if t == "" || strings.IndexByte(t, 0) >= 0 {
			return errors.New("bad symlink target")
		}
		if !path.IsAbs(t) {
			// An absolute target is resolved in the container's own root
			// at run time and is never followed here; a relative one must
			// stay inside the layer when read from where the link sits.
			if j := path.Join(dir, t); j == ".." || strings.HasPrefix(j, "../") {
				return fmt.Errorf("symlink target %q points outside the layer", t)
			}
		}
		if err := unix.Symlinkat(t, pfd, base); err != nil {
			return fmt.Errorf("symlink: %w", err)
		}
		u.undo.create(name)
		return u.linkMeta(pfd, base, hdr)
	case tar.TypeLink:
		return u.hardlink(pfd, name, base, hdr)
	case tar.TypeChar, tar.TypeBlock:
		if !u.opts.AllowDevices {
			return fmt.Errorf("device node %d:%d not allowed in a layer", hdr.Devmajor, hdr.Devminor)
		}
		kind := uint32(unix.S_IFCHR)
		if hdr.Typeflag == tar.TypeBlock {
			kind = unix.S_IFBLK
		}
		dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
		if err := unix.Mknodat(pfd, base, kind|0o600, int(dev)); err != nil {
			return fmt.Errorf("mknod: %w", err)
		}
		u.undo.create(name)
		return u.nodeMeta(pfd, base, hdr)
	case tar.TypeFifo:
		if err := unix.Mknodat(pfd, base, unix.S_IFIFO|0o600, 0); err != nil {
			return fmt.Errorf("mkfifo: %w", err)
		}
		u.undo.create(name)
		return u.nodeMeta(pfd, base, hdr)
	}
	return fmt.Errorf("unsupported tar entry type %q", string(hdr.Typeflag))
}

// replaceExisting removes what an earlier entry of the same name left,
// except a directory that is being described again as a directory. In
// root mode what was there before the extraction is moved aside instead
// (undo.go).
func (u *unpacker) replaceExisting(pfd int, dir, name, base string, isDir bool) error {
	var st unix.Stat_t
	err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW)
	if err == unix.ENOENT {
		return nil
	}
	if err != nil {
		return fmt.Errorf("stat: %w", err)
	}
	isExistingDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
	if isDir && isExistingDir {
		return nil
	}
	if u.cacheDir == name || strings.HasPrefix(u.cacheDir, name+"/") {
		u.dropCache()
	}
	if u.undo != nil {
		if moved, err := u.moveAside(pfd, dir, base, name); moved || err != nil {
			return err
		}
	}
	if isExistingDir {
		return removeAllAt(pfd, base)
	}
	if err := unix.Unlinkat(pfd, base, 0); err != nil {
		return fmt.Errorf("replace: %w", err)
	}
	return nil
}

// removeAllAt removes the directory base of pfd and all it holds, never
// following a symlink.
func removeAllAt(pfd int, base string) error {
	fd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %q for removal: %w", base, err)
	}
	f := os.NewFile(uintptr(fd), base)
	names, err := f.Readdirnames(-1)
	if err != nil {
		f.Close()
		return fmt.Errorf("read %q for removal: %w", base, err)
	}
	for _, n := range names {
		var st unix.Stat_t
		if err := unix.Fstatat(fd, n, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			f.Close()
			return fmt.Errorf("stat %q: %w", n, err)
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			err = removeAllAt(fd, n)
		} else {
			err = unix.Unlinkat(fd, n, 0)
		}
		if err != nil {
			f.Close()
			return fmt.Errorf("remove %q: %w", n, err)
		}
	}
	f.Close()
	if err := unix.Unlinkat(pfd, base, unix.AT_REMOVEDIR); err != nil {
		return fmt.Errorf("rmdir %q: %w", base, err)
	}
	return nil
}

// whiteout records the deletion of dir/target as overlayfs does: a
// character device 0:0 with that name. A file of the same name from this
// same layer wins (whiteouts only hide the layers below).
func (u *unpacker) whiteout(dir, target string) error {
	if target == "" || target == "." || target == ".." {
		return fmt.Errorf("bad whiteout name")
	}
	pfd, err := u.parent(dir)
	if err != nil {
		return err
	}
	var st unix.Stat_t
	if err := unix.Fstatat(pfd, target, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil {
		return nil
	}
	if err := unix.Mknodat(pfd, target, unix.S_IFCHR, 0); err != nil {
		return fmt.Errorf("mknod whiteout %q: %w", path.Join(dir, target), err)
	}
	return nil
}

func (u *unpacker) regular(pfd int, name, base string, hdr *tar.Header, tr *tar.Reader) error {
	if hdr.Size < 0 {
		return fmt.Errorf("negative size %d", hdr.Size)
	}
	if hdr.Size > u.opts.MaxFileSize {
		return fmt.Errorf("size %d bytes is over the limit of %d bytes for one file", hdr.Size, u.opts.MaxFileSize)
	}
	if u.total+hdr.Size > u.opts.MaxLayerSize {
		return fmt.Errorf("%w: layer content would reach %d bytes, over the limit of %d bytes", ErrNoSpace, u.total+hdr.Size, u.opts.MaxLayerSize)
	}
	if err := u.opts.Budget.Expand(hdr.Size); err != nil {
		return err
	}
	fd, err := unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	u.undo.create(name)
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	// the tar reader gives a sparse entry's holes back as zeros:
	// copySparse makes them holes again
	n, err := copySparse(f, tr, u.buf, u.opts.Budget, false)
	u.total += n
	if err != nil {
		return fmt.Errorf("write content: %w", err)
	}
	if n != hdr.Size {
		return fmt.Errorf("content is %d bytes, header says %d", n, hdr.Size)
	}
	if err := u.fdMeta(fd, name, hdr); err != nil {
		return err
	}
	return setTimes(pfd, base, hdr)
}

// fdMeta sets owner, mode and xattrs through an open descriptor, in that
// order: chown(2) clears set-id bits and file capabilities.
func (u *unpacker) fdMeta(fd int, name string, hdr *tar.Header) error {
	if err := unix.Fchown(fd, hdr.Uid, hdr.Gid); err != nil {
		return fmt.Errorf("chown %d:%d: %w", hdr.Uid, hdr.Gid, err)
	}
	if err := unix.Fchmod(fd, tarMode(hdr.Mode)); err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	return xattrsFromTar(hdr, func(k string, v []byte) error { return unix.Fsetxattr(fd, k, v, 0) })
}

// dirMeta applies a directory entry's metadata; its times are set at the
// very end, since creating children would change them again.
func (u *unpacker) dirMeta(pfd int, base, name string, hdr *tar.Header) error {
	fd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open directory: %w", err)
	}
	defer unix.Close(fd)
	if err := u.fdMeta(fd, name, hdr); err != nil {
		return err
	}
	u.dirs = append(u.dirs, dirTime{name: name, atime: hdr.AccessTime, mtime: hdr.ModTime})
	return nil
}

// linkMeta sets a symlink's owner, xattrs and times without following it.
func (u *unpacker) linkMeta(pfd int, base string, hdr *tar.Header) error {
	if err := unix.Fchownat(pfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("lchown %d:%d: %w", hdr.Uid, hdr.Gid, err)
	}
	p := procPath(pfd, base)
	if err := xattrsFromTar(hdr, func(k string, v []byte) error { return unix.Lsetxattr(p, k, v, 0) }); err != nil {
		return err
	}
	return setTimes(pfd, base, hdr)
}

// nodeMeta sets metadata on a device node or fifo, which cannot be opened
// safely for it.
func (u *unpacker) nodeMeta(pfd int, base string, hdr *tar.Header) error {
	if err := unix.Fchownat(pfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("chown %d:%d: %w", hdr.Uid, hdr.Gid, err)
	}
	if err := unix.Fchmodat(pfd, base, tarMode(hdr.Mode), 0); err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	p := procPath(pfd, base)
	if err := xattrsFromTar(hdr, func(k string, v []byte) error { return unix.Lsetxattr(p, k, v, 0) }); err != nil {
		return err
	}
	return setTimes(pfd, base, hdr)
}

// hardlink makes base a second name of an earlier entry of this layer.
func (u *unpacker) hardlink(pfd int, name, base string, hdr *tar.Header) error {
	target, err := CleanName(hdr.Linkname)
	if err != nil {
		return fmt.Errorf("hard link target %q: %w", hdr.Linkname, err)
	}
	if target == "." {
		return fmt.Errorf("hard link target %q is the layer root", hdr.Linkname)
	}
	tdir, tbase := path.Split(target)
	tfd := u.root
	if d := strings.TrimSuffix(tdir, "/"); d != "" {
		fd, err := u.openBeneath(d)
		if err != nil {
			return fmt.Errorf("hard link target %q: %w", hdr.Linkname, err)
		}
		defer unix.Close(fd)
		tfd = fd
	}
	var st unix.Stat_t
	if err := unix.Fstatat(tfd, tbase, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("hard link target %q is not in this layer: %w", hdr.Linkname, err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return fmt.Errorf("hard link target %q is a directory", hdr.Linkname)
	}
	if err := unix.Linkat(tfd, tbase, pfd, base, 0); err != nil {
		return fmt.Errorf("link to %q: %w", hdr.Linkname, err)
	}
	u.undo.create(name)
	return nil
}

// finishDirs sets the times of every directory entry, now that nothing
// more will be created in them.
func (u *unpacker) finishDirs() error {
	u.dropCache()
	for _, d := range u.dirs {
		dir, base := path.Split(d.name)
		fd := u.root
		if dd := strings.TrimSuffix(dir, "/"); dd != "" {
			var err error
			if fd, err = u.openBeneath(dd); err != nil {
				return &UnpackError{Entry: d.name, Err: err}
			}
		}
		err := setTimes(fd, base, &tar.Header{ModTime: d.mtime, AccessTime: d.atime})
		if fd != u.root {
			unix.Close(fd)
		}
		if err != nil {
			return &UnpackError{Entry: d.name, Err: err}
		}
	}
	return nil
}

// setTimes applies the entry's access and modification times with
// utimensat(2), never following a symlink.
func setTimes(pfd int, base string, hdr *tar.Header) error {
	if hdr.ModTime.IsZero() {
		return nil
	}
	at := hdr.AccessTime
	if at.IsZero() {
		at = hdr.ModTime
	}
	ts := []unix.Timespec{unix.NsecToTimespec(at.UnixNano()), unix.NsecToTimespec(hdr.ModTime.UnixNano())}
	if err := unix.UtimesNanoAt(pfd, base, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return nil
}

// tarMode maps tar's mode bits (permissions, set-id, sticky) to chmod's.
func tarMode(m int64) uint32 {
	mode := uint32(m & 0o777)
	if m&0o4000 != 0 {
		mode |= unix.S_ISUID
	}
	if m&0o2000 != 0 {
		mode |= unix.S_ISGID
	}
	if m&0o1000 != 0 {
		mode |= unix.S_ISVTX
	}
	return mode
}

// xattrPrefix is how PAX tarballs (GNU tar, Docker) carry extended
// attributes.
const xattrPrefix = "SCHILY.xattr."

// xattrsFromTar applies the entry's extended attributes with set. The
// overlayfs ones are refused: they would let a layer forge whiteouts,
// redirects or opaque markers behind the tar format's back.
func xattrsFromTar(hdr *tar.Header, set func(string, []byte) error) error {
	for k, v := range hdr.PAXRecords {
		if !strings.HasPrefix(k, xattrPrefix) {
			continue
		}
		name := strings.TrimPrefix(k, xattrPrefix)
		if strings.HasPrefix(name, "trusted.overlay.") {
			return fmt.Errorf("overlayfs xattr %q not allowed in a layer", name)
		}
		if err := set(name, []byte(v)); err != nil {
			return fmt.Errorf("set xattr %q: %w", name, err)
		}
	}
	return nil
}
