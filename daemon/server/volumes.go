package server

import (
	"net/http"

	"minidock/api"
)

func (rt router) volumeList(w http.ResponseWriter, r *http.Request) {
	f, err := filters(r)
	if err != nil {
		writeError(w, err)
		return
	}
	list, err := rt.d.Volumes(r.Context(), f)
	reply(w, http.StatusOK, list, err)
}

func (rt router) volumeInspect(w http.ResponseWriter, r *http.Request) {
	v, err := rt.d.VolumeInspect(r.Context(), r.PathValue("name"))
	reply(w, http.StatusOK, v, err)
}

func (rt router) volumeCreate(w http.ResponseWriter, r *http.Request) {
	var req api.VolumeCreateOptions
	if err := decodeJSON(w, r, &req); err != nil {
		writeError(w, err)
		return
	}
	v, err := rt.d.CreateVolume(r.Context(), req)
	reply(w, http.StatusCreated, v, err)
}

func (rt router) volumeRemove(w http.ResponseWriter, r *http.Request) {
	reply(w, http.StatusNoContent, nil, rt.d.RemoveVolume(r.Context(), r.PathValue("name"), boolParam(r, "force")))
}

// volumesPrune: from API 1.42 a prune takes only anonymous volumes unless
// the filter all=true asks for every unused one; older clients get the
// old behaviour, every unused volume.
func (rt router) volumesPrune(w http.ResponseWriter, r *http.Request) {
	f, err := filters(r)
	if err != nil {
		writeError(w, err)
		return
	}
	if versionLess(apiVersion(r), "1.42") {
		f["all"] = []string{"true"}
	}
	rep, err := rt.d.PruneVolumes(r.Context(), f)
	reply(w, http.StatusOK, rep, err)
}
