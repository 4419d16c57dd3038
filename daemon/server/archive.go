package server

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"

	"minidock/api"
	"minidock/daemon"
)

// The archive endpoints of docker cp: HEAD (the path's stat), GET (a tar
// of it), PUT (a tar extracted into a directory).

func setPathStat(w http.ResponseWriter, st api.PathStat) {
	data, _ := json.Marshal(st)
	w.Header().Set(api.PathStatHeader, base64.StdEncoding.EncodeToString(data))
}

func (rt router) containerStatPath(w http.ResponseWriter, r *http.Request) {
	st, err := rt.d.ContainerStatPath(r.Context(), r.PathValue("id"), r.URL.Query().Get("path"))
	if err != nil {
		writeError(w, err)
		return
	}
	setPathStat(w, st)
	w.WriteHeader(http.StatusOK)
}

// containerArchive sends the stat header and the tar; an error after the
// headers can only cut the tar short.
func (rt router) containerArchive(w http.ResponseWriter, r *http.Request) {
	started := false
	err := rt.d.ContainerArchive(r.Context(), r.PathValue("id"), r.URL.Query().Get("path"), func(st api.PathStat) io.Writer {
		setPathStat(w, st)
		w.Header().Set("Content-Type", "application/x-tar")
		started = true
		return w
	})
	if err != nil && !started {
		writeError(w, err)
	}
}

func (rt router) containerExtract(w http.ResponseWriter, r *http.Request) {
	o := daemon.ExtractOptions{CopyUIDGID: boolParam(r, "copyUIDGID"), NoOverwriteDirNonDir: boolParam(r, "noOverwriteDirNonDir")}
	reply(w, http.StatusOK, nil, rt.d.ExtractToContainer(r.Context(), r.PathValue("id"), r.URL.Query().Get("path"), r.Body, o))
}
