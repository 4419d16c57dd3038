package image

import (
	"fmt"

	"github.com/opencontainers/go-digest"
)

// Docker's parent chain. An image made by a commit or a build step
// records the image it was made from (Image.Parent), as Docker's image
// store does beside the config: a build leaves one untagged image per
// step, each the parent of the next. The chain decides three things:
//
//   - an untagged image with children is intermediate, not dangling:
//     `images` hides it without -a, prune leaves it (Children);
//   - an image with children cannot be removed by ID, even by force;
//     removing its last tag only untags it (Remove);
//   - removing an image removes its untagged parents that nothing else
//     uses, up the chain (removeUnusedParents), so that `rmi` of a built
//     image takes its steps' images with it.
//
// The parent is kept in index.json, in an annotation of the image's
// descriptors, so that it is written in the same atomic write as the
// image's names.

// parentAnnotation is the index annotation holding an image's parent.
const parentAnnotation = "io.minidock.image.parent"

// parentAnnotations are the annotations an image's index descriptors
// carry besides its name (nil: none).
func parentAnnotations(img *Image) map[string]string {
	if img.Parent == "" {
		return nil
	}
	return map[string]string{parentAnnotation: img.Parent.String()}
}

// Children returns the number of images whose parent is image id.
func (s *Store) Children(id digest.Digest) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.children(id)
}

// children counts the images whose parent is id. Called locked.
func (s *Store) children(id digest.Digest) int {
	n := 0
	for _, img := range s.images {
		if img.Parent == id {
			n++
		}
	}
	return n
}

// byID finds an image by its ID. Called locked.
func (s *Store) byID(id digest.Digest) *Image {
	for _, img := range s.images {
		if img.ID == id {
			return img
		}
	}
	return nil
}

// removeUnusedParents removes, starting at image id and going up its
// parent chain, each image that has no name, no child and no container
// using it; it stops at the first that has one (Docker's parent pruning
// after an image delete). Called locked, after the child was removed.
func (s *Store) removeUnusedParents(id digest.Digest) ([]DeleteItem, error) {
	var items []DeleteItem
	for id != "" {
		img := s.byID(id)
		if img == nil || len(img.Refs) > 0 || s.children(id) > 0 {
			break
		}
		users, err := s.containersUsing(id)
		if err != nil {
			return items, err
		}
		if len(users) > 0 {
			break
		}
		delete(s.images, img.Manifest)
		items = append(items, DeleteItem{Deleted: img.ID})
		id = img.Parent
	}
	return items, nil
}

// hasChildrenError is Docker's refusal to delete a parent by ID.
func hasChildrenError(img *Image) error {
	return fmt.Errorf("unable to delete %s (cannot be forced): image has dependent child images: %w", img.ID.Encoded()[:12], ErrConflict)
}
