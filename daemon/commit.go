package daemon

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"minidock/api"
	"minidock/image"
)

// containerExport is GET /containers/{id}/export: the container's whole
// filesystem as a tar (docker export); see withRootfs.
func (d *Daemon) containerExport(w http.ResponseWriter, r *http.Request) {
	c, err := d.lookup(r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	started := false
	err = d.withRootfs(c, func(string) error {
		w.Header().Set("Content-Type", "application/x-tar")
		started = true
		return d.images.Export(c.ID, w)
	})
	switch {
	case err != nil && started:
		// the tar is cut short: that is all a client can be told now
		fmt.Fprintf(os.Stderr, "minidock daemon: export %s: %v\n", c.ID, err)
	case err != nil:
		writeError(w, err)
	}
}

// stillThere is the 404 for a container removed while its caller waited
// for c.op.
func (d *Daemon) stillThere(c *Container) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if c.removed {
		return notFound("No such container: %s", c.ID)
	}
	return nil
}

// containerChanges is GET /containers/{id}/changes (docker diff): what the
// container's upper dir changes over its image.
func (d *Daemon) containerChanges(w http.ResponseWriter, r *http.Request) {
	c, err := d.lookup(r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	changes, err := d.images.Diff(c.ID)
	if err != nil {
		writeError(w, fmt.Errorf("changes of container %s: %w", c.ID, err))
		return
	}
	out := []api.ContainerChange{}
	for _, ch := range changes {
		out = append(out, api.ContainerChange{Path: ch.Path, Kind: int(ch.Kind)})
	}
	writeJSON(w, http.StatusOK, out)
}

// commit is POST /commit?container=&repo=&tag=&comment=&author=&changes=:
// the container's changes become a new image. As Docker does, the image
// takes the container's configuration (command, environment, working dir,
// user, labels), then a config given in the body, then the changes.
func (d *Daemon) commit(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	c, err := d.lookup(q.Get("container"))
	if err != nil {
		writeError(w, err)
		return
	}
	// The body, optional, is a config to apply over the container's.
	var body api.ContainerConfig
	if err := decodeJSON(w, r, &body); err != nil && r.ContentLength > 0 {
		writeError(w, err)
		return
	}
	ref := q.Get("repo")
	if ref != "" && q.Get("tag") != "" {
		ref += ":" + q.Get("tag")
	} else if ref == "" && q.Get("tag") != "" {
		writeError(w, badRequest("tag %q given without a repository", q.Get("tag")))
		return
	}
	if ref != "" {
		if _, err := image.ParseReference(ref); err != nil {
			writeError(w, badRequest("invalid reference format: %v", err))
			return
		}
	}
	d.mu.Lock()
	changes := configChanges(c.Config)
	createdBy := strings.Join(c.argv(), " ")
	d.mu.Unlock()
	changes = append(changes, configChanges(body)...)
	changes = append(changes, q["changes"]...)
	// Checked before the layer is written, so a bad change costs nothing.
	if err := image.ApplyChanges(new(ocispec.ImageConfig), q["changes"]); err != nil {
		writeError(w, badRequest("%v", err))
		return
	}
	c.op.Lock()
	defer c.op.Unlock()
	if err := d.stillThere(c); err != nil {
		writeError(w, err)
		return
	}
	img, err := d.images.Commit(c.ID, image.CommitOptions{Ref: ref, Author: q.Get("author"), Comment: q.Get("comment"), Changes: changes, CreatedBy: createdBy})
	if err != nil {
		writeError(w, fmt.Errorf("commit container %s: %w", c.ID, err))
		return
	}
	d.mu.Lock()
	d.emit(c, "commit", map[string]string{"comment": q.Get("comment")})
	d.mu.Unlock()
	writeJSON(w, http.StatusCreated, api.IDResponse{ID: img.ID.String()})
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
	return out
}

// imageHistory is GET /images/{name}/history: the config's history,
// newest first, each entry that made a layer given that layer's size.
func (d *Daemon) imageHistory(w http.ResponseWriter, r *http.Request, name string) {
	img, err := d.resolveImage(name)
	if err != nil {
		writeError(w, err)
		return
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
	out[0].ID = img.ID.String()
	out[0].Tags = familiar(img.Refs)
	writeJSON(w, http.StatusOK, out)
}
