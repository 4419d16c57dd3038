package image

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/bzip2"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"minidock/archive"
)

// Media types of Docker's image manifest schema 2, accepted wherever the
// OCI ones are.
const (
	MediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	MediaTypeDockerConfig       = "application/vnd.docker.container.image.v1+json"
	MediaTypeDockerLayer        = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	MediaTypeDockerForeignLayer = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
)

// annotationImageName is where containerd and Docker (25+) put the full
// image name in an OCI archive's index.json.
const annotationImageName = "io.containerd.image.name"

// maxJSONBlob bounds the manifests, indexes and configs read into memory.
const maxJSONBlob = 16 << 20

// Loaded is one image LoadArchive stored: Ref is its normalised reference,
// empty when the archive gave it no name (then only ID names it).
type Loaded struct {
	Ref string
	ID  digest.Digest
}

// decompress sniffs r's first bytes and returns the uncompressed stream:
// gzip and bzip2 are read, xz and zstd are refused with a clear error,
// anything else is taken as a plain tar.
func decompress(r io.Reader) (io.Reader, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	magic, _ := br.Peek(6)
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("gunzip: %w", err)
		}
		return zr, nil
	case bytes.HasPrefix(magic, []byte("BZh")):
		return bzip2.NewReader(br), nil
	case bytes.HasPrefix(magic, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		return nil, errors.New("xz-compressed data is not supported (decompress it first)")
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return nil, errors.New("zstd-compressed data is not supported (decompress it first)")
	}
	return br, nil
}

// Import stores a root filesystem tarball (plain, gzip or bzip2) as a new
// single-layer image for this machine's platform, as `docker import` does,
// applies the config changes (see ApplyChanges) and tags it ref (may be
// empty).
func (s *Store) Import(r io.Reader, ref string, changes []string) (*Image, error) {
	var refs []string
	if ref != "" {
		pr, err := ParseReference(ref)
		if err != nil {
			return nil, err
		}
		if pr.Digest != "" {
			return nil, fmt.Errorf("import: reference %q cannot contain a digest", ref)
		}
		refs = []string{pr.String()}
	}
	now := time.Now().UTC()
	cfg := ocispec.Image{
		Created:  &now,
		Platform: ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH},
		History:  []ocispec.History{{Created: &now, CreatedBy: "minidock import", Comment: "Imported from tarball"}},
	}
	if err := ApplyChanges(&cfg.Config, changes); err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	dr, err := decompress(r)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	b := s.newBudget()
	tb, err := s.spoolTo(filepath.Join(s.imageDir, "tmp"), dr, b)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	defer os.Remove(tb.path)
	cfg.RootFS = ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{tb.digest}}
	cb, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	img, err := s.addImage(cb, []layerBlob{{diffID: tb.digest, size: tb.size, temp: tb, budget: b}}, refs)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	return img.clone(), nil
}

// spooledArchive is an image archive spooled to a temporary directory: its
// regular files by cleaned name, each hashed on the way in, and its links.
// Names are only map keys: nothing is ever created under an archive's own
// names, so a hostile name cannot point anywhere.
type spooledArchive struct {
	files map[string]*tempBlob
	links map[string]string           // name -> cleaned target name
	plain map[digest.Digest]*tempBlob // decompressed layers, by raw digest
	s     *Store
	dir   string
	// what spooling, decompressing and unpacking the archive may take
	budget *archive.Budget
}

func archiveName(n string) string {
	return strings.TrimPrefix(path.Clean("/"+n), "/")
}

// spoolArchive reads a (possibly compressed) tar into a temporary dir.
func (s *Store) spoolArchive(r io.Reader) (*spooledArchive, error) {
	dir, err := os.MkdirTemp(filepath.Join(s.imageDir, "tmp"), "load-")
	if err != nil {
		return nil, fmt.Errorf("load archive: %w", err)
	}
	a := &spooledArchive{files: map[string]*tempBlob{}, links: map[string]string{}, plain: map[digest.Digest]*tempBlob{}, s: s, dir: dir,
		budget: s.newBudget()}
	dr, err := decompress(r)
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("load archive: %w", err)
	}
	tr := tar.NewReader(dr)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("load archive: read tar: %w", err)
		}
		name := archiveName(hdr.Name)
		switch hdr.Typeflag {
		case tar.TypeReg:
			tb, err := s.spoolTo(dir, tr, a.budget)
			if err != nil {
				os.RemoveAll(dir)
				return nil, fmt.Errorf("load archive: entry %q: %w", hdr.Name, err)
			}
			a.files[name] = tb
		case tar.TypeSymlink:
			a.links[name] = archiveName(path.Join(path.Dir(name), hdr.Linkname))
		case tar.TypeLink:
			a.links[name] = archiveName(hdr.Linkname)
		}
	}
	return a, nil
}

// spoolTo is spool into a given directory, within budget b.
func (s *Store) spoolTo(dir string, r io.Reader, b *archive.Budget) (*tempBlob, error) {
	f, err := os.CreateTemp(dir, "f-")
	if err != nil {
		return nil, err
	}
	f.Close()
	tb, err := spoolFile(f.Name(), r, b)
	if err != nil {
		os.Remove(f.Name())
	}
	return tb, err
}

func (a *spooledArchive) close() { os.RemoveAll(a.dir) }

// file finds a regular file of the archive by name, following links.
func (a *spooledArchive) file(name string) (*tempBlob, error) {
	n := archiveName(name)
	for i := 0; i < 16; i++ {
		if tb, ok := a.files[n]; ok {
			return tb, nil
		}
		t, ok := a.links[n]
		if !ok {
			break
		}
		n = t
	}
	return nil, fmt.Errorf("archive has no file %q", name)
}

// readJSON reads a small file of the archive.
func readJSON(tb *tempBlob, name string, v any) ([]byte, error) {
	if tb.size > maxJSONBlob {
		return nil, fmt.Errorf("%s is %d bytes, too big for JSON metadata", name, tb.size)
	}
	b, err := os.ReadFile(tb.path)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return nil, fmt.Errorf("parse %s: %w", name, err)
	}
	return b, nil
}

// uncompressed returns the layer tar of a layer file, decompressing it
// into a new temporary file if it is compressed.
func (a *spooledArchive) uncompressed(tb *tempBlob) (*tempBlob, error) {
	if p, ok := a.plain[tb.digest]; ok {
		return p, nil
	}
	f, err := os.Open(tb.path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var magic [6]byte
	n, _ := io.ReadFull(f, magic[:])
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	out := tb
	if n >= 2 && (magic[0] == 0x1f && magic[1] == 0x8b || magic[0] == 'B' && magic[1] == 'Z' || magic[0] == 0xfd || magic[0] == 0x28) {
		dr, err := decompress(f)
		if err != nil {
			return nil, err
		}
		if out, err = a.s.spoolTo(a.dir, dr, a.budget); err != nil {
			return nil, fmt.Errorf("decompress: %w", err)
		}
	}
	a.plain[tb.digest] = out
	return out, nil
}

// digestFromName recognises file names that state their content's digest:
// blobs/sha256/<hex>, <hex>.json, <hex>.tar.
func digestFromName(name string) digest.Digest {
	n := archiveName(name)
	if strings.HasPrefix(n, "blobs/sha256/") && hexRE().MatchString(path.Base(n)) {
		return digest.NewDigestFromEncoded(digest.SHA256, path.Base(n))
	}
	b := path.Base(n)
	for _, ext := range []string{".json", ".tar"} {
		if h := strings.TrimSuffix(b, ext); h != b && hexRE().MatchString(h) {
			return digest.NewDigestFromEncoded(digest.SHA256, h)
		}
	}
	return ""
}

// checkNamed verifies a file whose name states its digest.
func checkNamed(name string, tb *tempBlob) error {
	if want := digestFromName(name); want != "" && want != tb.digest {
		return fmt.Errorf("%s: digest mismatch: name says %s, content is %s", name, want, tb.digest)
	}
	return nil
}

// pendingImage is an image read and verified from an archive, not yet
// stored.
type pendingImage struct {
	config []byte
	layers []layerBlob
	refs   []string
}

// LoadArchive stores the images of an archive read from r (docker load):
// Docker's format (manifest.json + config + layer tars, as `docker save`
// and `skopeo copy docker-archive:` write) or an OCI image layout tarball
// (oci-layout + index.json + blobs/, as `skopeo copy oci-archive:` writes),
// either possibly gzipped. Every blob is checked against the digest that
// names it, and every layer against its diff ID in the config: a mismatch
// is an error naming both digests, and nothing of that archive is stored.
func (s *Store) LoadArchive(r io.Reader) ([]Loaded, error) {
	a, err := s.spoolArchive(r)
	if err != nil {
		return nil, err
	}
	defer a.close()
	var pending []pendingImage
	switch {
	case a.files["manifest.json"] != nil:
		pending, err = a.docker()
	case a.files["index.json"] != nil:
		pending, err = a.oci()
	default:
		return nil, errors.New("load archive: neither manifest.json (Docker) nor index.json (OCI) found")
	}
	if err != nil {
		return nil, fmt.Errorf("load archive: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Loaded
	for _, p := range pending {
		img, err := s.addImage(p.config, p.layers, p.refs)
		if err != nil {
			return out, fmt.Errorf("load archive: %w", err)
		}
		if len(p.refs) == 0 {
			out = append(out, Loaded{ID: img.ID})
		}
		for _, r := range p.refs {
			out = append(out, Loaded{Ref: r, ID: img.ID})
		}
	}
	return out, nil
}

// dockerManifest is one entry of a Docker archive's manifest.json.
type dockerManifest struct {
	Config   string
	RepoTags []string
	Layers   []string
}

func (a *spooledArchive) docker() ([]pendingImage, error) {
	var entries []dockerManifest
	if _, err := readJSON(a.files["manifest.json"], "manifest.json", &entries); err != nil {
		return nil, err
	}
	var out []pendingImage
	for _, e := range entries {
		ctb, err := a.file(e.Config)
		if err != nil {
			return nil, err
		}
		if err := checkNamed(e.Config, ctb); err != nil {
			return nil, err
		}
		var cfg ocispec.Image
		cb, err := readJSON(ctb, e.Config, &cfg)
		if err != nil {
			return nil, err
		}
		p := pendingImage{config: cb}
		if len(cfg.RootFS.DiffIDs) != len(e.Layers) {
			return nil, fmt.Errorf("config %s lists %d layers, manifest.json %d", e.Config, len(cfg.RootFS.DiffIDs), len(e.Layers))
		}
		for i, ln := range e.Layers {
			ltb, err := a.file(ln)
			if err != nil {
				return nil, err
			}
			if err := checkNamed(ln, ltb); err != nil {
				return nil, err
			}
			plain, err := a.uncompressed(ltb)
			if err != nil {
				return nil, fmt.Errorf("layer %s: %w", ln, err)
			}
			if want := cfg.RootFS.DiffIDs[i]; plain.digest != want {
				return nil, fmt.Errorf("layer %s: digest mismatch: config says %s, content is %s", ln, want, plain.digest)
			}
			p.layers = append(p.layers, layerBlob{diffID: plain.digest, size: plain.size, temp: plain, budget: a.budget})
		}
		for _, t := range e.RepoTags {
			r, err := ParseReference(t)
			if err != nil {
				return nil, fmt.Errorf("manifest.json: %w", err)
			}
			p.refs = append(p.refs, r.String())
		}
		out = append(out, p)
	}
	return out, nil
}

func (a *spooledArchive) oci() ([]pendingImage, error) {
	lt, err := a.file(ocispec.ImageLayoutFile)
	if err != nil {
		return nil, fmt.Errorf("not an OCI layout: %w", err)
	}
	var layout ocispec.ImageLayout
	if _, err := readJSON(lt, ocispec.ImageLayoutFile, &layout); err != nil {
		return nil, err
	}
	if layout.Version == "" {
		return nil, errors.New("oci-layout has no imageLayoutVersion")
	}
	var idx ocispec.Index
	if _, err := readJSON(a.files["index.json"], "index.json", &idx); err != nil {
		return nil, err
	}
	var out []pendingImage
	for _, d := range idx.Manifests {
		refs, err := refsFromAnnotations(d.Annotations)
		if err != nil {
			return nil, err
		}
		if err := a.ociDescriptor(d, refs, 0, &out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// refsFromAnnotations names an image of an OCI archive: the full name
// containerd and Docker write, else org.opencontainers.image.ref.name
// when it is a whole reference ("busybox:1.36"). A bare tag ("latest")
// names no repository, so such an image loads untagged.
func refsFromAnnotations(ann map[string]string) ([]string, error) {
	n := ann[annotationImageName]
	if n == "" {
		rn := ann[ocispec.AnnotationRefName]
		if !strings.ContainsAny(rn, ":/@") {
			return nil, nil
		}
		n = rn
	}
	r, err := ParseReference(n)
	if err != nil {
		return nil, fmt.Errorf("index.json: %w", err)
	}
	return []string{r.String()}, nil
}

// blob returns the verified blob a descriptor points at.
func (a *spooledArchive) blob(d ocispec.Descriptor) (*tempBlob, error) {
	if err := d.Digest.Validate(); err != nil {
		return nil, fmt.Errorf("descriptor digest %q: %w", d.Digest, err)
	}
	if d.Digest.Algorithm() != digest.SHA256 {
		return nil, fmt.Errorf("blob %s: only sha256 is supported", d.Digest)
	}
	name := "blobs/sha256/" + d.Digest.Encoded()
	tb, err := a.file(name)
	if err != nil {
		return nil, err
	}
	if tb.digest != d.Digest {
		return nil, fmt.Errorf("%s: digest mismatch: expected %s, content is %s", name, d.Digest, tb.digest)
	}
	if d.Size > 0 && tb.size != d.Size {
		return nil, fmt.Errorf("%s: size mismatch: expected %d, content is %d bytes", name, d.Size, tb.size)
	}
	return tb, nil
}

func (a *spooledArchive) ociDescriptor(d ocispec.Descriptor, refs []string, depth int, out *[]pendingImage) error {
	if depth > 4 {
		return errors.New("index nesting too deep")
	}
	tb, err := a.blob(d)
	if err != nil {
		return err
	}
	var probe struct {
		MediaType string          `json:"mediaType"`
		Manifests json.RawMessage `json:"manifests"`
	}
	if _, err := readJSON(tb, d.Digest.String(), &probe); err != nil {
		return err
	}
	mt := d.MediaType
	if mt == "" {
		mt = probe.MediaType
	}
	if mt == "" && probe.Manifests != nil {
		mt = ocispec.MediaTypeImageIndex
	}
	switch mt {
	case ocispec.MediaTypeImageIndex, MediaTypeDockerManifestList:
		var idx ocispec.Index
		readJSON(tb, d.Digest.String(), &idx)
		pick, err := pickPlatform(idx.Manifests)
		if err != nil {
			return fmt.Errorf("index %s: %w", d.Digest, err)
		}
		return a.ociDescriptor(pick, refs, depth+1, out)
	case ocispec.MediaTypeImageManifest, MediaTypeDockerManifest, "":
	default:
		return fmt.Errorf("%s: unsupported media type %q", d.Digest, mt)
	}
	var m ocispec.Manifest
	if _, err := readJSON(tb, d.Digest.String(), &m); err != nil {
		return err
	}
	switch m.Config.MediaType {
	case ocispec.MediaTypeImageConfig, MediaTypeDockerConfig, "":
	default:
		return fmt.Errorf("manifest %s: config media type %q is not an image config", d.Digest, m.Config.MediaType)
	}
	ctb, err := a.blob(m.Config)
	if err != nil {
		return fmt.Errorf("manifest %s: config: %w", d.Digest, err)
	}
	var cfg ocispec.Image
	cb, err := readJSON(ctb, m.Config.Digest.String(), &cfg)
	if err != nil {
		return err
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return fmt.Errorf("manifest %s has %d layers, its config %d", d.Digest, len(m.Layers), len(cfg.RootFS.DiffIDs))
	}
	p := pendingImage{config: cb, refs: refs}
	for i, l := range m.Layers {
		if strings.Contains(l.MediaType, "zstd") {
			return fmt.Errorf("layer %s: zstd-compressed layers are not supported", l.Digest)
		}
		ltb, err := a.blob(l)
		if err != nil {
			return fmt.Errorf("manifest %s: layer: %w", d.Digest, err)
		}
		plain, err := a.uncompressed(ltb)
		if err != nil {
			return fmt.Errorf("layer %s: %w", l.Digest, err)
		}
		if want := cfg.RootFS.DiffIDs[i]; plain.digest != want {
			return fmt.Errorf("layer %s: digest mismatch: config says %s, content is %s", l.Digest, want, plain.digest)
		}
		p.layers = append(p.layers, layerBlob{diffID: plain.digest, size: plain.size, temp: plain, budget: a.budget})
	}
	*out = append(*out, p)
	return nil
}

// pickPlatform chooses the manifest for this machine (linux/GOARCH) from
// an index, or its only entry.
func pickPlatform(ds []ocispec.Descriptor) (ocispec.Descriptor, error) {
	for _, d := range ds {
		if d.Platform != nil && d.Platform.OS == "linux" && d.Platform.Architecture == runtime.GOARCH {
			return d, nil
		}
	}
	if len(ds) == 1 {
		return ds[0], nil
	}
	return ocispec.Descriptor{}, fmt.Errorf("no manifest for linux/%s among %d", runtime.GOARCH, len(ds))
}

// Save writes the images refs resolve to as one tarball that is both a
// Docker archive (manifest.json, repositories) and an OCI image layout
// (oci-layout, index.json), sharing the blobs under blobs/sha256/, as
// Docker 25+ does: `docker load`, `skopeo copy docker-archive:` and
// `skopeo copy oci-archive:` / `umoci` all read it. Layers are written
// uncompressed, so each layer blob's digest is its diff ID.
func (s *Store) Save(refs []string, w io.Writer) error {
	type saved struct {
		img  *Image
		refs []Reference
	}
	var list []*saved
	byID := map[digest.Digest]*saved{}
	files := map[digest.Digest]*os.File{}
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	// Open every blob under the lock: an open file keeps its content
	// even if the image is removed while the (possibly slow) writer runs.
	err := func() error {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, ref := range refs {
			img, full, err := s.resolve(ref)
			if err != nil {
				return fmt.Errorf("save: %w", err)
			}
			sv := byID[img.ID]
			if sv == nil {
				sv = &saved{img: img.clone()}
				byID[img.ID] = sv
				list = append(list, sv)
			}
			if full != "" {
				if r, err := ParseReference(full); err == nil && r.Tag != "" {
					sv.refs = append(sv.refs, r)
				}
			}
			for _, d := range append([]digest.Digest{img.Manifest, img.ID}, img.DiffIDs...) {
				if files[d] != nil {
					continue
				}
				f, err := os.Open(s.blobPath(d))
				if err != nil {
					return fmt.Errorf("save: %w", err)
				}
				files[d] = f
			}
		}
		return nil
	}()
	if err != nil {
		return err
	}

	tw := tar.NewWriter(w)
	epoch := time.Unix(0, 0)
	writeFile := func(name string, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(data)), ModTime: epoch}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	for _, d := range []string{"blobs/", "blobs/sha256/"} {
		if err := tw.WriteHeader(&tar.Header{Name: d, Typeflag: tar.TypeDir, Mode: 0o755, ModTime: epoch}); err != nil {
			return fmt.Errorf("save: %w", err)
		}
	}
	written := map[digest.Digest]bool{}
	blobName := func(d digest.Digest) string { return "blobs/sha256/" + d.Encoded() }
	writeBlob := func(d digest.Digest) error {
		if written[d] {
			return nil
		}
		written[d] = true
		f := files[d]
		st, err := f.Stat()
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Name: blobName(d), Typeflag: tar.TypeReg, Mode: 0o644, Size: st.Size(), ModTime: epoch}); err != nil {
			return err
		}
		n, err := io.CopyBuffer(struct{ io.Writer }{tw}, f, make([]byte, 1<<20))
		if err == nil && n != st.Size() {
			err = fmt.Errorf("blob %s changed size while being saved", d)
		}
		return err
	}
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{}}
	idx.SchemaVersion = 2
	var dm []dockerManifest
	repos := map[string]map[string]string{}
	for _, sv := range list {
		img := sv.img
		dme := dockerManifest{Config: blobName(img.ID), RepoTags: []string{}}
		for _, d := range img.DiffIDs {
			if err := writeBlob(d); err != nil {
				return fmt.Errorf("save %s: %w", img.ID, err)
			}
			dme.Layers = append(dme.Layers, blobName(d))
		}
		for _, d := range []digest.Digest{img.ID, img.Manifest} {
			if err := writeBlob(d); err != nil {
				return fmt.Errorf("save %s: %w", img.ID, err)
			}
		}
		mst, _ := files[img.Manifest].Stat()
		desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: img.Manifest, Size: mst.Size()}
		if len(sv.refs) == 0 {
			idx.Manifests = append(idx.Manifests, desc)
		}
		for _, r := range sv.refs {
			d := desc
			d.Annotations = map[string]string{annotationImageName: r.String(), ocispec.AnnotationRefName: r.Tag}
			idx.Manifests = append(idx.Manifests, d)
			dme.RepoTags = append(dme.RepoTags, r.FamiliarString())
			if len(img.DiffIDs) > 0 {
				if repos[r.FamiliarName()] == nil {
					repos[r.FamiliarName()] = map[string]string{}
				}
				repos[r.FamiliarName()][r.Tag] = img.DiffIDs[len(img.DiffIDs)-1].Encoded()
			}
		}
		dm = append(dm, dme)
	}
	layout, _ := json.Marshal(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})
	ib, _ := json.Marshal(idx)
	mb, _ := json.Marshal(dm)
	rb, _ := json.Marshal(repos)
	for _, f := range []struct {
		name string
		data []byte
	}{{ocispec.ImageLayoutFile, layout}, {"index.json", ib}, {"manifest.json", mb}, {"repositories", rb}} {
		if err := writeFile(f.name, f.data); err != nil {
			return fmt.Errorf("save: write %s: %w", f.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("save: %w", err)
	}
	return nil
}
