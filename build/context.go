package build

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"minidock/archive"
	"minidock/build/dockerignore"
)

// openContext unpacks the build context, a tar stream (plain, gzip or
// bzip2) sent by the client, into a new private directory under tmpDir,
// and returns it with the Dockerfile's content. The tar is unpacked by
// archive.Unpack in root mode: absolute names, "..", device nodes,
// symlinks whose relative target climbs out, and hard links to outside
// are refused with an error naming the entry, and nothing is ever
// written outside the directory. Then the paths .dockerignore excludes
// are removed (the Dockerfile and .dockerignore are read first: the
// builder needs them even when they are excluded from COPY).
func openContext(r io.Reader, tmpDir, dockerfile string) (*sourceTree, []byte, error) {
	dir, err := os.MkdirTemp(tmpDir, "build-context-")
	if err != nil {
		return nil, nil, fmt.Errorf("build context: %w", err)
	}
	tree := &sourceTree{root: dir, what: "the build context"}
	ok := false
	defer func() {
		if !ok {
			tree.remove()
		}
	}()
	tr, err := decompress(r)
	if err != nil {
		return nil, nil, fmt.Errorf("build context: %w", err)
	}
	if _, err := archive.Unpack(dir, tr, &archive.UnpackOptions{Root: dir}); err != nil {
		return nil, nil, fmt.Errorf("build context: %w", err)
	}
	df, err := tree.readFile(dockerfile)
	if errors.Is(err, os.ErrNotExist) && dockerfile == "Dockerfile" {
		df, err = tree.readFile("dockerfile") // Docker's fallback
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read the Dockerfile %q from the build context: %w", dockerfile, err)
	}
	ignore, err := tree.readFile(".dockerignore")
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, nil, fmt.Errorf("read .dockerignore: %w", err)
	}
	if len(ignore) > 0 {
		ig, err := dockerignore.Parse(string(ignore))
		if err != nil {
			return nil, nil, err
		}
		if _, err := tree.removeIgnored(ig, ""); err != nil {
			return nil, nil, fmt.Errorf("apply .dockerignore: %w", err)
		}
	}
	ok = true
	return tree, df, nil
}

// decompress recognises a gzip or bzip2 stream by its magic bytes.
func decompress(r io.Reader) (io.Reader, error) {
	br := bufio.NewReader(r)
	magic, _ := br.Peek(6)
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		return gzip.NewReader(br)
	case bytes.HasPrefix(magic, []byte("BZh")):
		return bzip2.NewReader(br), nil
	case bytes.HasPrefix(magic, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		return nil, errors.New("xz-compressed tar streams are not supported (send a plain or gzip tar)")
	}
	return br, nil
}

// sourceTree is a directory COPY and ADD read from: the build context
// (unpacked, private to this build) or the mounted root filesystem of an
// image (COPY --from). Paths are resolved by the kernel, with openat2:
// in the context with RESOLVE_BENEATH, so that a symlink leading out of
// it is an error; in an image with RESOLVE_IN_ROOT, so that an absolute
// symlink means the image's own root, as it would in a container.
type sourceTree struct {
	root   string
	inRoot bool   // an image's root filesystem
	what   string // "the build context", "stage build", "image busybox"
	// release frees what holds the tree (the context's directory, an
	// image's container); nil: nothing
	release func() error
}

// remove deletes the context's directory.
func (t *sourceTree) remove() error {
	if t.release != nil {
		return t.release()
	}
	return os.RemoveAll(t.root)
}

// clean turns a source path into one relative to the tree's root. In the
// context, a path that climbs out ("../x") is refused.
func (t *sourceTree) clean(p string) (string, error) {
	if t.inRoot {
		return path.Clean("/" + p)[1:], nil
	}
	c := path.Clean(p)
	if path.IsAbs(c) {
		c = path.Clean(c[1:]) // "/x" in the context means the context's x
		if c == "" {
			c = "."
		}
	}
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", fmt.Errorf("%q is outside %s", p, t.what)
	}
	if c == "." {
		return "", nil
	}
	return c, nil
}

// open opens rel (relative to the root, "" for the root) with flags,
// resolved by the kernel so that it cannot lead out of the tree.
func (t *sourceTree) open(rel string, flags int) (*os.File, error) {
	root, err := unix.Open(t.root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", t.what, err)
	}
	defer unix.Close(root)
	how := unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC), Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS}
	if t.inRoot {
		how.Resolve = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS
	}
	name := rel
	if name == "" {
		name = "."
	}
	for i := 0; ; i++ {
		fd, err := unix.Openat2(root, name, &how)
		if (err == unix.EAGAIN || err == unix.EINTR) && i < 10 {
			continue
		}
		switch {
		case err == unix.EXDEV:
			return nil, fmt.Errorf("%q resolves outside %s (through a symlink)", rel, t.what)
		case err == unix.ENOENT:
			return nil, fmt.Errorf("%q: no such file in %s: %w", rel, t.what, os.ErrNotExist)
		case err != nil:
			return nil, fmt.Errorf("open %q in %s: %w", rel, t.what, err)
		}
		return os.NewFile(uintptr(fd), path.Join(t.root, rel)), nil
	}
}

// resolve follows rel's symlinks inside the tree and returns the path,
// relative to the root, of what it names, and its stat.
func (t *sourceTree) resolve(rel string) (string, unix.Stat_t, error) {
	var st unix.Stat_t
	f, err := t.open(rel, unix.O_PATH)
	if err != nil {
		return "", st, err
	}
	defer f.Close()
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return "", st, fmt.Errorf("stat %q in %s: %w", rel, t.what, err)
	}
	real, err := os.Readlink(archive.FdPath(int(f.Fd())))
	if err != nil {
		return "", st, fmt.Errorf("resolve %q in %s: %w", rel, t.what, err)
	}
	r, err := filepath.Rel(t.root, real)
	if err != nil || r == ".." || strings.HasPrefix(r, "../") {
		return "", st, fmt.Errorf("%q resolves outside %s", rel, t.what)
	}
	if r == "." {
		r = ""
	}
	return filepath.ToSlash(r), st, nil
}

// readFile reads a regular file of the tree.
func (t *sourceTree) readFile(rel string) ([]byte, error) {
	f, err := t.open(rel, unix.O_RDONLY)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, MaxDockerfileSize+1))
}

// readDir lists a directory of the tree, sorted.
func (t *sourceTree) readDir(rel string) ([]string, error) {
	f, err := t.open(rel, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("read directory %q of %s: %w", rel, t.what, err)
	}
	sort.Strings(names)
	return names, nil
}

// glob expands a cleaned source path with wildcards ('*', '?', '[')
// element by element, each matched with path.Match against the entries of
// the directory so far. A path without wildcards is returned as it is.
func (t *sourceTree) glob(rel string) ([]string, error) {
	if !strings.ContainsAny(rel, "*?[") {
		return []string{rel}, nil
	}
	matches := []string{""}
	for _, elem := range strings.Split(rel, "/") {
		var next []string
		for _, dir := range matches {
			if !strings.ContainsAny(elem, "*?[") {
				next = append(next, path.Join(dir, elem))
				continue
			}
			if _, err := path.Match(elem, ""); err != nil {
				return nil, fmt.Errorf("bad pattern %q: %w", rel, err)
			}
			names, err := t.readDir(dir)
			if errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ENOTDIR) {
				continue
			}
			if err != nil {
				return nil, err
			}
			for _, n := range names {
				if ok, _ := path.Match(elem, n); ok {
					next = append(next, path.Join(dir, n))
				}
			}
		}
		matches = next
	}
	return matches, nil
}

// removeIgnored removes what ig excludes below rel, children first; an
// excluded directory stays if an exception kept something in it. It
// reports whether rel itself is left.
func (t *sourceTree) removeIgnored(ig *dockerignore.Matcher, rel string) (bool, error) {
	f, err := t.open(rel, unix.O_PATH|unix.O_NOFOLLOW)
	if err != nil {
		return false, err
	}
	var st unix.Stat_t
	err = unix.Fstat(int(f.Fd()), &st)
	f.Close()
	if err != nil {
		return false, err
	}
	kept := rel == "" || !ig.Excluded(rel)
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		names, err := t.readDir(rel)
		if err != nil {
			return false, err
		}
		for _, n := range names {
			left, err := t.removeIgnored(ig, path.Join(rel, n))
			if err != nil {
				return false, err
			}
			kept = kept || left
		}
	}
	if kept {
		return true, nil
	}
	// rel's parent resolves beneath the root, and rel itself is not
	// followed: unlinkat removes the entry (a symlink, not its target).
	parent, err := t.open(path.Dir(rel), unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return false, err
	}
	defer parent.Close()
	flag := 0
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		flag = unix.AT_REMOVEDIR
	}
	if err := unix.Unlinkat(int(parent.Fd()), path.Base(rel), flag); err != nil {
		return false, fmt.Errorf("remove %q: %w", rel, err)
	}
	return false, nil
}
