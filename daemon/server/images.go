package server

import (
	"encoding/json"
	"net/http"
	"strings"

	"minidock/api"
	"minidock/daemon"
	"minidock/internal/errdefs"
)

// images dispatches /images/...: image names contain slashes, so the name
// is whatever lies between /images/ and the action suffix.
func (rt router) images(w http.ResponseWriter, r *http.Request) {
	rest := strings.TrimPrefix(r.URL.Path, "/images/")
	switch {
	case rest == "json" && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, rt.d.Images(r.Context(), daemon.ImageListOptions{All: boolParam(r, "all")}))
	case rest == "create" && r.Method == http.MethodPost:
		rt.imageCreate(w, r)
	case rest == "load" && r.Method == http.MethodPost:
		rt.imageLoad(w, r)
	case rest == "get" && r.Method == http.MethodGet:
		rt.imageSave(w, r, r.URL.Query()["names"])
	case rest == "prune" && r.Method == http.MethodPost:
		rt.imagesPrune(w, r)
	case strings.HasSuffix(rest, "/history") && r.Method == http.MethodGet:
		h, err := rt.d.ImageHistory(r.Context(), strings.TrimSuffix(rest, "/history"))
		reply(w, http.StatusOK, h, err)
	case strings.HasSuffix(rest, "/json") && r.Method == http.MethodGet:
		img, err := rt.d.ImageInspect(r.Context(), strings.TrimSuffix(rest, "/json"))
		reply(w, http.StatusOK, img, err)
	case strings.HasSuffix(rest, "/tag") && r.Method == http.MethodPost:
		q := r.URL.Query()
		reply(w, http.StatusCreated, nil, rt.d.TagImage(r.Context(), strings.TrimSuffix(rest, "/tag"), q.Get("repo"), q.Get("tag")))
	case strings.HasSuffix(rest, "/push") && r.Method == http.MethodPost:
		rt.imagePush(w, r, strings.TrimSuffix(rest, "/push"))
	case strings.HasSuffix(rest, "/get") && r.Method == http.MethodGet:
		rt.imageSave(w, r, []string{strings.TrimSuffix(rest, "/get")})
	case rest != "" && r.Method == http.MethodDelete:
		items, err := rt.d.RemoveImage(r.Context(), rest, boolParam(r, "force"))
		reply(w, http.StatusOK, items, err)
	default:
		writeError(w, errdefs.NotFoundf("page not found: %s %s", r.Method, r.URL.Path))
	}
}

// imageCreate is `docker pull` (fromImage=, registry.go) or `docker
// import` (fromSrc=-, the tarball is the body).
func (rt router) imageCreate(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Has("fromImage") && !q.Has("fromSrc") {
		rt.imagePull(w, r)
		return
	}
	if err := onlyQuery(r, "fromSrc", "repo", "tag", "changes", "message", "platform"); err != nil {
		writeError(w, err)
		return
	}
	if q.Get("fromSrc") != "-" {
		writeError(w, errdefs.Invalidf("fromImage=NAME (a pull) or fromSrc=- (an import of the tarball in the body) is required; importing from a URL is not supported"))
		return
	}
	for _, unsupported := range []string{"message", "platform"} {
		if v := q.Get(unsupported); v != "" {
			writeError(w, errdefs.Invalidf("import: %s=%q is not supported", unsupported, v))
			return
		}
	}
	ref := q.Get("repo")
	if ref != "" && q.Get("tag") != "" {
		ref += ":" + q.Get("tag")
	}
	id, err := rt.d.ImportImage(r.Context(), r.Body, ref, q["changes"])
	reply(w, http.StatusOK, api.JSONMessage{Status: id}, err)
}

func (rt router) imageLoad(w http.ResponseWriter, r *http.Request) {
	lines, err := rt.d.LoadImages(r.Context(), r.Body)
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	for _, l := range lines {
		enc.Encode(api.JSONMessage{Stream: l + "\n"})
	}
}

func (rt router) imageSave(w http.ResponseWriter, r *http.Request, names []string) {
	if err := rt.d.CheckImages(r.Context(), names); err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/x-tar")
	// Errors after the first byte can only cut the stream short.
	rt.d.SaveImages(r.Context(), names, w)
}

func (rt router) imagesPrune(w http.ResponseWriter, r *http.Request) {
	f, err := filters(r)
	if err != nil {
		writeError(w, err)
		return
	}
	report, err := rt.d.PruneImages(r.Context(), f)
	reply(w, http.StatusOK, report, err)
}
