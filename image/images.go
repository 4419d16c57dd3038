package image

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"minidock/archive"
)

// Resolve finds an image by reference ("busybox", "busybox:1.36",
// "name@sha256:…"), by ID ("sha256:…" or its hex) or by a unique prefix of
// its ID's hex, in that order, as Docker does.
func (s *Store) Resolve(ref string) (*Image, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	img, _, err := s.resolve(ref)
	if err != nil {
		return nil, err
	}
	return img.clone(), nil
}

// resolve returns the image and, when ref named it by a reference held in
// the index, that normalised reference.
func (s *Store) resolve(ref string) (*Image, string, error) {
	if d, err := digest.Parse(ref); err == nil {
		for md, img := range s.images {
			if img.ID == d || md == d {
				return img, "", nil
			}
		}
		return nil, "", fmt.Errorf("no such image: %s: %w", ref, ErrNotFound)
	}
	r, perr := ParseReference(ref)
	if perr == nil {
		full := r.String()
		if md, ok := s.refs[full]; ok {
			return s.images[md], full, nil
		}
		if r.Digest != "" {
			// name@digest: the manifest digest of an image of that name,
			// or its ID.
			for md, img := range s.images {
				for _, src := range img.Sources {
					if src.Name == r.Name() && (src.Digest == r.Digest || src.Manifest == r.Digest) {
						return img, "", nil
					}
				}
				if md != r.Digest && img.ID != r.Digest {
					continue
				}
				for _, n := range img.Refs {
					if rr, _ := ParseReference(n); rr.Name() == r.Name() {
						return img, "", nil
					}
				}
			}
		}
	}
	if len(ref) >= 1 && len(ref) <= 64 && strings.Trim(ref, "0123456789abcdef") == "" {
		var found *Image
		for _, img := range s.images {
			if strings.HasPrefix(img.ID.Encoded(), ref) {
				if found != nil && found != img {
					return nil, "", fmt.Errorf("image ID prefix %q is ambiguous", ref)
				}
				found = img
			}
		}
		if found != nil {
			return found, "", nil
		}
	}
	if perr != nil {
		return nil, "", perr
	}
	return nil, "", fmt.Errorf("no such image: %s: %w", ref, ErrNotFound)
}

// List returns every image, newest first (by config creation time).
func (s *Store) List() []*Image {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Image, 0, len(s.images))
	for _, img := range s.images {
		out = append(out, img.clone())
	}
	sort.Slice(out, func(i, j int) bool {
		ci, cj := out[i].Config.Created, out[j].Config.Created
		if ci != nil && cj != nil && !ci.Equal(*cj) {
			return ci.After(*cj)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// Tag makes target (a name with optional tag, no digest) point at the
// image source resolves to. A target that named another image moves.
func (s *Store) Tag(source, target string) error {
	r, err := ParseReference(target)
	if err != nil {
		return err
	}
	if r.Digest != "" {
		return fmt.Errorf("tag %q: a tag cannot contain a digest", target)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	img, _, err := s.resolve(source)
	if err != nil {
		return err
	}
	if s.refs[r.String()] == img.Manifest {
		return nil // already so (a rebuild's tag): nothing to write
	}
	s.setRef(r.String(), img)
	return s.saveIndex()
}

// setRef points ref at img, taking it off the image it named before.
func (s *Store) setRef(ref string, img *Image) {
	if old, ok := s.refs[ref]; ok {
		if o := s.images[old]; o != nil {
			o.Refs = without(o.Refs, ref)
		}
	}
	s.refs[ref] = img.Manifest
	img.Refs = append(without(img.Refs, ref), ref)
	sort.Strings(img.Refs)
}

func without(list []string, x string) []string {
	out := list[:0:0]
	for _, v := range list {
		if v != x {
			out = append(out, v)
		}
	}
	return out
}

// DeleteItem is one line of what Remove did, as Docker's image delete
// response has them: a reference untagged or an image or layer deleted.
type DeleteItem struct {
	Untagged string        `json:",omitempty"` // familiar reference
	Deleted  digest.Digest `json:",omitempty"` // image ID or layer chain ID
}

// Remove removes ref. Given a reference, it untags it, and deletes the
// image once no reference is left, unless it has children (then it stays
// as their intermediate image). Given an ID, it deletes the image with
// all its references; it refuses (ErrConflict) when the image has
// children, and without force when it has several references or is used
// by a container rootfs. A deleted image's untagged parents that nothing
// else uses go with it (removeUnusedParents). Then every layer and blob
// nothing counts any more is removed.
func (s *Store) Remove(ref string, force bool) ([]DeleteItem, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	img, byRef, err := s.resolve(ref)
	if err != nil {
		return nil, err
	}
	users, err := s.containersUsing(img.ID)
	if err != nil {
		return nil, err
	}
	var items []DeleteItem
	untag := func(r string) {
		delete(s.refs, r)
		img.Refs = without(img.Refs, r)
		fam := r
		if pr, err := ParseReference(r); err == nil {
			fam = pr.FamiliarString()
		}
		items = append(items, DeleteItem{Untagged: fam})
	}
	if byRef != "" {
		if len(img.Refs) == 1 && len(users) > 0 && !force {
			return nil, fmt.Errorf("unable to remove %s: image is in use by container %s (force to remove): %w", ref, users[0], ErrConflict)
		}
		untag(byRef)
		if len(img.Refs) > 0 || s.children(img.ID) > 0 {
			// named otherwise, or, untagged, an intermediate image of
			// its children: it stays
			return items, s.saveIndex()
		}
	} else {
		if s.children(img.ID) > 0 {
			return nil, hasChildrenError(img)
		}
		if len(img.Refs) > 1 && !force {
			return nil, fmt.Errorf("unable to delete %s: image is referenced by %d references (force to remove): %w", img.ID, len(img.Refs), ErrConflict)
		}
		if len(users) > 0 && !force {
			return nil, fmt.Errorf("unable to delete %s: image is in use by container %s (force to remove): %w", img.ID, users[0], ErrConflict)
		}
		for _, r := range append([]string(nil), img.Refs...) {
			untag(r)
		}
	}
	delete(s.images, img.Manifest)
	items = append(items, DeleteItem{Deleted: img.ID})
	parents, err := s.removeUnusedParents(img.Parent)
	items = append(items, parents...)
	if err != nil {
		return items, err
	}
	if err := s.saveIndex(); err != nil {
		return items, err
	}
	removed, err := s.gc()
	for _, c := range removed {
		items = append(items, DeleteItem{Deleted: c})
	}
	return items, err
}

// containersUsing lists the container rootfs records made from image id.
func (s *Store) containersUsing(id digest.Digest) ([]string, error) {
	recs, err := s.rootfsRecords()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, r := range recs {
		if r.ImageID == id {
			out = append(out, r.ContainerID)
		}
	}
	sort.Strings(out)
	return out, nil
}

// layerBlob is an uncompressed layer tar ready to be added: either a
// spooled temporary file or a blob already in the store.
type layerBlob struct {
	diffID digest.Digest
	size   int64
	temp   *tempBlob       // nil when the blob is already stored
	staged *StagedLayer    // unpacked already (a pull), with its tar spooled
	budget *archive.Budget // of the load or import it comes with, or nil
}

// addImage stores an image whose config is the exact bytes cfg (so its ID
// is the digest the config had wherever it came from) and whose layers
// are the uncompressed tars layers, one per diff ID of the config; unpacks
// missing layers; writes a manifest; points refs at it. Called locked.
func (s *Store) addImage(cfg []byte, layers []layerBlob, refs []string) (*Image, error) {
	return s.addChild(cfg, layers, refs, "")
}

// addChild is addImage for an image made from image parentID (a commit,
// a build step): it records the parent, as Docker's image store does.
func (s *Store) addChild(cfg []byte, layers []layerBlob, refs []string, parentID digest.Digest) (_ *Image, err error) {
	defer func() {
		if err != nil {
			s.gc() // blobs and layers of the half-added image
		}
	}()
	var c ocispec.Image
	if err := json.Unmarshal(cfg, &c); err != nil {
		return nil, fmt.Errorf("parse image config: %w", err)
	}
	if len(c.RootFS.DiffIDs) != len(layers) {
		return nil, fmt.Errorf("image config lists %d layers, %d given", len(c.RootFS.DiffIDs), len(layers))
	}
	m := ocispec.Manifest{
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(cfg), Size: int64(len(cfg))},
		Layers:    []ocispec.Descriptor{},
	}
	m.SchemaVersion = 2
	var parent digest.Digest
	for i, l := range layers {
		if l.diffID != c.RootFS.DiffIDs[i] {
			return nil, fmt.Errorf("layer %d: digest mismatch: config says %s, content is %s", i, c.RootFS.DiffIDs[i], l.diffID)
		}
		if l.staged != nil {
			chain, err := s.placeLayer(parent, l.staged)
			if err != nil {
				return nil, err
			}
			if err := s.commitBlob(l.staged.blob); err != nil {
				return nil, err
			}
			parent = chain
			m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: l.diffID, Size: l.size})
			continue
		}
		src := s.blobPath(l.diffID)
		if l.temp != nil {
			if _, err := os.Stat(src); err != nil {
				src = l.temp.path
			}
		}
		chain, err := s.ensureLayer(parent, l.diffID, src, l.budget)
		if err != nil {
			return nil, err
		}
		if l.temp != nil {
			if err := s.commitBlob(l.temp); err != nil {
				return nil, err
			}
		}
		parent = chain
		m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: l.diffID, Size: l.size})
	}
	if _, err := s.writeBlob(cfg, m.Config.Digest); err != nil {
		return nil, err
	}
	mb, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	md, err := s.writeBlob(mb, "")
	if err != nil {
		return nil, err
	}
	img, ok := s.images[md]
	if !ok {
		if img, err = s.readImage(md); err != nil {
			return nil, err
		}
		img.Parent = parentID
		s.images[md] = img
	}
	for _, r := range refs {
		s.setRef(r, img)
	}
	if err := s.saveIndex(); err != nil {
		return nil, err
	}
	return img, nil
}
