package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/opencontainers/go-digest"

	"minidock/api"
	"minidock/archive"
	"minidock/image"
	"minidock/internal/errdefs"
)

// Image operations: the image store (package image) in the API's shapes,
// its errors given their kinds.

func familiar(refs []string) []string {
	out := []string{}
	for _, ref := range refs {
		if pr, err := image.ParseReference(ref); err == nil {
			out = append(out, pr.FamiliarString())
		}
	}
	return out
}

func created(img *image.Image) time.Time {
	if img.Config.Created != nil {
		return *img.Config.Created
	}
	return time.Time{}
}

// storeError gives the image store's errors their kinds: not found,
// conflict (in use), and what (usually bad input) for anything else.
func storeError(err error, what errdefs.Kind) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, image.ErrNotFound):
		return errdefs.Wrap(errdefs.NotFound, err)
	case errors.Is(err, image.ErrConflict):
		return errdefs.Wrap(errdefs.Conflict, err)
	case errors.Is(err, archive.ErrNoSpace):
		return errdefs.Wrap(errdefs.TooLarge, fmt.Errorf("%w (the daemon's --max-unpack-size bounds what a layer or a load expands to, and %d MiB of its disk stay free)", err, archive.DefaultReserve>>20))
	}
	return errdefs.Wrap(what, err)
}

// resolveImage finds an image, as Docker words it when there is none.
func (d *Daemon) resolveImage(name string) (*image.Image, error) {
	img, err := d.images.Resolve(name)
	if err == nil {
		return img, nil
	}
	if errors.Is(err, image.ErrNotFound) {
		return nil, errdefs.NotFoundf("No such image: %s", name)
	}
	return nil, errdefs.Invalidf("invalid reference format: %v", err)
}

// ImageListOptions are GET /images/json's.
type ImageListOptions struct {
	// All lists intermediate images too: untagged images that are the
	// parent of another (a build's steps), which `images` hides.
	All bool
}

// Images is GET /images/json[?all=1].
func (d *Daemon) Images(ctx context.Context, o ImageListOptions) []api.ImageSummary {
	out := []api.ImageSummary{}
	list := d.images.List()
	children := childCounts(list)
	for _, img := range list {
		if !o.All && len(img.Refs) == 0 && children[img.ID] > 0 {
			continue
		}
		out = append(out, api.ImageSummary{
			ID: img.ID.String(), ParentID: img.Parent.String(), RepoTags: familiar(img.Refs), RepoDigests: familiar(img.RepoDigests()),
			Created: created(img).Unix(), Size: img.Size, SharedSize: -1, Containers: -1,
			Labels: img.Config.Config.Labels,
		})
	}
	return out
}

// childCounts counts each image's children (the images whose parent it
// is) in list.
func childCounts(list []*image.Image) map[digest.Digest]int {
	n := map[digest.Digest]int{}
	for _, img := range list {
		if img.Parent != "" {
			n[img.Parent]++
		}
	}
	return n
}

// ImageInspect is GET /images/{name}/json.
func (d *Daemon) ImageInspect(ctx context.Context, name string) (*api.ImageInspect, error) {
	img, err := d.resolveImage(name)
	if err != nil {
		return nil, err
	}
	c := img.Config.Config
	out := &api.ImageInspect{
		ID: img.ID.String(), RepoTags: familiar(img.Refs), RepoDigests: familiar(img.RepoDigests()), Parent: img.Parent.String(),
		Created: created(img).Format(time.RFC3339Nano), Author: img.Config.Author,
		Architecture: img.Config.Architecture, Os: img.Config.OS, Size: img.Size,
		Config: &api.ContainerConfig{
			User: c.User, Env: c.Env, Cmd: c.Cmd, Entrypoint: c.Entrypoint, WorkingDir: c.WorkingDir,
			Labels: c.Labels, StopSignal: c.StopSignal,
		},
		RootFS: api.RootFS{Type: "layers"},
	}
	for _, l := range img.DiffIDs {
		out.RootFS.Layers = append(out.RootFS.Layers, l.String())
	}
	return out, nil
}

// ImportImage is `docker import`: a rootfs tarball becomes a one-layer
// image, tagged ref (may be empty), with Dockerfile-like changes.
func (d *Daemon) ImportImage(ctx context.Context, r io.Reader, ref string, changes []string) (string, error) {
	img, err := d.images.Import(r, ref, changes)
	if err != nil {
		return "", storeError(err, errdefs.InvalidParameter)
	}
	return img.ID.String(), nil
}

// LoadImages is `docker load`: a docker or OCI archive; it returns what
// was loaded, as the lines `docker load` prints.
func (d *Daemon) LoadImages(ctx context.Context, r io.Reader) ([]string, error) {
	loaded, err := d.images.LoadArchive(r)
	if err != nil {
		return nil, storeError(err, errdefs.InvalidParameter)
	}
	var out []string
	for _, l := range loaded {
		msg := "Loaded image ID: " + l.ID.String()
		if pr, err := image.ParseReference(l.Ref); l.Ref != "" && err == nil {
			msg = "Loaded image: " + pr.FamiliarString()
		}
		out = append(out, msg)
	}
	return out, nil
}

// CheckImages finds every image of names (a save checks them before it
// writes its first byte).
func (d *Daemon) CheckImages(ctx context.Context, names []string) error {
	if len(names) == 0 {
		return errdefs.Invalidf("no image named: give names=IMAGE")
	}
	for _, n := range names {
		if _, err := d.resolveImage(n); err != nil {
			return err
		}
	}
	return nil
}

// SaveImages is `docker save`: the images as a docker archive on w.
func (d *Daemon) SaveImages(ctx context.Context, names []string, w io.Writer) error {
	return d.images.Save(names, w)
}

// TagImage is POST /images/{name}/tag.
func (d *Daemon) TagImage(ctx context.Context, name, repo, tag string) error {
	if repo == "" {
		return errdefs.Invalidf("repo is required")
	}
	if _, err := d.resolveImage(name); err != nil {
		return err
	}
	target := repo
	if tag != "" {
		target += ":" + tag
	}
	if err := d.images.Tag(name, target); err != nil {
		return storeError(fmt.Errorf("tag %s as %s: %w", name, target, err), errdefs.InvalidParameter)
	}
	return nil
}

// RemoveImage is DELETE /images/{name}.
func (d *Daemon) RemoveImage(ctx context.Context, name string, force bool) ([]api.ImageDeleteItem, error) {
	if _, err := d.resolveImage(name); err != nil {
		return nil, err
	}
	items, err := d.images.Remove(name, force)
	if err != nil {
		return nil, storeError(fmt.Errorf("remove image %s: %w", name, err), errdefs.Unknown)
	}
	out := []api.ImageDeleteItem{}
	for _, it := range items {
		out = append(out, api.ImageDeleteItem{Untagged: it.Untagged, Deleted: it.Deleted.String()})
	}
	return out, nil
}

// ImageHistory is GET /images/{name}/history: the config's history,
// newest first, each entry that made a layer given that layer's size.
// The rows are given the images of the parent chain, as Docker's are:
// the newest row is the image itself, the next its parent, and so on
// while there is a parent (a build makes one image per instruction, so
// each of its rows has its step's image); the rows below, from an image
// that came without parents (pulled, loaded), are "<missing>".
func (d *Daemon) ImageHistory(ctx context.Context, name string) ([]api.ImageHistoryItem, error) {
	img, err := d.resolveImage(name)
	if err != nil {
		return nil, err
	}
	sizes := d.images.LayerSizes(img)
	out := []api.ImageHistoryItem{}
	layer := 0
	for _, h := range img.Config.History {
		it := api.ImageHistoryItem{ID: "<missing>", CreatedBy: h.CreatedBy, Comment: h.Comment, Tags: []string{}}
		if h.Created != nil {
			it.Created = h.Created.Unix()
		}
		if !h.EmptyLayer {
			if layer < len(sizes) {
				it.Size = sizes[layer]
			}
			layer++
		}
		out = append(out, it)
	}
	if len(out) == 0 {
		// an image without history: one entry for the image itself
		out = append(out, api.ImageHistoryItem{Created: created(img).Unix(), Tags: []string{}, Size: img.Size})
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	for i, at := 0, img; i < len(out) && at != nil; i++ {
		out[i].ID, out[i].Tags = at.ID.String(), familiar(at.Refs)
		if at.Parent == "" {
			break
		}
		if at, err = d.images.Resolve(at.Parent.String()); err != nil {
			break // removed by force meanwhile
		}
	}
	return out, nil
}
