package image

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/opencontainers/go-digest"
)

// The build cache maps the key of a build step (see package build) to
// the image that step made. It lives beside the index, in
// image/buildcache.json (key -> image ID), so it survives a daemon
// restart; an entry whose image was removed since is a miss and is
// dropped at the next write. In memory each entry also holds the image's
// manifest digest, the key of Store.images, so a lookup is two map reads
// whatever the number of images.

// cacheEntry is one build step's image: its ID, and the manifest digest
// it is held under.
type cacheEntry struct{ id, manifest digest.Digest }

func (s *Store) buildCachePath() string { return filepath.Join(s.imageDir, "buildcache.json") }

// loadBuildCache reads the cache file once, and finds each entry's
// manifest. Called locked.
func (s *Store) loadBuildCache() error {
	if s.buildCache != nil {
		return nil
	}
	s.buildCache = map[string]cacheEntry{}
	b, err := os.ReadFile(s.buildCachePath())
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read build cache: %w", err)
	}
	var ids map[string]digest.Digest
	if err := json.Unmarshal(b, &ids); err != nil {
		return fmt.Errorf("parse build cache %q: %w", s.buildCachePath(), err)
	}
	manifests := s.manifestsByID()
	for k, id := range ids {
		if md, ok := manifests[id]; ok {
			s.buildCache[k] = cacheEntry{id: id, manifest: md}
		}
	}
	return nil
}

// manifestsByID maps each image ID to a manifest digest holding it.
// Called locked.
func (s *Store) manifestsByID() map[digest.Digest]digest.Digest {
	m := make(map[digest.Digest]digest.Digest, len(s.images))
	for md, img := range s.images {
		m[img.ID] = md
	}
	return m
}

// CachedImage returns the image that the build step with cache key key
// made, or nil when there is none (or it was removed since).
func (s *Store) CachedImage(key string) (*Image, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.loadBuildCache(); err != nil {
		return nil, err
	}
	e, ok := s.buildCache[key]
	if !ok {
		return nil, nil
	}
	if img := s.images[e.manifest]; img != nil && img.ID == e.id {
		return img.clone(), nil
	}
	return nil, nil
}

// SetCachedImage records that the build step with cache key key made the
// image id, and writes the cache file atomically.
func (s *Store) SetCachedImage(key string, id digest.Digest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.loadBuildCache(); err != nil {
		return err
	}
	manifests := s.manifestsByID()
	md, ok := manifests[id]
	if !ok {
		return fmt.Errorf("build cache: no such image %s: %w", id, ErrNotFound)
	}
	s.buildCache[key] = cacheEntry{id: id, manifest: md}
	ids := make(map[string]digest.Digest, len(s.buildCache))
	for k, e := range s.buildCache {
		if img := s.images[e.manifest]; img == nil || img.ID != e.id {
			delete(s.buildCache, k)
			continue
		}
		ids[k] = e.id
	}
	b, err := json.Marshal(ids)
	if err != nil {
		return err
	}
	return writeFileAtomic(s.buildCachePath(), b)
}
