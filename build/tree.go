package build

import (
	"archive/tar"
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
)

// fileTree is where COPY and ADD read their sources: the build context
// (contextTree: the tar the client sent, indexed, never unpacked) or the
// root filesystem of an image or a stage (sourceTree: a directory,
// mounted for COPY --from). Both resolve a path the same way: symlinks
// are followed inside the tree and never lead out of it.
type fileTree interface {
	// describe names the tree in errors: "the build context", "stage x".
	describe() string
	// clean turns a source word into a path relative to the root ("":
	// the root); in the context a path that climbs out is refused.
	clean(p string) (string, error)
	// resolve follows rel's symlinks and returns the path, relative to
	// the root, of what it names and its type (unix.S_IFDIR, ...). A
	// missing path wraps os.ErrNotExist.
	resolve(rel string) (real string, kind uint32, err error)
	// readDir lists a directory's names, sorted.
	readDir(rel string) ([]string, error)
	// openFile opens a regular file (a resolved path) for reading.
	openFile(rel string) (io.ReadCloser, error)
	// walk calls fn for rel (a resolved path, named "") and, for a
	// directory, everything below it, parents first, names sorted and
	// relative to rel; symlinks below rel are given as they are, not
	// followed. digest is the content's SHA-256 (hex) when the tree
	// knows it already, else "".
	walk(rel string, fn func(name string, hdr *tar.Header, content io.Reader, digest string) error) error
	// remove frees what holds the tree.
	remove() error
}

// glob expands a cleaned source path with wildcards ('*', '?', '[')
// element by element, each matched with path.Match against the entries of
// the directory so far. A path without wildcards is returned as it is.
func glob(t fileTree, rel string) ([]string, error) {
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

// isArchive reports whether a regular file of the tree is a tar archive
// (plain, gzip or bzip2), which ADD extracts.
func isArchive(t fileTree, rel string) bool {
	f, err := t.openFile(rel)
	if err != nil {
		return false
	}
	defer f.Close()
	r, err := decompress(f)
	if err != nil {
		return false
	}
	_, err = tar.NewReader(r).Next()
	return err == nil
}

// sourceTree is a root filesystem on the host: an image's or a stage's,
// mounted through a container that is never started (COPY --from), or a
// step's container that COPY writes into. Paths are resolved by the
// kernel, with openat2 RESOLVE_IN_ROOT: an absolute symlink means the
// tree's own root, as it would in a container, and nothing leads out.
type sourceTree struct {
	root string
	what string // "stage build", "image busybox", "the container"
	// release frees what holds the tree (an image's container); nil:
	// nothing
	release func() error
}

func (t *sourceTree) describe() string { return t.what }

func (t *sourceTree) remove() error {
	if t.release != nil {
		return t.release()
	}
	return nil
}

func (t *sourceTree) clean(p string) (string, error) { return path.Clean("/" + p)[1:], nil }

// open opens rel (relative to the root, "" for the root) with flags,
// resolved by the kernel inside the root.
func (t *sourceTree) open(rel string, flags int) (*os.File, error) {
	root, err := unix.Open(t.root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", t.what, err)
	}
	defer unix.Close(root)
	how := unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC), Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS}
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
		case err == unix.ENOENT:
			return nil, fmt.Errorf("%q: no such file in %s: %w", rel, t.what, os.ErrNotExist)
		case err != nil:
			return nil, fmt.Errorf("open %q in %s: %w", rel, t.what, err)
		}
		return os.NewFile(uintptr(fd), path.Join(t.root, rel)), nil
	}
}

func (t *sourceTree) resolve(rel string) (string, uint32, error) {
	f, err := t.open(rel, unix.O_PATH)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return "", 0, fmt.Errorf("stat %q in %s: %w", rel, t.what, err)
	}
	real, err := os.Readlink(archive.FdPath(int(f.Fd())))
	if err != nil {
		return "", 0, fmt.Errorf("resolve %q in %s: %w", rel, t.what, err)
	}
	r, err := filepath.Rel(t.root, real)
	if err != nil || r == ".." || strings.HasPrefix(r, "../") {
		return "", 0, fmt.Errorf("%q resolves outside %s", rel, t.what)
	}
	if r == "." {
		r = ""
	}
	return filepath.ToSlash(r), st.Mode & unix.S_IFMT, nil
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

func (t *sourceTree) openFile(rel string) (io.ReadCloser, error) {
	return t.open(rel, unix.O_RDONLY)
}

// walk reads rel by archive.WriteEntry, which walks by descriptors and
// never follows a symlink below rel.
func (t *sourceTree) walk(rel string, fn func(name string, hdr *tar.Header, content io.Reader, digest string) error) error {
	dir, base := filepath.Join(t.root, path.Dir("/"+rel)), path.Base("/"+rel)
	if rel == "" {
		dir, base = t.root, ""
	}
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := archive.WriteEntry(pw, dir, base, func(n string) string { return n })
		pw.CloseWithError(err)
		done <- err
	}()
	err := func() error {
		tr := tar.NewReader(pr)
		for {
			hdr, err := tr.Next()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return fmt.Errorf("read %q of %s: %w", rel, t.what, err)
			}
			name := below(base, hdr.Name)
			if hdr.Typeflag == tar.TypeLink {
				hdr.Linkname = below(base, hdr.Linkname)
			}
			if err := fn(name, hdr, tr, ""); err != nil {
				return err
			}
		}
	}()
	pr.CloseWithError(errors.New("copy stopped"))
	if werr := <-done; err == nil && werr != nil && !errors.Is(werr, io.ErrClosedPipe) {
		err = werr
	}
	return err
}

// below names an entry of WriteEntry relative to the source base.
func below(base, name string) string {
	name = strings.TrimSuffix(name, "/")
	if base == "" {
		return name
	}
	if name == base {
		return ""
	}
	return strings.TrimPrefix(name, base+"/")
}

// isDir reports whether p (absolute) is a directory in the tree, its
// symlinks followed inside it.
func (t *sourceTree) isDir(p string) bool {
	_, kind, err := t.resolve(strings.TrimPrefix(p, "/"))
	return err == nil && kind == unix.S_IFDIR
}
