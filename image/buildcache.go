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
// image/buildcache.json, so it survives a daemon restart; an entry whose
// image was removed since is a miss and is dropped at the next write.

func (s *Store) buildCachePath() string { return filepath.Join(s.imageDir, "buildcache.json") }

// loadBuildCache reads the cache file once. Called locked.
func (s *Store) loadBuildCache() error {
	if s.buildCache != nil {
		return nil
	}
	s.buildCache = map[string]digest.Digest{}
	b, err := os.ReadFile(s.buildCachePath())
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read build cache: %w", err)
	}
	if err := json.Unmarshal(b, &s.buildCache); err != nil {
		return fmt.Errorf("parse build cache %q: %w", s.buildCachePath(), err)
	}
	return nil
}

// CachedImage returns the image that the build step with cache key key
// made, or nil when there is none (or it was removed since).
func (s *Store) CachedImage(key string) (*Image, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.loadBuildCache(); err != nil {
		return nil, err
	}
	id, ok := s.buildCache[key]
	if !ok {
		return nil, nil
	}
	for _, img := range s.images {
		if img.ID == id {
			return img.clone(), nil
		}
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
	live := map[digest.Digest]bool{}
	for _, img := range s.images {
		live[img.ID] = true
	}
	if !live[id] {
		return fmt.Errorf("build cache: no such image %s: %w", id, ErrNotFound)
	}
	s.buildCache[key] = id
	for k, v := range s.buildCache {
		if !live[v] {
			delete(s.buildCache, k)
		}
	}
	b, err := json.Marshal(s.buildCache)
	if err != nil {
		return err
	}
	return writeFileAtomic(s.buildCachePath(), b)
}
