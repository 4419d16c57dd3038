package daemon

import (
	"context"
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/opencontainers/go-digest"

	"minidock/api"
	"minidock/image"
	"minidock/internal/errdefs"
)

// PruneContainers is POST /containers/prune: every container that is not
// running (created or exited) and has the filter's labels is removed.
func (d *Daemon) PruneContainers(ctx context.Context, filters api.Filters) (*api.ContainersPruneReport, error) {
	if err := filters.Only("label"); err != nil {
		return nil, errdefs.Wrap(errdefs.InvalidParameter, err)
	}
	var doomed []*Container
	d.mu.Lock()
	for _, c := range d.containers {
		if c.State.Status != "running" && !c.State.Starting && !c.State.Restarting && filters.MatchLabels(c.Config.Labels) {
			doomed = append(doomed, c)
		}
	}
	d.mu.Unlock()
	out := &api.ContainersPruneReport{ContainersDeleted: []string{}}
	for _, c := range doomed {
		size := d.upperSize(c.ID)
		// not forced: one started meanwhile stays
		if err := d.remove(c, RemoveOptions{}); err != nil {
			continue
		}
		out.ContainersDeleted = append(out.ContainersDeleted, c.ID)
		out.SpaceReclaimed += size
	}
	return out, nil
}

// upperSize is the bytes of file content a container wrote.
func (d *Daemon) upperSize(id string) int64 {
	rfs, err := d.images.Rootfs(id)
	if err != nil {
		return 0
	}
	var n int64
	filepath.WalkDir(rfs.Upper, func(_ string, e fs.DirEntry, err error) error {
		if err == nil && e.Type().IsRegular() {
			if fi, err := e.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// PruneImages is POST /images/prune: dangling images (no tag, no child),
// or with the filter dangling=false every image no container uses. An
// image a container uses is always kept; an intermediate image (untagged,
// with children) goes only with the last of its children
// (image.Store.Remove removes unused untagged parents).
func (d *Daemon) PruneImages(ctx context.Context, filters api.Filters) (*api.ImagesPruneReport, error) {
	danglingOnly := true
	for k, vs := range filters {
		switch k {
		case "dangling":
			for _, v := range vs {
				switch v {
				case "true", "1":
				case "false", "0":
					danglingOnly = false
				default:
					return nil, errdefs.Invalidf("invalid filter 'dangling=%s'", v)
				}
			}
		case "label":
		default:
			return nil, errdefs.Invalidf("invalid filter '%s'", k)
		}
	}
	used := map[string]bool{}
	d.mu.Lock()
	for _, c := range d.containers {
		used[c.Image] = true
	}
	d.mu.Unlock()
	out := &api.ImagesPruneReport{ImagesDeleted: []api.ImageDeleteItem{}}
	list := d.images.List()
	children := childCounts(list)
	for _, img := range list {
		if used[img.ID.String()] || (danglingOnly && len(img.Refs) > 0) || !filters.MatchLabels(img.Config.Config.Labels) {
			continue
		}
		if len(img.Refs) == 0 && children[img.ID] > 0 {
			continue // intermediate: goes with its last child
		}
		items, reclaimed, err := d.removeImage(img)
		if err != nil {
			continue // a container took it meanwhile: it stays
		}
		out.ImagesDeleted = append(out.ImagesDeleted, items...)
		out.SpaceReclaimed += reclaimed
	}
	return out, nil
}

// removeImage untags every reference of img, which deletes it with the
// last one (by ID when it has none), without force; it returns what was
// done and the bytes of the layers that went with it.
func (d *Daemon) removeImage(img *image.Image) ([]api.ImageDeleteItem, int64, error) {
	sizes := map[digest.Digest]int64{}
	for i, s := range d.images.LayerSizes(img) {
		sizes[img.ChainIDs[i]] = s
	}
	names := img.Refs
	if len(names) == 0 {
		names = []string{img.ID.String()}
	}
	var out []api.ImageDeleteItem
	var reclaimed int64
	for _, n := range names {
		items, err := d.images.Remove(n, false)
		if err != nil {
			return out, reclaimed, fmt.Errorf("remove image %s: %w", n, err)
		}
		for _, it := range items {
			out = append(out, api.ImageDeleteItem{Untagged: it.Untagged, Deleted: it.Deleted.String()})
			reclaimed += sizes[it.Deleted]
		}
	}
	return out, reclaimed, nil
}
