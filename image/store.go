// Package image is minidock's content-addressed image store: blobs kept as
// an OCI image layout under <root>/image, layers unpacked once into
// <root>/overlay/<chain-id>/diff and shared, references (name:tag,
// name@digest) normalised as Docker does, Docker and OCI archives loaded
// and saved, rootfs tarballs imported, and containers' overlay root
// filesystems prepared, mounted, diffed, exported and committed. See
// docs/images.md; package overlay does the kernel side.
package image

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"minidock/archive"
)

// ErrNotFound is wrapped by every "no such image/container rootfs" error.
var ErrNotFound = errors.New("not found")

// ErrConflict is wrapped when an image cannot be removed without force.
var ErrConflict = errors.New("conflict")

// Store is the image store of one data root. Its methods are safe for
// concurrent use; they are serialised by one lock.
type Store struct {
	// Unpack bounds what layer tarballs may contain (device nodes, sizes);
	// set it before use. The zero value refuses device nodes. Its
	// MaxLayerSize also bounds what one load or import expands to in all
	// (newBudget).
	Unpack archive.UnpackOptions

	root     string // data root, e.g. /var/lib/minidock
	imageDir string // <root>/image: the OCI layout
	layerDir string // <root>/overlay: unpacked layers and short links
	ctrDir   string // <root>/containers: per-container upper/work/merged

	mu     sync.Mutex
	refs   map[string]digest.Digest // normalised reference -> manifest digest
	images map[digest.Digest]*Image // manifest digest -> image
	// buildCache maps build step keys to their images (buildcache.go),
	// read on first use
	buildCache map[string]cacheEntry
}

// Image is one image held by the store.
type Image struct {
	ID       digest.Digest   // digest of the config blob: Docker's image ID
	Manifest digest.Digest   // digest of the manifest blob in the store
	Refs     []string        // normalised references naming it, sorted
	Config   ocispec.Image   // the parsed config blob
	DiffIDs  []digest.Digest // digests of the uncompressed layer tars, base first
	ChainIDs []digest.Digest // identities of the layer stacks, base first
	Size     int64           // total bytes of the layer tars
	Sources  []Source        // registries it was pulled from or pushed to
	// Parent is the image this one was made from by a commit or a build
	// step (Docker's parent chain, parents.go); "" for an image imported,
	// loaded or pulled.
	Parent digest.Digest
}

func (img *Image) clone() *Image {
	c := *img
	c.Refs = append([]string(nil), img.Refs...)
	c.Sources = append([]Source(nil), img.Sources...)
	return &c
}

// Open opens (creating if needed) the store under data root root, loads
// its index, and removes what an interrupted operation left behind.
func Open(root string) (*Store, error) {
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("open image store: %w", err)
	}
	s := &Store{
		root:     root,
		imageDir: filepath.Join(root, "image"),
		layerDir: filepath.Join(root, "overlay"),
		ctrDir:   filepath.Join(root, "containers"),
		refs:     map[string]digest.Digest{},
		images:   map[digest.Digest]*Image{},
	}
	for _, d := range []string{
		filepath.Join(s.imageDir, "blobs", "sha256"), filepath.Join(s.imageDir, "tmp"),
		filepath.Join(s.imageDir, "rootfs"), filepath.Join(s.layerDir, "l"), s.ctrDir,
	} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("open image store %q: %w", root, err)
		}
	}
	// Leftovers of interrupted operations.
	if ents, err := os.ReadDir(filepath.Join(s.imageDir, "tmp")); err == nil {
		for _, e := range ents {
			os.RemoveAll(filepath.Join(s.imageDir, "tmp", e.Name()))
		}
	}
	if ents, err := os.ReadDir(s.layerDir); err == nil {
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), ".") {
				os.RemoveAll(filepath.Join(s.layerDir, e.Name()))
			}
		}
	}
	layout := filepath.Join(s.imageDir, ocispec.ImageLayoutFile)
	if _, err := os.Stat(layout); os.IsNotExist(err) {
		b, _ := json.Marshal(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})
		if err := writeFileAtomic(layout, b); err != nil {
			return nil, err
		}
	}
	if err := s.loadIndex(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.gc(); err != nil {
		return nil, err
	}
	return s, nil
}

// Root is the data root the store was opened on.
func (s *Store) Root() string { return s.root }

// ---- blobs ----

func (s *Store) blobPath(d digest.Digest) string {
	return filepath.Join(s.imageDir, "blobs", d.Algorithm().String(), d.Encoded())
}

// tempBlob is content spooled to a temporary file, hashed on the way.
type tempBlob struct {
	path   string
	digest digest.Digest
	size   int64
}

// spool copies r to a new file under image/tmp, computing its sha256, and
// fsyncs it.
func (s *Store) spool(r io.Reader) (*tempBlob, error) {
	f, err := os.CreateTemp(filepath.Join(s.imageDir, "tmp"), "blob-")
	if err != nil {
		return nil, fmt.Errorf("spool blob: %w", err)
	}
	f.Close()
	tb, err := spoolFile(f.Name(), r, nil)
	if err != nil {
		os.Remove(f.Name())
	}
	return tb, err
}

// newBudget bounds one load or import: what it spools and unpacks in all
// (Unpack.MaxLayerSize), and the free space it leaves (archive.Budget).
func (s *Store) newBudget() *archive.Budget {
	limit := s.Unpack.MaxLayerSize
	if limit <= 0 {
		limit = archive.DefaultMaxLayerSize
	}
	return &archive.Budget{Limit: limit, Reserve: s.Unpack.Budget.ReserveOrDefault()}
}

// spoolFile copies r into the existing file p, hashing it, and fsyncs
// it. Runs of zeros stay holes (archive.CopySparse); b, when set, counts
// what is written.
func spoolFile(p string, r io.Reader, b *archive.Budget) (*tempBlob, error) {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return nil, fmt.Errorf("spool blob: %w", err)
	}
	h := sha256.New()
	n, err := archive.CopySparse(f, io.TeeReader(r, h), nil, b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("spool blob to %q: %w", f.Name(), err)
	}
	return &tempBlob{path: f.Name(), digest: digest.NewDigest(digest.SHA256, h), size: n}, nil
}

// commitBlob moves a spooled blob to its content address (atomic rename).
func (s *Store) commitBlob(tb *tempBlob) error {
	dst := s.blobPath(tb.digest)
	if _, err := os.Stat(dst); err == nil {
		os.Remove(tb.path)
		return nil
	}
	if err := os.Rename(tb.path, dst); err != nil {
		return fmt.Errorf("store blob %s: %w", tb.digest, err)
	}
	return syncDir(filepath.Dir(dst))
}

// writeBlob stores b, checking it against want when want is set.
func (s *Store) writeBlob(b []byte, want digest.Digest) (digest.Digest, error) {
	d := digest.FromBytes(b)
	if want != "" && want != d {
		return "", fmt.Errorf("blob digest mismatch: expected %s, content is %s", want, d)
	}
	dst := s.blobPath(d)
	if _, err := os.Stat(dst); err == nil {
		return d, nil
	}
	return d, writeFileAtomic(dst, b)
}

// readBlob reads a small blob and verifies it against its digest.
func (s *Store) readBlob(d digest.Digest) ([]byte, error) {
	if err := d.Validate(); err != nil {
		return nil, fmt.Errorf("read blob %q: %w", d, err)
	}
	b, err := os.ReadFile(s.blobPath(d))
	if err != nil {
		return nil, fmt.Errorf("read blob: %w", err)
	}
	if got := digest.FromBytes(b); got != d {
		return nil, fmt.Errorf("blob %s is corrupt: digest mismatch: expected %s, content is %s", s.blobPath(d), d, got)
	}
	return b, nil
}

// writeFileAtomic writes data to p through a temporary file in the same
// directory: write, fsync, rename, fsync the directory.
func writeFileAtomic(p string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(p), ".tmp-"+filepath.Base(p)+"-")
	if err != nil {
		return fmt.Errorf("write %q: %w", p, err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(f.Name(), p)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("write %q: %w", p, err)
	}
	return syncDir(filepath.Dir(p))
}

// syncDir fsyncs a directory so that a rename into it is durable.
func syncDir(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("fsync %q: %w", dir, err)
	}
	defer unix.Close(fd)
	if err := unix.Fsync(fd); err != nil {
		return fmt.Errorf("fsync %q: %w", dir, err)
	}
	return nil
}

// ---- index: the list of images and their references ----

func (s *Store) indexPath() string { return filepath.Join(s.imageDir, "index.json") }

// loadIndex reads image/index.json: one descriptor per (manifest,
// reference), a manifest without references has one without annotation.
func (s *Store) loadIndex() error {
	b, err := os.ReadFile(s.indexPath())
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read image index: %w", err)
	}
	var idx ocispec.Index
	if err := json.Unmarshal(b, &idx); err != nil {
		return fmt.Errorf("parse image index %q: %w", s.indexPath(), err)
	}
	for _, d := range idx.Manifests {
		img, ok := s.images[d.Digest]
		if !ok {
			if img, err = s.readImage(d.Digest); err != nil {
				return fmt.Errorf("load image index: %w", err)
			}
			s.images[d.Digest] = img
		}
		if ref := d.Annotations[ocispec.AnnotationRefName]; ref != "" {
			s.refs[ref] = d.Digest
			img.Refs = append(img.Refs, ref)
		}
		if p := d.Annotations[parentAnnotation]; p != "" {
			img.Parent = digest.Digest(p)
		}
	}
	for _, img := range s.images {
		sort.Strings(img.Refs)
	}
	return s.loadSources()
}

// saveIndex writes image/index.json atomically. The annotation holds the
// full normalised reference, so the directory is a valid OCI layout that
// skopeo and umoci can read ("oci:<root>/image:docker.io/library/x:tag").
func (s *Store) saveIndex() error {
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{}}
	idx.SchemaVersion = 2
	mds := make([]digest.Digest, 0, len(s.images))
	for md := range s.images {
		mds = append(mds, md)
	}
	sort.Slice(mds, func(i, j int) bool { return mds[i] < mds[j] })
	for _, md := range mds {
		img := s.images[md]
		st, err := os.Stat(s.blobPath(md))
		if err != nil {
			return fmt.Errorf("save image index: %w", err)
		}
		desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: md, Size: st.Size()}
		if len(img.Refs) == 0 {
			desc.Annotations = parentAnnotations(img)
			idx.Manifests = append(idx.Manifests, desc)
		}
		for _, r := range img.Refs {
			d := desc
			d.Annotations = parentAnnotations(img)
			if d.Annotations == nil {
				d.Annotations = map[string]string{}
			}
			d.Annotations[ocispec.AnnotationRefName] = r
			idx.Manifests = append(idx.Manifests, d)
		}
	}
	b, err := json.MarshalIndent(idx, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileAtomic(s.indexPath(), b); err != nil {
		return err
	}
	return s.saveSources()
}

// readImage builds an Image from its manifest and config blobs.
func (s *Store) readImage(md digest.Digest) (*Image, error) {
	mb, err := s.readBlob(md)
	if err != nil {
		return nil, err
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(mb, &m); err != nil {
		return nil, fmt.Errorf("parse manifest %s: %w", md, err)
	}
	cb, err := s.readBlob(m.Config.Digest)
	if err != nil {
		return nil, err
	}
	img := &Image{ID: m.Config.Digest, Manifest: md}
	if err := json.Unmarshal(cb, &img.Config); err != nil {
		return nil, fmt.Errorf("parse image config %s: %w", m.Config.Digest, err)
	}
	img.DiffIDs = img.Config.RootFS.DiffIDs
	img.ChainIDs = ChainIDs(img.DiffIDs)
	for _, l := range m.Layers {
		img.Size += l.Size
	}
	return img, nil
}

// ChainIDs computes the chain ID of every layer stack of an image: the
// first is the first diff ID, each next one is
// sha256(previous chain ID + " " + diff ID). Two images share a chain ID
// exactly when they share the whole stack of layers below and including it.
func ChainIDs(diffIDs []digest.Digest) []digest.Digest {
	out := make([]digest.Digest, len(diffIDs))
	for i, d := range diffIDs {
		if i == 0 {
			out[i] = d
			continue
		}
		out[i] = digest.FromString(out[i-1].String() + " " + d.String())
	}
	return out
}

// ---- layers ----

// layerMeta is <root>/overlay/<chain-hex>/layer.json.
type layerMeta struct {
	ChainID digest.Digest `json:"chain_id"`
	DiffID  digest.Digest `json:"diff_id"`
	Parent  digest.Digest `json:"parent,omitempty"`
	Link    string        `json:"link"` // name of the short link in overlay/l/
	Size    int64         `json:"size"` // bytes of file content
}

func (s *Store) layerPath(chain digest.Digest) string {
	return filepath.Join(s.layerDir, chain.Encoded())
}

// LayerDiffPath is where the layer stack chain is unpacked.
func (s *Store) LayerDiffPath(chain digest.Digest) string {
	return filepath.Join(s.layerPath(chain), "diff")
}

func (s *Store) readLayer(chain digest.Digest) (*layerMeta, error) {
	b, err := os.ReadFile(filepath.Join(s.layerPath(chain), "layer.json"))
	if err != nil {
		return nil, fmt.Errorf("layer %s: %w", chain, err)
	}
	var m layerMeta
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("layer %s: parse layer.json: %w", chain, err)
	}
	return &m, nil
}

var linkEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// ensureLayer makes sure the layer with diffID on top of parent (a chain
// ID, empty for a base layer) is unpacked, reading the layer tar from the
// blob file blob, and returns its chain ID. The layer is unpacked into a
// temporary directory, checked against diffID (unpackLayer), then given a
// short link, synced and renamed into place (placeLayer), so it either
// exists whole or not at all.
func (s *Store) ensureLayer(parent, diffID digest.Digest, blob string, b *archive.Budget) (digest.Digest, error) {
	chain := chainOf(parent, diffID)
	if _, err := os.Stat(filepath.Join(s.layerPath(chain), "layer.json")); err == nil {
		return chain, nil
	}
	f, err := os.Open(blob)
	if err != nil {
		return "", fmt.Errorf("unpack layer %s: %w", diffID, err)
	}
	defer f.Close()
	l, err := s.unpackLayer(diffID, f, b)
	if err != nil {
		return "", err
	}
	defer l.Discard()
	return s.placeLayer(parent, l)
}

// chainOf is the chain ID of layer diffID on top of the stack parent.
func chainOf(parent, diffID digest.Digest) digest.Digest {
	if parent == "" {
		return diffID
	}
	return digest.FromString(parent.String() + " " + diffID.String())
}

// StagedLayer is a layer unpacked into a temporary directory under the
// layer directory and checked against its diff ID, not yet in place:
// placeLayer renames it to its chain ID, or Discard removes it.
type StagedLayer struct {
	dir    string // <root>/overlay/.tmp-..., holding diff/
	diffID digest.Digest
	size   int64     // bytes of file content
	blob   *tempBlob // the layer tar spooled on the way (StageLayer), or nil
}

// DiffID is the digest of the layer's uncompressed tar.
func (l *StagedLayer) DiffID() digest.Digest { return l.diffID }

// Discard removes what is left of a staged layer (nothing once placed).
func (l *StagedLayer) Discard() {
	if l.dir != "" {
		os.RemoveAll(l.dir)
		l.dir = ""
	}
	if l.blob != nil {
		os.Remove(l.blob.path) // gone already once committed
	}
}

// unpackLayer extracts the layer tar read from r into a new temporary
// directory of the layer dir, reading r to its end, and checks its sha256
// against diffID; b, when set, is the budget of the load it is part of.
// Nothing is left behind on error.
func (s *Store) unpackLayer(diffID digest.Digest, r io.Reader, b *archive.Budget) (_ *StagedLayer, err error) {
	tmp, err := os.MkdirTemp(s.layerDir, ".tmp-"+diffID.Encoded()[:12]+"-")
	if err != nil {
		return nil, fmt.Errorf("unpack layer %s: %w", diffID, err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	h := sha256.New()
	tr := io.TeeReader(r, h)
	opts := s.Unpack
	if b != nil {
		opts.Budget = b
	}
	size, err := archive.Unpack(filepath.Join(tmp, "diff"), tr, &opts)
	if err != nil {
		return nil, fmt.Errorf("unpack layer %s: %w", diffID, err)
	}
	// The tar's end marker may come before the end of the stream (padding,
	// and for a download the rest that its digest covers): read it all.
	if _, err := io.Copy(io.Discard, tr); err != nil {
		return nil, fmt.Errorf("unpack layer %s: %w", diffID, err)
	}
	if got := digest.NewDigest(digest.SHA256, h); got != diffID {
		return nil, fmt.Errorf("unpack layer: digest mismatch: expected %s, content is %s", diffID, got)
	}
	return &StagedLayer{dir: tmp, diffID: diffID, size: size}, nil
}

// placeLayer puts a staged layer in place as the layer diffID on top of
// parent: a short link, layer.json, syncfs, and a rename to its chain ID
// directory. When that layer exists already the staged copy is dropped.
func (s *Store) placeLayer(parent digest.Digest, l *StagedLayer) (digest.Digest, error) {
	chain := chainOf(parent, l.diffID)
	if _, err := os.Stat(filepath.Join(s.layerPath(chain), "layer.json")); err == nil {
		os.RemoveAll(l.dir)
		l.dir = ""
		return chain, nil
	}
	link := ""
	ok := false
	defer func() {
		if !ok && link != "" {
			os.Remove(filepath.Join(s.layerDir, "l", link))
		}
	}()
	for i := 0; ; i++ {
		var b [10]byte
		rand.Read(b[:])
		link = linkEncoding.EncodeToString(b[:]) // 16 characters
		err := os.Symlink(filepath.Join("..", chain.Encoded(), "diff"), filepath.Join(s.layerDir, "l", link))
		if err == nil {
			break
		}
		if !os.IsExist(err) || i > 10 {
			link = ""
			return "", fmt.Errorf("unpack layer %s: short link: %w", l.diffID, err)
		}
	}
	meta, _ := json.Marshal(layerMeta{ChainID: chain, DiffID: l.diffID, Parent: parent, Link: link, Size: l.size})
	if err := os.WriteFile(filepath.Join(l.dir, "layer.json"), meta, 0o644); err != nil {
		return "", fmt.Errorf("unpack layer %s: %w", l.diffID, err)
	}
	if fd, err := unix.Open(l.dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err == nil {
		err = unix.Syncfs(fd)
		unix.Close(fd)
		if err != nil {
			return "", fmt.Errorf("unpack layer %s: syncfs: %w", l.diffID, err)
		}
	}
	if err := os.Rename(l.dir, s.layerPath(chain)); err != nil {
		return "", fmt.Errorf("unpack layer %s: %w", l.diffID, err)
	}
	l.dir = ""
	ok = true
	return chain, syncDir(s.layerDir)
}

// lowerDirs gives the short-link paths of a layer stack (chain IDs base
// first), top-most first, ready for overlay.Mount.Lower.
func (s *Store) lowerDirs(chains []digest.Digest) ([]string, error) {
	out := make([]string, len(chains))
	for i, c := range chains {
		m, err := s.readLayer(c)
		if err != nil {
			return nil, err
		}
		out[len(chains)-1-i] = filepath.Join(s.layerDir, "l", m.Link)
	}
	return out, nil
}

// ---- reference counting and garbage collection ----

// LayerRefs counts, for every unpacked layer stack (chain ID), the images
// and container root filesystems that use it. A layer is removed as soon
// as its count drops to zero.
func (s *Store) LayerRefs() (map[digest.Digest]int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	refs, _, err := s.counts()
	return refs, err
}

// counts computes reference counts of layers and the set of live blobs
// from their sources of truth (the index and the rootfs records), so that
// they can never drift from them.
func (s *Store) counts() (map[digest.Digest]int, map[digest.Digest]bool, error) {
	layers := map[digest.Digest]int{}
	blobs := map[digest.Digest]bool{}
	for md, img := range s.images {
		blobs[md], blobs[img.ID] = true, true
		for _, src := range img.Sources {
			blobs[src.Manifest] = true
		}
		for _, d := range img.DiffIDs {
			blobs[d] = true
		}
		for _, c := range img.ChainIDs {
			layers[c]++
		}
	}
	recs, err := s.rootfsRecords()
	if err != nil {
		return nil, nil, err
	}
	for _, r := range recs {
		blobs[r.ImageID] = true
		for _, d := range r.DiffIDs {
			blobs[d] = true
		}
		for _, c := range r.ChainIDs {
			layers[c]++
		}
	}
	return layers, blobs, nil
}

var hexRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-f0-9]{64}$`) })

// gc removes every unpacked layer, short link and blob that nothing
// counts any more, and returns the chain IDs of the layers removed.
func (s *Store) gc() ([]digest.Digest, error) {
	layers, blobs, err := s.counts()
	if err != nil {
		return nil, err
	}
	var removed []digest.Digest
	ents, err := os.ReadDir(s.layerDir)
	if err != nil {
		return nil, fmt.Errorf("gc: %w", err)
	}
	for _, e := range ents {
		if !hexRE().MatchString(e.Name()) {
			continue
		}
		chain := digest.NewDigestFromEncoded(digest.SHA256, e.Name())
		if layers[chain] > 0 {
			continue
		}
		if m, err := s.readLayer(chain); err == nil && m.Link != "" {
			os.Remove(filepath.Join(s.layerDir, "l", m.Link))
		}
		// Rename first, so that a crash mid-removal leaves a dot-name that
		// Open cleans, never a half-removed layer under its real name.
		doomed := filepath.Join(s.layerDir, ".del-"+e.Name())
		if err := os.Rename(filepath.Join(s.layerDir, e.Name()), doomed); err != nil {
			return removed, fmt.Errorf("gc: remove layer %s: %w", chain, err)
		}
		if err := os.RemoveAll(doomed); err != nil {
			return removed, fmt.Errorf("gc: remove layer %s: %w", chain, err)
		}
		removed = append(removed, chain)
	}
	// Short links whose layer is gone (after a crash).
	if ents, err := os.ReadDir(filepath.Join(s.layerDir, "l")); err == nil {
		for _, e := range ents {
			p := filepath.Join(s.layerDir, "l", e.Name())
			if _, err := os.Stat(p); os.IsNotExist(err) {
				os.Remove(p)
			}
		}
	}
	bdir := filepath.Join(s.imageDir, "blobs", "sha256")
	bents, err := os.ReadDir(bdir)
	if err != nil {
		return removed, fmt.Errorf("gc: %w", err)
	}
	for _, e := range bents {
		d := digest.NewDigestFromEncoded(digest.SHA256, e.Name())
		if !blobs[d] {
			if err := os.Remove(filepath.Join(bdir, e.Name())); err != nil {
				return removed, fmt.Errorf("gc: remove blob %s: %w", d, err)
			}
		}
	}
	sort.Slice(removed, func(i, j int) bool { return removed[i] < removed[j] })
	return removed, nil
}
