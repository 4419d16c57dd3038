package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"minidock/api"
	"minidock/image"
	"minidock/internal/errdefs"
)

// ContainerExport is `docker export`: the container's whole filesystem
// as a tar on w (see withRootfs).
func (d *Daemon) ContainerExport(ctx context.Context, name string, w io.Writer) error {
	c, err := d.lookup(name)
	if err != nil {
		return err
	}
	return d.withRootfs(c, func(string) error {
		return c.UserNamespace.writeInContainerIDs(w, func(w io.Writer) error { return d.images.Export(c.ID, w) })
	})
}

// ContainerChanges is `docker diff`: what the container's upper dir
// changes over its image.
func (d *Daemon) ContainerChanges(ctx context.Context, name string) ([]api.ContainerChange, error) {
	c, err := d.lookup(name)
	if err != nil {
		return nil, err
	}
	changes, err := d.images.Diff(c.ID)
	if err != nil {
		return nil, fmt.Errorf("changes of container %s: %w", c.ID, err)
	}
	out := []api.ContainerChange{}
	for _, ch := range changes {
		out = append(out, api.ContainerChange{Path: ch.Path, Kind: int(ch.Kind)})
	}
	return out, nil
}

// CommitOptions are a commit's: the reference to tag the image with (may
// be empty), its author and comment, a config to apply over the
// container's, and Dockerfile-like changes over that.
type CommitOptions struct {
	Ref     string
	Author  string
	Comment string
	Config  *api.ContainerConfig
	Changes []string
}

// Commit is `docker commit`: the container's upper dir becomes a new
// layer over its image's, and a new image. As in Docker, the image takes
// the container's config (command, environment, working dir, user,
// labels, stop signal), then o.Config, then o.Changes. It returns the
// image's ID. A builder commits each step's container this way.
func (d *Daemon) Commit(ctx context.Context, name string, o CommitOptions) (string, error) {
	c, err := d.lookup(name)
	if err != nil {
		return "", err
	}
	if o.Ref != "" {
		if _, err := image.ParseReference(o.Ref); err != nil {
			return "", errdefs.Invalidf("invalid reference format: %v", err)
		}
	}
	// Checked before the layer is written, so a bad change costs nothing.
	if err := image.ApplyChanges(new(ocispec.ImageConfig), o.Changes); err != nil {
		return "", errdefs.Invalidf("%v", err)
	}
	d.mu.Lock()
	changes := configChanges(c.Config)
	createdBy := strings.Join(c.argv(), " ")
	d.mu.Unlock()
	if o.Config != nil {
		changes = append(changes, configChanges(*o.Config)...)
	}
	changes = append(changes, o.Changes...)
	c.op.Lock()
	defer c.op.Unlock()
	if err := d.stillThere(c); err != nil {
		return "", err
	}
	img, err := d.images.Commit(c.ID, image.CommitOptions{Ref: o.Ref, Author: o.Author, Comment: o.Comment, Changes: changes, CreatedBy: createdBy,
		Filter: c.UserNamespace.commitFilter()})
	if err != nil {
		return "", fmt.Errorf("commit container %s: %w", c.ID, err)
	}
	d.mu.Lock()
	d.emit(c, "commit", map[string]string{"comment": o.Comment})
	d.mu.Unlock()
	return img.ID.String(), nil
}

// configChanges turns the set fields of a container config into the
// Dockerfile-like changes image.ApplyChanges reads.
func configChanges(cfg api.ContainerConfig) []string {
	var out []string
	quote := func(s string) string {
		return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
	}
	jsonArray := func(v []string) string { b, _ := json.Marshal(v); return string(b) }
	if cfg.Entrypoint != nil {
		out = append(out, "ENTRYPOINT "+jsonArray(cfg.Entrypoint))
	}
	if cfg.Cmd != nil {
		out = append(out, "CMD "+jsonArray(cfg.Cmd))
	}
	for _, e := range cfg.Env {
		if k, v, ok := strings.Cut(e, "="); ok && k != "" {
			out = append(out, "ENV "+k+"="+quote(v))
		}
	}
	for k, v := range cfg.Labels {
		out = append(out, "LABEL "+quote(k)+"="+quote(v))
	}
	if cfg.WorkingDir != "" {
		out = append(out, "WORKDIR "+cfg.WorkingDir)
	}
	if cfg.User != "" {
		out = append(out, "USER "+cfg.User)
	}
	if cfg.StopSignal != "" {
		out = append(out, "STOPSIGNAL "+cfg.StopSignal)
	}
	for v := range cfg.Volumes { // the paths, never the volumes' content
		out = append(out, "VOLUME "+jsonArray([]string{v}))
	}
	return out
}
