package daemon

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"minidock/api"
	"minidock/image"
)

// imagesRoute dispatches /images/...: image names contain slashes, so
// the name is whatever lies between /images/ and the action suffix.
func (d *Daemon) imagesRoute(w http.ResponseWriter, r *http.Request) {
	rest := strings.TrimPrefix(r.URL.Path, "/images/")
	switch {
	case rest == "json" && r.Method == http.MethodGet:
		d.imageList(w, r)
	case rest == "create" && r.Method == http.MethodPost:
		d.imageCreate(w, r)
	case rest == "load" && r.Method == http.MethodPost:
		d.imageLoad(w, r)
	case rest == "get" && r.Method == http.MethodGet:
		d.imageSave(w, r, r.URL.Query()["names"])
	case rest == "prune" && r.Method == http.MethodPost:
		d.imagesPrune(w, r)
	case strings.HasSuffix(rest, "/history") && r.Method == http.MethodGet:
		d.imageHistory(w, r, strings.TrimSuffix(rest, "/history"))
	case strings.HasSuffix(rest, "/json") && r.Method == http.MethodGet:
		d.imageInspect(w, r, strings.TrimSuffix(rest, "/json"))
	case strings.HasSuffix(rest, "/tag") && r.Method == http.MethodPost:
		d.imageTag(w, r, strings.TrimSuffix(rest, "/tag"))
	case strings.HasSuffix(rest, "/get") && r.Method == http.MethodGet:
		d.imageSave(w, r, []string{strings.TrimSuffix(rest, "/get")})
	case rest != "" && r.Method == http.MethodDelete:
		d.imageDelete(w, r, rest)
	default:
		writeError(w, notFound("page not found: %s %s", r.Method, r.URL.Path))
	}
}

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

func (d *Daemon) imageList(w http.ResponseWriter, r *http.Request) {
	out := []api.ImageSummary{}
	for _, img := range d.images.List() {
		out = append(out, api.ImageSummary{
			ID: img.ID.String(), RepoTags: familiar(img.Refs), RepoDigests: []string{},
			Created: created(img).Unix(), Size: img.Size, SharedSize: -1, Containers: -1,
			Labels: img.Config.Config.Labels,
		})
	}
	writeJSON(w, http.StatusOK, out)
}

func (d *Daemon) imageInspect(w http.ResponseWriter, r *http.Request, name string) {
	img, err := d.resolveImage(name)
	if err != nil {
		writeError(w, err)
		return
	}
	c := img.Config.Config
	out := api.ImageInspect{
		ID: img.ID.String(), RepoTags: familiar(img.Refs), RepoDigests: []string{},
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
	writeJSON(w, http.StatusOK, out)
}

// resolveImage finds an image, as Docker words it when there is none.
func (d *Daemon) resolveImage(name string) (*image.Image, error) {
	img, err := d.images.Resolve(name)
	if err == nil {
		return img, nil
	}
	if statusOf(err) == http.StatusNotFound {
		return nil, notFound("No such image: %s", name)
	}
	return nil, badRequest("invalid reference format: %v", err)
}

// imageCreate is `docker import` (fromSrc=-, the tarball is the body).
// Pulling (fromImage) needs the registry client and is not wired yet.
func (d *Daemon) imageCreate(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("fromSrc") != "-" {
		if q.Get("fromImage") != "" {
			writeError(w, &statusError{http.StatusNotImplemented, "pulling images is not supported by this daemon yet; use docker save | minidock load, or import"})
			return
		}
		writeError(w, badRequest("fromSrc=- (a tarball in the body) is required; importing from a URL is not supported"))
		return
	}
	ref := q.Get("repo")
	if ref != "" && q.Get("tag") != "" {
		ref += ":" + q.Get("tag")
	}
	img, err := d.images.Import(r.Body, ref, q["changes"])
	if err != nil {
		writeError(w, importError(err))
		return
	}
	writeJSON(w, http.StatusOK, api.JSONMessage{Status: img.ID.String()})
}

// importError gives a bad tarball or reference 400, a failed store 500.
func importError(err error) error {
	if statusOf(err) != http.StatusInternalServerError {
		return err
	}
	return &statusError{http.StatusBadRequest, err.Error()}
}

func (d *Daemon) imageLoad(w http.ResponseWriter, r *http.Request) {
	loaded, err := d.images.LoadArchive(r.Body)
	if err != nil {
		writeError(w, importError(err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	for _, l := range loaded {
		msg := "Loaded image ID: " + l.ID.String() + "\n"
		if pr, err := image.ParseReference(l.Ref); l.Ref != "" && err == nil {
			msg = "Loaded image: " + pr.FamiliarString() + "\n"
		}
		enc.Encode(api.JSONMessage{Stream: msg})
	}
}

func (d *Daemon) imageSave(w http.ResponseWriter, r *http.Request, names []string) {
	if len(names) == 0 {
		writeError(w, badRequest("no image named: give names=IMAGE"))
		return
	}
	for _, n := range names {
		if _, err := d.resolveImage(n); err != nil {
			writeError(w, err)
			return
		}
	}
	w.Header().Set("Content-Type", "application/x-tar")
	// Errors after the first byte can only cut the stream short.
	d.images.Save(names, w)
}

func (d *Daemon) imageTag(w http.ResponseWriter, r *http.Request, name string) {
	repo, tag := r.URL.Query().Get("repo"), r.URL.Query().Get("tag")
	if repo == "" {
		writeError(w, badRequest("repo is required"))
		return
	}
	if _, err := d.resolveImage(name); err != nil {
		writeError(w, err)
		return
	}
	target := repo
	if tag != "" {
		target += ":" + tag
	}
	if err := d.images.Tag(name, target); err != nil {
		if statusOf(err) == http.StatusInternalServerError {
			err = badRequest("tag %s as %s: %v", name, target, err)
		}
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusCreated)
}

func (d *Daemon) imageDelete(w http.ResponseWriter, r *http.Request, name string) {
	if _, err := d.resolveImage(name); err != nil {
		writeError(w, err)
		return
	}
	items, err := d.images.Remove(name, boolParam(r, "force"))
	if err != nil {
		if statusOf(err) == http.StatusInternalServerError {
			err = fmt.Errorf("remove image %s: %w", name, err)
		}
		writeError(w, err)
		return
	}
	out := []api.ImageDeleteItem{}
	for _, it := range items {
		out = append(out, api.ImageDeleteItem{Untagged: it.Untagged, Deleted: it.Deleted.String()})
	}
	writeJSON(w, http.StatusOK, out)
}
