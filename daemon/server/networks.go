package server

import (
	"net/http"

	"minidock/api"
)

func (rt router) networkList(w http.ResponseWriter, r *http.Request) {
	f, err := filters(r)
	if err != nil {
		writeError(w, err)
		return
	}
	list, err := rt.d.Networks(r.Context(), f)
	reply(w, http.StatusOK, list, err)
}

func (rt router) networkInspect(w http.ResponseWriter, r *http.Request) {
	n, err := rt.d.NetworkInspect(r.Context(), r.PathValue("id"))
	reply(w, http.StatusOK, n, err)
}

func (rt router) networkCreate(w http.ResponseWriter, r *http.Request) {
	var req api.NetworkCreateRequest
	if err := decodeJSON(w, r, &req); err != nil {
		writeError(w, err)
		return
	}
	id, err := rt.d.CreateNetwork(r.Context(), req)
	reply(w, http.StatusCreated, api.NetworkCreateResponse{ID: id}, err)
}

func (rt router) networkRemove(w http.ResponseWriter, r *http.Request) {
	reply(w, http.StatusNoContent, nil, rt.d.RemoveNetwork(r.Context(), r.PathValue("id")))
}

func (rt router) networksPrune(w http.ResponseWriter, r *http.Request) {
	report, err := rt.d.PruneNetworks(r.Context())
	reply(w, http.StatusOK, report, err)
}

func (rt router) networkConnect(w http.ResponseWriter, r *http.Request) {
	var req api.NetworkConnectRequest
	if err := decodeJSON(w, r, &req); err != nil {
		writeError(w, err)
		return
	}
	reply(w, http.StatusOK, nil, rt.d.ConnectNetwork(r.Context(), r.PathValue("id"), req.Container, req.EndpointConfig))
}

func (rt router) networkDisconnect(w http.ResponseWriter, r *http.Request) {
	var req api.NetworkDisconnectRequest
	if err := decodeJSON(w, r, &req); err != nil {
		writeError(w, err)
		return
	}
	reply(w, http.StatusOK, nil, rt.d.DisconnectNetwork(r.Context(), r.PathValue("id"), req.Container))
}
