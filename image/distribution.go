package image

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// What the registry client (package registry) needs from the store: to
// unpack layers as they download, to add a pulled image with the
// registry's manifest kept beside the store's own, and to read blobs for a
// push. The store's own manifest of an image lists its layers
// uncompressed (the diff IDs); a registry's manifest lists them as they
// travelled (usually gzip). A Source remembers the registry's manifest so
// that pushing the image back to that registry sends the same bytes and
// gets the same digest, and so that a push to another repository of that
// registry can mount the compressed layers instead of uploading them.

// Source is where an image was pulled from or pushed to.
type Source struct {
	// Name is the repository, e.g. "localhost:5000/team/app".
	Name string `json:"name"`
	// Digest is what the reference resolved to on the registry: the
	// manifest, or the index (manifest list) that led to it. name@Digest
	// is the image's repo digest.
	Digest digest.Digest `json:"digest"`
	// Manifest is the digest of the registry's image manifest for this
	// platform; its bytes are kept as a blob of the store.
	Manifest digest.Digest `json:"manifest"`
}

// RepoDigests are the image's "name@digest" references on registries, as
// Docker's image inspect shows them.
func (img *Image) RepoDigests() []string {
	out := []string{}
	for _, s := range img.Sources {
		out = append(out, s.Name+"@"+s.Digest.String())
	}
	sort.Strings(out)
	return out
}

// HasLayer tells whether the layer stack chain is unpacked with its layer
// tar stored, so that a pull need not download it.
func (s *Store) HasLayer(chain, diffID digest.Digest) bool {
	if _, err := os.Stat(filepath.Join(s.layerPath(chain), "layer.json")); err != nil {
		return false
	}
	_, err := os.Stat(s.blobPath(diffID))
	return err == nil
}

// StageLayer unpacks the uncompressed layer tar read from r, which must be
// the layer diffID, into a temporary directory, and spools the tar as a
// blob on the way. r is read to its end: a reader that checks a download
// against its digest at EOF (package registry) thereby makes a mismatch
// fail the stage, and nothing of it is kept. It may run concurrently with
// other calls; AddPulled puts the layer in place.
func (s *Store) StageLayer(diffID digest.Digest, r io.Reader) (*StagedLayer, error) {
	if err := diffID.Validate(); err != nil || diffID.Algorithm() != digest.SHA256 {
		return nil, fmt.Errorf("stage layer %q: not a sha256 digest", diffID)
	}
	f, err := os.CreateTemp(filepath.Join(s.imageDir, "tmp"), "layer-")
	if err != nil {
		return nil, fmt.Errorf("stage layer %s: %w", diffID, err)
	}
	keep := false
	defer func() {
		f.Close()
		if !keep {
			os.Remove(f.Name())
		}
	}()
	cw := &countingWriter{w: f}
	l, err := s.unpackLayer(diffID, io.TeeReader(r, cw), nil)
	if err != nil {
		return nil, err
	}
	if err := f.Sync(); err != nil {
		l.Discard()
		return nil, fmt.Errorf("stage layer %s: %w", diffID, err)
	}
	if cw.err != nil {
		l.Discard()
		return nil, fmt.Errorf("stage layer %s: spool: %w", diffID, cw.err)
	}
	l.blob = &tempBlob{path: f.Name(), digest: diffID, size: cw.n}
	keep = true
	return l, nil
}

// countingWriter writes to w, counting, and keeps the first error (a
// TeeReader would hide it behind the reader's).
type countingWriter struct {
	w   io.Writer
	n   int64
	err error
}

func (c *countingWriter) Write(p []byte) (int, error) {
	if c.err == nil {
		var n int
		n, c.err = c.w.Write(p)
		c.n += int64(n)
	}
	return len(p), c.err
}

// Pulled is an image downloaded from a registry, ready to be added.
type Pulled struct {
	// Config is the image config blob, exactly as the registry served it
	// (its digest is the image ID).
	Config []byte
	// Layers holds one entry per diff ID of the config: a staged layer, or
	// nil for a layer the store has already (HasLayer).
	Layers []*StagedLayer
	// Ref is the normalised name:tag to point at the image, or empty.
	Ref string
	// Source is where it came from; Manifest is the registry's manifest,
	// whose digest is Source.Manifest.
	Source   Source
	Manifest []byte
}

// AddPulled puts the staged layers in place, adds the image, keeps the
// registry's manifest and records the source, and points p.Ref at it. The
// staged layers are consumed (placed or discarded) whatever the outcome.
func (s *Store) AddPulled(p Pulled) (*Image, error) {
	defer func() {
		for _, l := range p.Layers {
			if l != nil {
				l.Discard()
			}
		}
	}()
	if digest.FromBytes(p.Manifest) != p.Source.Manifest {
		return nil, fmt.Errorf("add pulled image: manifest is not %s", p.Source.Manifest)
	}
	var c ocispec.Image
	if err := json.Unmarshal(p.Config, &c); err != nil {
		return nil, fmt.Errorf("add pulled image: parse config: %w", err)
	}
	if len(c.RootFS.DiffIDs) != len(p.Layers) {
		return nil, fmt.Errorf("add pulled image: config lists %d layers, %d given", len(c.RootFS.DiffIDs), len(p.Layers))
	}
	var refs []string
	if p.Ref != "" {
		refs = []string{p.Ref}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	layers := make([]layerBlob, len(p.Layers))
	for i, d := range c.RootFS.DiffIDs {
		if l := p.Layers[i]; l != nil {
			if l.diffID != d {
				return nil, fmt.Errorf("add pulled image: layer %d: staged %s, config says %s", i, l.diffID, d)
			}
			layers[i] = layerBlob{diffID: d, size: l.blob.size, staged: l}
			continue
		}
		st, err := os.Stat(s.blobPath(d))
		if err != nil {
			return nil, fmt.Errorf("add pulled image: layer %s was present and is gone: %w", d, err)
		}
		layers[i] = layerBlob{diffID: d, size: st.Size()}
	}
	if _, err := s.writeBlob(p.Manifest, p.Source.Manifest); err != nil {
		return nil, fmt.Errorf("add pulled image: %w", err)
	}
	img, err := s.addImage(p.Config, layers, refs)
	if err != nil {
		return nil, fmt.Errorf("add pulled image: %w", err)
	}
	img.Sources = withSource(img.Sources, p.Source)
	if err := s.saveIndex(); err != nil {
		return nil, err
	}
	return img.clone(), nil
}

// withSource adds src to list, replacing an entry of the same repository.
func withSource(list []Source, src Source) []Source {
	out := []Source{}
	for _, s := range list {
		if s.Name != src.Name {
			out = append(out, s)
		}
	}
	out = append(out, src)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// AddSource records that the image whose store manifest is md is on a
// registry as src (after a push); src.Manifest must be a stored blob.
func (s *Store) AddSource(md digest.Digest, src Source) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	img, ok := s.images[md]
	if !ok {
		return fmt.Errorf("add source: no image with manifest %s: %w", md, ErrNotFound)
	}
	if _, err := os.Stat(s.blobPath(src.Manifest)); err != nil {
		return fmt.Errorf("add source: manifest %s: %w", src.Manifest, err)
	}
	img.Sources = withSource(img.Sources, src)
	return s.saveIndex()
}

// ReadBlob reads a blob of at most maxJSONBlob bytes (a manifest or a
// config), verified against its digest.
func (s *Store) ReadBlob(d digest.Digest) ([]byte, error) {
	if err := d.Validate(); err != nil {
		return nil, fmt.Errorf("read blob %q: %w", d, err)
	}
	if st, err := os.Stat(s.blobPath(d)); err == nil && st.Size() > maxJSONBlob {
		return nil, fmt.Errorf("read blob %s: %d bytes, too big to read whole", d, st.Size())
	}
	return s.readBlob(d)
}

// OpenBlob opens a stored blob (a layer tar, to push it).
func (s *Store) OpenBlob(d digest.Digest) (*os.File, error) {
	if err := d.Validate(); err != nil {
		return nil, fmt.Errorf("open blob %q: %w", d, err)
	}
	f, err := os.Open(s.blobPath(d))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("open blob %s: %w", d, ErrNotFound)
	}
	return f, err
}

// sourcesPath is image/sources.json: store manifest digest -> sources.
func (s *Store) sourcesPath() string { return filepath.Join(s.imageDir, "sources.json") }

// loadSources attaches the recorded sources to the loaded images.
func (s *Store) loadSources() error {
	b, err := os.ReadFile(s.sourcesPath())
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read image sources: %w", err)
	}
	var m map[digest.Digest][]Source
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("parse image sources %q: %w", s.sourcesPath(), err)
	}
	for md, list := range m {
		if img := s.images[md]; img != nil {
			img.Sources = list
		}
	}
	return nil
}

// saveSources writes the sources of the images held, atomically.
func (s *Store) saveSources() error {
	m := map[digest.Digest][]Source{}
	for md, img := range s.images {
		if len(img.Sources) > 0 {
			m[md] = img.Sources
		}
	}
	if len(m) == 0 {
		if err := os.Remove(s.sourcesPath()); err != nil && !os.IsNotExist(err) {
			return err
		}
		return nil
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(s.sourcesPath(), b)
}
