package build

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"

	"minidock/archive"
	"minidock/build/dockerignore"
)

// The build context is kept as the client sent it, not unpacked: the
// contents of its files are appended, as they arrive, to one spool
// (spool.go: memory, then a file with no name), and each entry is
// indexed: its header, where its content lies in the spool, and the
// SHA-256 of that content, computed on the way in. A COPY whose step is
// cached needs nothing but those digests; a COPY that runs reads the
// content back from the spool as it writes the container's tar stream.
// So a rebuild creates no file for the context, and reads none of its
// bytes a second time.

// contextTree is the indexed build context.
type contextTree struct {
	spool *spool // the tar's file contents, end to end
	root  *node  // the context's root directory
}

// node is one entry of the context: a directory (with its children), a
// regular file (its content at offset in the spool), a symlink, or a
// hard link to an earlier regular file.
type node struct {
	hdr    tar.Header       // as the client sent it (Name: the cleaned path)
	kids   map[string]*node // a directory's entries, by name
	offset int64            // a regular file's content in the spool
	digest string           // a regular file's content's SHA-256, hex
	target *node            // a hard link's file
}

func newDir(name string) *node {
	return &node{hdr: tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: 0o755}, kids: map[string]*node{}}
}

// openContext reads the build context, a tar stream (plain, gzip or
// bzip2) sent by the client, into a spool (memory, then a file with no
// name made in tmpDir) and indexes it (contextTree.add: absolute names,
// "..", device nodes, symlinks whose relative target climbs out and hard
// links to anything but an earlier file are refused with an error naming
// the entry). Then it reads the Dockerfile and .dockerignore and drops
// from the index what .dockerignore excludes.
func openContext(r io.Reader, tmpDir, dockerfile string) (*contextTree, []byte, error) {
	t := &contextTree{spool: &spool{dir: tmpDir, memMax: memSpoolSize}, root: newDir("")}
	ok := false
	defer func() {
		if !ok {
			t.remove()
		}
	}()
	tr, err := decompress(r)
	if err != nil {
		return nil, nil, fmt.Errorf("build context: %w", err)
	}
	if err := t.read(tr); err != nil {
		return nil, nil, fmt.Errorf("build context: %w", err)
	}
	df, err := t.readFile(dockerfile)
	if errors.Is(err, os.ErrNotExist) && dockerfile == "Dockerfile" {
		df, err = t.readFile("dockerfile") // Docker's fallback
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read the Dockerfile %q from the build context: %w", dockerfile, err)
	}
	ignore, err := t.readFile(".dockerignore")
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, nil, fmt.Errorf("read .dockerignore: %w", err)
	}
	if len(ignore) > 0 {
		m, err := dockerignore.Parse(string(ignore))
		if err != nil {
			return nil, nil, err
		}
		t.removeIgnored(m, t.root, "")
	}
	ok = true
	return t, df, nil
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

// read indexes every entry of the tar stream r, appending file contents
// to the spool and hashing them on the way.
func (t *contextTree) read(r io.Reader) error {
	var total int64
	h := sha256.New()
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("read tar: %w", err)
		}
		n, err := t.add(hdr)
		if err != nil {
			return fmt.Errorf("refusing entry %q: %w", hdr.Name, err)
		}
		if n == nil || n.hdr.Typeflag != tar.TypeReg {
			continue
		}
		if total += hdr.Size; hdr.Size > archive.DefaultMaxFileSize || total > archive.DefaultMaxLayerSize {
			return fmt.Errorf("refusing entry %q: the context is larger than %d bytes", hdr.Name, archive.DefaultMaxLayerSize)
		}
		h.Reset()
		offset := t.spool.size
		size, err := t.spool.fill(tr, h)
		if err != nil {
			return fmt.Errorf("read %q: %w", hdr.Name, err)
		}
		n.offset, n.hdr.Size, n.digest = offset, size, hex.EncodeToString(h.Sum(nil))
	}
	// Read what follows the end-of-archive marker: the client's request
	// body ends there.
	_, err := io.Copy(io.Discard, r)
	return err
}

// add indexes one tar entry and returns its node (nil for an entry that
// makes none). It refuses what would lead out of the context.
func (t *contextTree) add(hdr *tar.Header) (*node, error) {
	switch hdr.Typeflag {
	case tar.TypeXGlobalHeader:
		return nil, nil
	case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse:
		hdr.Typeflag = tar.TypeReg
	case tar.TypeDir, tar.TypeFifo:
	case tar.TypeSymlink:
		l := hdr.Linkname
		if l == "" || strings.IndexByte(l, 0) >= 0 {
			return nil, errors.New("bad symlink target")
		}
		// An absolute target is never followed in the context (resolve
		// refuses it); a relative one must stay inside it when read from
		// where the link sits.
		if j := path.Join(path.Dir(hdr.Name), l); !path.IsAbs(l) && (j == ".." || strings.HasPrefix(j, "../")) {
			return nil, fmt.Errorf("symlink target %q points outside the build context", l)
		}
	case tar.TypeLink:
	case tar.TypeChar, tar.TypeBlock:
		return nil, fmt.Errorf("device node %d:%d not allowed in a build context", hdr.Devmajor, hdr.Devminor)
	default:
		return nil, fmt.Errorf("unsupported tar entry type %q", string(hdr.Typeflag))
	}
	name, err := archive.CleanName(hdr.Name)
	if err != nil {
		return nil, err
	}
	if name == "." {
		if hdr.Typeflag != tar.TypeDir {
			return nil, errors.New("the context's root must be a directory")
		}
		return nil, nil
	}
	dir, base := path.Split(name)
	parent, err := t.mkdirs(strings.TrimSuffix(dir, "/"))
	if err != nil {
		return nil, err
	}
	n := &node{hdr: *hdr}
	n.hdr.Name = name
	switch hdr.Typeflag {
	case tar.TypeDir:
		if old := parent.kids[base]; old != nil && old.kids != nil {
			n.kids = old.kids // a directory described again
		} else {
			n.kids = map[string]*node{}
		}
	case tar.TypeLink:
		target, err := archive.CleanName(hdr.Linkname)
		if err == nil {
			n.target = t.lookup(target)
		}
		if n.target == nil || n.target.hdr.Typeflag != tar.TypeReg {
			return nil, fmt.Errorf("hard link target %q is not a file of the context before it", hdr.Linkname)
		}
	}
	parent.kids[base] = n
	return n, nil
}

// mkdirs returns the directory node of dir ("": the root), making the
// directories the tar did not list; a parent that is not a directory
// (a file, a symlink) is refused: an entry never goes through a symlink.
func (t *contextTree) mkdirs(dir string) (*node, error) {
	n := t.root
	if dir == "" {
		return n, nil
	}
	for _, elem := range strings.Split(dir, "/") {
		next := n.kids[elem]
		switch {
		case next == nil:
			next = newDir(path.Join(n.hdr.Name, elem))
			n.kids[elem] = next
		case next.kids == nil:
			return nil, fmt.Errorf("%q is not a directory", next.hdr.Name)
		}
		n = next
	}
	return n, nil
}

// lookup finds the node of a cleaned path, no symlink followed.
func (t *contextTree) lookup(p string) *node {
	n := t.root
	if p == "." || p == "" {
		return n
	}
	for _, elem := range strings.Split(p, "/") {
		if n.kids == nil {
			return nil
		}
		if n = n.kids[elem]; n == nil {
			return nil
		}
	}
	return n
}

func (t *contextTree) describe() string { return "the build context" }

// remove frees the spool.
func (t *contextTree) remove() error { return t.spool.Close() }

// clean turns a source word into a path relative to the context's root:
// "/x" is the context's x, and a path that climbs out ("../x") is
// refused.
func (t *contextTree) clean(p string) (string, error) {
	c := path.Clean(p)
	if path.IsAbs(c) {
		c = path.Clean(c[1:])
	}
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", fmt.Errorf("%q is outside the build context", p)
	}
	if c == "." {
		return "", nil
	}
	return c, nil
}

// resolve follows rel's symlinks as openat2 RESOLVE_BENEATH does in a
// directory: a relative target is taken from the link's directory, an
// absolute one or a ".." above the root is refused (it would lead out
// of the context), and 40 links in a row are a loop.
func (t *contextTree) resolve(rel string) (string, uint32, error) {
	n, real, err := t.follow(rel)
	if err != nil {
		return "", 0, err
	}
	return real, kindOf(n), nil
}

// follow walks rel element by element from the root, following every
// symlink (the last element's too), and returns the node reached and its
// path.
func (t *contextTree) follow(rel string) (*node, string, error) {
	var at []*node // the directories walked down, root excluded
	cur := t.root
	elems := strings.Split(rel, "/")
	for hops := 0; len(elems) > 0; {
		elem := elems[0]
		elems = elems[1:]
		switch elem {
		case "", ".":
			continue
		case "..":
			if len(at) == 0 {
				return nil, "", fmt.Errorf("%q resolves outside the build context (through a symlink)", rel)
			}
			at = at[:len(at)-1]
			cur = t.root
			if len(at) > 0 {
				cur = at[len(at)-1]
			}
			continue
		}
		if cur.kids == nil {
			return nil, "", fmt.Errorf("%q: %q is not a directory in the build context: %w", rel, cur.hdr.Name, unix.ENOTDIR)
		}
		next := cur.kids[elem]
		if next == nil {
			return nil, "", fmt.Errorf("%q: no such file in the build context: %w", rel, os.ErrNotExist)
		}
		if next.hdr.Typeflag == tar.TypeSymlink {
			if hops++; hops > 40 {
				return nil, "", fmt.Errorf("%q: too many levels of symbolic links in the build context", rel)
			}
			if path.IsAbs(next.hdr.Linkname) {
				return nil, "", fmt.Errorf("%q resolves outside the build context (through a symlink)", rel)
			}
			elems = append(strings.Split(next.hdr.Linkname, "/"), elems...)
			continue
		}
		at, cur = append(at, next), next
	}
	return cur, cur.hdr.Name, nil
}

// kindOf is a node's file type, as stat(2) gives it.
func kindOf(n *node) uint32 {
	switch n.hdr.Typeflag {
	case tar.TypeDir:
		return unix.S_IFDIR
	case tar.TypeSymlink:
		return unix.S_IFLNK
	case tar.TypeFifo:
		return unix.S_IFIFO
	}
	return unix.S_IFREG
}

func (t *contextTree) readDir(rel string) ([]string, error) {
	n, _, err := t.follow(rel)
	if err != nil {
		return nil, err
	}
	if n.kids == nil {
		return nil, fmt.Errorf("%q: not a directory in the build context: %w", rel, unix.ENOTDIR)
	}
	return sortedKeys(n.kids), nil
}

// content is a regular file's bytes in the spool.
func (t *contextTree) content(n *node) *io.SectionReader {
	if n.target != nil {
		n = n.target
	}
	return io.NewSectionReader(t.spool, n.offset, n.hdr.Size)
}

func (t *contextTree) openFile(rel string) (io.ReadCloser, error) {
	n, _, err := t.follow(rel)
	if err != nil {
		return nil, err
	}
	if kindOf(n) != unix.S_IFREG {
		return nil, fmt.Errorf("%q is not a regular file in the build context", rel)
	}
	return io.NopCloser(t.content(n)), nil
}

// readFile reads a regular file of the context (at most
// MaxDockerfileSize+1 bytes: it is a Dockerfile or a .dockerignore).
func (t *contextTree) readFile(rel string) ([]byte, error) {
	f, err := t.openFile(rel)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(io.LimitReader(f, MaxDockerfileSize+1))
}

// walk gives rel and what is below it, parents first, names sorted. A
// hard link is given as a regular file with its target's content.
func (t *contextTree) walk(rel string, fn func(name string, hdr *tar.Header, content io.Reader, digest string) error) error {
	n := t.lookup(rel)
	if n == nil {
		return fmt.Errorf("%q: no such file in the build context: %w", rel, os.ErrNotExist)
	}
	var visit func(name string, n *node) error
	visit = func(name string, n *node) error {
		hdr := n.hdr // a copy: the caller renames it
		hdr.Name = name
		var content io.Reader
		digest := ""
		switch {
		case n.target != nil:
			hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeReg, "", n.target.hdr.Size
			content, digest = t.content(n), n.target.digest
		case hdr.Typeflag == tar.TypeReg:
			content, digest = t.content(n), n.digest
		}
		if err := fn(name, &hdr, content, digest); err != nil {
			return err
		}
		for _, k := range sortedKeys(n.kids) {
			if err := visit(path.Join(name, k), n.kids[k]); err != nil {
				return err
			}
		}
		return nil
	}
	return visit("", n)
}

// removeIgnored drops from the index what m excludes below n (whose path
// is rel), children first; an excluded directory stays if an exception
// kept something in it. It reports whether n itself is left.
func (t *contextTree) removeIgnored(m *dockerignore.Matcher, n *node, rel string) bool {
	kept := rel == "" || !m.Excluded(rel)
	for _, name := range sortedKeys(n.kids) {
		if t.removeIgnored(m, n.kids[name], path.Join(rel, name)) {
			kept = true
		} else {
			delete(n.kids, name)
		}
	}
	return kept
}
