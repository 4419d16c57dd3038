package build

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"minidock/archive"
)

// source is one thing a COPY or ADD puts into the image.
type source struct {
	tree    fileTree // a file or directory of the context or an image
	rel     string   // its path in tree, symlinks resolved ("": the root)
	isDir   bool
	archive bool   // ADD: a local tar archive, extracted at the destination
	name    string // the name a file takes in a destination directory
	data    []byte // a here-document's content
	file    string // a file ADD downloaded, on the host
	mode    int64  // data's and file's mode
	mtime   time.Time
}

// copy is COPY and ADD: the sources (context files and directories, a
// stage's or an image's files with --from, here-documents, and for ADD
// local tar archives to extract and URLs to download) are resolved and
// hashed; the step's cache key holds that digest, so a changed file
// invalidates the step and the ones after it. On a miss a container on
// the stage's image receives the files (owned by --chown, else 0:0, mode
// --chmod, else theirs) and is committed as one layer.
func (b *builder) copy(s *state, c *copyCmd) error {
	ex := b.expander(s)
	words, err := ex.words(c.srcs)
	if err != nil {
		return err
	}
	dest, err := ex.word(c.dest)
	if err != nil {
		return err
	}
	chown, err := ex.word(c.chown)
	if err != nil {
		return err
	}
	chmodText, err := ex.word(c.chmod)
	if err != nil {
		return err
	}
	var chmod *int64
	if chmodText != "" {
		m, err := parseChmod(chmodText)
		if err != nil {
			return err
		}
		chmod = &m
	}
	destPath, destIsDir := destination(s, dest)
	flags := ""
	for _, f := range []struct{ name, value string }{{"from", c.from}, {"chown", chown}, {"chmod", chmodText}} {
		if f.value != "" {
			flags += "--" + f.name + "=" + f.value + " "
		}
	}

	// 1. Where the files come from. With --from, the source image's ID
	// stands for its content first: a cache hit then needs no mount.
	var tree fileTree = b.context
	var keys []string
	if c.from != "" {
		id, what, err := b.copyFromImage(s, c)
		if err != nil {
			return err
		}
		idKey := cacheKey(s.image, &s.config, s.author, b.nop(s, fmt.Sprintf("%s %sfrom-image:%s %q in %s", c.ins.Cmd, flags, id, words, destPath)))
		if hit, err := b.cached(s, idKey); hit || err != nil {
			return err
		}
		keys = append(keys, idKey)
		if tree, err = b.mountImage(id, what); err != nil {
			return err
		}
	}
	srcs, err := b.sources(s, c, tree, words, ex)
	defer func() {
		for _, src := range srcs {
			if src.file != "" {
				os.Remove(src.file)
			}
		}
	}()
	if err != nil {
		return err
	}
	if len(srcs) > 1 && !destIsDir {
		return fmt.Errorf("with more than one source the destination must be a directory and end with a /: %q", dest)
	}

	// 2. The key: what the sources hold.
	kind, sum, err := hashSources(srcs)
	if err != nil {
		return err
	}
	createdBy := b.nop(s, fmt.Sprintf("%s %s%s:%s in %s ", c.ins.Cmd, flags, kind, sum, destPath))
	key := cacheKey(s.image, &s.config, s.author, createdBy)
	if hit, err := b.cached(s, key); hit || err != nil {
		return err
	}
	keys = append(keys, key)

	// 3. A container on the stage's image receives them; its upper dir
	// becomes the layer.
	ctr, err := b.backend.CreateContainer(b.ctx, ContainerConfig{Image: s.image, NetworkMode: "none"})
	if err != nil {
		return err
	}
	if err := writeSources(ctr.Root, destPath, destIsDir, srcs, chown, chmod); err != nil {
		return errors.Join(err, b.removeContainer(ctr.ID, true))
	}
	return b.commitContainer(s, ctr.ID, createdBy, keys...)
}

// destination makes COPY's destination absolute (relative ones start at
// WORKDIR) and tells whether it names a directory ("/" or "." at the end).
func destination(s *state, dest string) (string, bool) {
	isDir := strings.HasSuffix(dest, "/") || dest == "." || strings.HasSuffix(dest, "/.")
	if !path.IsAbs(dest) {
		wd := s.config.WorkingDir
		if wd == "" {
			wd = "/"
		}
		dest = path.Join(wd, dest)
	}
	return path.Clean(dest), isDir
}

// copyFromImage resolves COPY --from to an image ID: an earlier stage's
// result (by name or number), else an image (pulled when missing).
func (b *builder) copyFromImage(s *state, c *copyCmd) (id, what string, err error) {
	ref, err := b.metaExpander().word(c.from)
	if err != nil {
		return "", "", fmt.Errorf("--from: %w", err)
	}
	dep, err := b.plan.copyFromStage(ref, s.stage.index)
	if err != nil {
		return "", "", err
	}
	if dep != nil {
		return b.results[dep.index].image, "stage " + ref, nil
	}
	img, err := b.backend.GetImage(b.ctx, ref, GetImageOptions{Pull: b.opts.Pull, Platform: b.opts.Platform, Out: b.out.raw()})
	if err != nil {
		return "", "", fmt.Errorf("--from=%s: %w", ref, err)
	}
	return img.ID, "image " + ref, nil
}

// mountImage gives the root filesystem of image id, for reading: a
// container of it, not started, kept for the rest of the build.
func (b *builder) mountImage(id, what string) (*sourceTree, error) {
	if t, ok := b.mounted[id]; ok {
		return t, nil
	}
	ctr, err := b.backend.CreateContainer(b.ctx, ContainerConfig{Image: id, NetworkMode: "none"})
	if err != nil {
		return nil, fmt.Errorf("mount %s: %w", what, err)
	}
	t := &sourceTree{root: ctr.Root, what: what, release: func() error {
		return b.backend.RemoveContainer(context.WithoutCancel(b.ctx), ctr.ID)
	}}
	b.mounted[id] = t
	return t, nil
}

// sources resolves COPY's source words in tree: wildcards expanded,
// symlinks followed inside it, a path that leaves it refused, a missing
// one an error; here-documents; for ADD, URLs (downloaded) and local tar
// archives (marked for extraction).
func (b *builder) sources(s *state, c *copyCmd, tree fileTree, words []string, ex *expander) ([]*source, error) {
	var out []*source
	for _, w := range words {
		if isURL(w) {
			if !c.add {
				return out, fmt.Errorf("source %q is a URL: only ADD downloads", w)
			}
			if c.from != "" {
				return out, fmt.Errorf("ADD --from cannot take URLs")
			}
			src, err := b.download(w)
			if err != nil {
				return out, err
			}
			out = append(out, src)
			continue
		}
		rel, err := tree.clean(w)
		if err != nil {
			return out, fmt.Errorf("source %w", err)
		}
		matches, err := glob(tree, rel)
		if err != nil {
			return out, err
		}
		if len(matches) == 0 {
			return out, fmt.Errorf("source %q matches no file in %s", w, tree.describe())
		}
		for _, m := range matches {
			real, kind, err := tree.resolve(m)
			if errors.Is(err, os.ErrNotExist) && c.from == "" {
				return out, fmt.Errorf("source %q: no such file in the build context (or excluded by .dockerignore)", w)
			}
			if err != nil {
				return out, fmt.Errorf("source %q: %w", w, err)
			}
			src := &source{tree: tree, rel: real, isDir: kind == unix.S_IFDIR, name: path.Base("/" + m)}
			if c.add && c.from == "" && kind == unix.S_IFREG {
				src.archive = isArchive(tree, real)
			}
			out = append(out, src)
		}
	}
	for _, h := range c.ins.Heredocs {
		content := h.Content
		if h.Expand {
			var err error
			if content, err = ex.text(content); err != nil {
				return out, fmt.Errorf("here-document %s: %w", h.Name, err)
			}
		}
		out = append(out, &source{name: h.Name, data: []byte(content), mode: 0o644})
	}
	return out, nil
}

func isURL(s string) bool {
	return strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://")
}

// download fetches ADD's URL into a private file: mode 0600 and the
// Last-Modified time, as Docker gives it.
func (b *builder) download(rawURL string) (*source, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("source %q: %w", rawURL, err)
	}
	req, err := http.NewRequestWithContext(b.ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return nil, fmt.Errorf("download %s: %w", rawURL, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("download %s: %w", rawURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("download %s: %s", rawURL, resp.Status)
	}
	f, err := os.CreateTemp(b.opts.TempDir, "build-download-")
	if err != nil {
		return nil, fmt.Errorf("download %s: %w", rawURL, err)
	}
	src := &source{file: f.Name(), name: path.Base(u.Path), mode: 0o600}
	_, err = io.Copy(f, resp.Body)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return nil, fmt.Errorf("download %s: %w", rawURL, err)
	}
	if src.name == "/" || src.name == "." {
		src.name = ""
	}
	if t, err := http.ParseTime(resp.Header.Get("Last-Modified")); err == nil {
		src.mtime = t
	}
	return src, nil
}

// hashSources digests what the sources hold: for each file its name
// below the source, type, mode, link target and content's digest (not
// its owner or times: Docker's COPY cache compares contents), which the
// context knows from when it arrived (contextTree) and an image's files
// are read for. The kind is "file", "dir" or "multi", as Docker's history
// shows it.
func hashSources(srcs []*source) (kind, sum string, err error) {
	h := sha256.New()
	for _, src := range srcs {
		fmt.Fprintf(h, "source %q\n", src.name)
		switch {
		case src.data != nil:
			fmt.Fprintf(h, "data %d\n", len(src.data))
			h.Write(src.data)
		case src.file != "":
			if err := hashFile(h, src.file); err != nil {
				return "", "", err
			}
		default:
			err := src.tree.walk(src.rel, func(name string, hdr *tar.Header, content io.Reader, digest string) error {
				if content != nil && digest == "" {
					fh := sha256.New()
					if _, err := io.Copy(fh, content); err != nil {
						return fmt.Errorf("read %q of %s: %w", path.Join(src.rel, name), src.tree.describe(), err)
					}
					digest = hex.EncodeToString(fh.Sum(nil))
				}
				fmt.Fprintf(h, "%q %c %o %q %d %s\n", name, hdr.Typeflag, hdr.Mode, hdr.Linkname, hdr.Size, digest)
				return nil
			})
			if err != nil {
				return "", "", err
			}
		}
	}
	switch {
	case len(srcs) > 1:
		kind = "multi"
	case len(srcs) == 1 && srcs[0].isDir:
		kind = "dir"
	default:
		kind = "file"
	}
	return kind, hex.EncodeToString(h.Sum(nil)), nil
}

func hashFile(w io.Writer, p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(w, f)
	return err
}

// placement is where one source goes in the container.
type placement struct {
	src      *source
	target   string // absolute path of the file, or of the directory filled
	skipRoot bool   // a directory source into an existing directory: keep its metadata
}

// writeSources writes the sources into the container's root filesystem
// at root: one tar stream, unpacked by archive.Unpack in root mode, so
// every path (the destination's symlinks too) resolves inside the
// container as it would for its own processes. Where each source goes is
// decided first, from the container's files as they are.
func writeSources(root, destPath string, destIsDir bool, srcs []*source, chown string, chmod *int64) error {
	ctr := &sourceTree{root: root, what: "the container"}
	uid, gid, err := ctr.chownIDs(chown)
	if err != nil {
		return err
	}
	destExists := ctr.isDir(destPath)
	var plan []placement
	var mkdirs []string
	made := map[string]bool{}   // directories checked or made
	placed := map[string]bool{} // directories a source's root entry fills
	parents := func(dir string) {
		var p string
		for _, elem := range strings.Split(strings.Trim(dir, "/"), "/") {
			if elem == "" {
				continue
			}
			p += "/" + elem
			if made[p] {
				continue
			}
			made[p] = true
			if _, _, err := ctr.resolve(p[1:]); errors.Is(err, os.ErrNotExist) {
				mkdirs = append(mkdirs, p)
			}
		}
	}
	if len(srcs) == 0 {
		parents(destPath) // WORKDIR: the directory alone
	}
	for _, src := range srcs {
		switch {
		case src.archive:
			parents(destPath)
			plan = append(plan, placement{src: src, target: destPath})
		case src.isDir:
			// a new destination takes the source directory's own mode
			parents(path.Dir(destPath))
			plan = append(plan, placement{src: src, target: destPath, skipRoot: destExists || placed[destPath] || made[destPath]})
			placed[destPath] = true
		default:
			target := destPath
			if destIsDir || destExists {
				if src.name == "" {
					return fmt.Errorf("cannot name the downloaded file: give a file name as the destination")
				}
				target = path.Join(destPath, src.name)
			}
			parents(path.Dir(target))
			plan = append(plan, placement{src: src, target: target})
		}
	}

	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		tw := tar.NewWriter(pw)
		err := func() error {
			for _, d := range mkdirs {
				if err := tw.WriteHeader(&tar.Header{Name: d[1:] + "/", Typeflag: tar.TypeDir, Mode: 0o755, Uid: uid, Gid: gid}); err != nil {
					return err
				}
			}
			for _, p := range plan {
				if err := p.write(tw, uid, gid, chmod); err != nil {
					return err
				}
			}
			return tw.Close()
		}()
		pw.CloseWithError(err)
		done <- err
	}()
	_, err = archive.Unpack(root, pr, &archive.UnpackOptions{Root: root})
	pr.CloseWithError(errors.New("unpack stopped"))
	werr := <-done
	if err != nil {
		return fmt.Errorf("write into the container: %w", err)
	}
	return werr
}

// write puts one source into the tar stream at its target.
func (p placement) write(tw *tar.Writer, uid, gid int, chmod *int64) error {
	src, target := p.src, strings.TrimPrefix(p.target, "/")
	mode := func(m int64) int64 {
		if chmod != nil {
			return *chmod
		}
		return m
	}
	switch {
	case src.data != nil:
		hdr := &tar.Header{Name: target, Typeflag: tar.TypeReg, Mode: mode(src.mode), Uid: uid, Gid: gid, Size: int64(len(src.data)), ModTime: src.mtime}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err := tw.Write(src.data)
		return err
	case src.file != "":
		f, err := os.Open(src.file)
		if err != nil {
			return err
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			return err
		}
		hdr := &tar.Header{Name: target, Typeflag: tar.TypeReg, Mode: mode(src.mode), Uid: uid, Gid: gid, Size: st.Size(), ModTime: src.mtime}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err = io.Copy(tw, f)
		return err
	case src.archive:
		return p.extract(tw)
	}
	return src.tree.walk(src.rel, func(name string, hdr *tar.Header, r io.Reader, _ string) error {
		if name == "" && p.skipRoot {
			return nil
		}
		hdr.Name = path.Join(target, name)
		if hdr.Name == "" {
			hdr.Name = "."
		}
		if hdr.Typeflag == tar.TypeDir {
			hdr.Name += "/"
		}
		if hdr.Typeflag == tar.TypeLink {
			hdr.Linkname = path.Join(target, hdr.Linkname)
		}
		hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = uid, gid, "", ""
		if hdr.Typeflag != tar.TypeSymlink {
			hdr.Mode = mode(hdr.Mode)
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if r == nil {
			return nil
		}
		_, err := io.Copy(tw, r)
		return err
	})
}

// extract copies the entries of ADD's local tar archive under the
// target, with their own owners and modes, as Docker does. Names are made
// relative ("/" and "./" dropped); ".." is refused.
func (p placement) extract(tw *tar.Writer) error {
	f, err := p.src.tree.openFile(p.src.rel)
	if err != nil {
		return err
	}
	defer f.Close()
	r, err := decompress(f)
	if err != nil {
		return err
	}
	target := strings.TrimPrefix(p.target, "/")
	clean := func(n string) (string, error) {
		c := path.Clean("/" + n)
		for _, e := range strings.Split(n, "/") {
			if e == ".." {
				return "", fmt.Errorf("archive %q: entry %q climbs out of the destination", p.src.rel, n)
			}
		}
		return path.Join(target, c[1:]), nil
	}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("archive %q: %w", p.src.rel, err)
		}
		if hdr.Name, err = clean(hdr.Name); err != nil {
			return err
		}
		if hdr.Name == "" {
			hdr.Name = "."
		}
		if hdr.Typeflag == tar.TypeLink {
			if hdr.Linkname, err = clean(hdr.Linkname); err != nil {
				return err
			}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
}
