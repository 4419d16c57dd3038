package server

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"minidock/api"
	"minidock/daemon"
	"minidock/internal/errdefs"
	"minidock/shim"
)

func (rt router) containerCreate(w http.ResponseWriter, r *http.Request) {
	var req api.ContainerCreateRequest
	if err := decodeStrict(w, r, &req); err != nil {
		writeError(w, err)
		return
	}
	// trace=1 is minidock's own parameter (docs/trace.md): the container
	// is traced into a file that GET /containers/{id}/trace returns.
	cc := daemon.ContainerCreateConfig{Name: r.URL.Query().Get("name"), Config: req.ContainerConfig, NetworkingConfig: req.NetworkingConfig,
		Trace: boolParam(r, "trace")}
	if req.HostConfig != nil {
		cc.HostConfig = *req.HostConfig
	}
	resp, err := rt.d.CreateContainer(r.Context(), cc)
	reply(w, http.StatusCreated, resp, err)
}

// containerTrace is GET /containers/{id}/trace (minidock's own): the
// container's trace file, JSON lines (docs/trace.md).
func (rt router) containerTrace(w http.ResponseWriter, r *http.Request) {
	data, err := rt.d.ContainerTrace(r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Write(data)
}

func (rt router) containerList(w http.ResponseWriter, r *http.Request) {
	f, err := filters(r)
	if err != nil {
		writeError(w, err)
		return
	}
	o := daemon.ListOptions{All: boolParam(r, "all"), Filters: f}
	if l := r.URL.Query().Get("limit"); l != "" {
		if o.Limit, err = strconv.Atoi(l); err != nil {
			writeError(w, errdefs.Invalidf("invalid limit %q", l))
			return
		}
	}
	list, err := rt.d.Containers(r.Context(), o)
	reply(w, http.StatusOK, list, err)
}

func (rt router) containerInspect(w http.ResponseWriter, r *http.Request) {
	c, err := rt.d.ContainerInspect(r.Context(), r.PathValue("id"))
	reply(w, http.StatusOK, c, err)
}

func (rt router) containerStart(w http.ResponseWriter, r *http.Request) {
	reply(w, http.StatusNoContent, nil, rt.d.StartContainer(r.Context(), r.PathValue("id")))
}

// stopTimeout reads the t= of stop and restart: seconds (negative: no
// limit); nil when not given.
func stopTimeout(r *http.Request) (*time.Duration, error) {
	t := r.URL.Query().Get("t")
	if t == "" {
		return nil, nil
	}
	n, err := strconv.Atoi(t)
	if err != nil {
		return nil, errdefs.Invalidf("invalid stop timeout t=%q", t)
	}
	d := time.Duration(n) * time.Second
	return &d, nil
}

func (rt router) containerStop(w http.ResponseWriter, r *http.Request) {
	timeout, err := stopTimeout(r)
	if err == nil {
		err = rt.d.StopContainer(r.Context(), r.PathValue("id"), daemon.StopOptions{Signal: r.URL.Query().Get("signal"), Timeout: timeout})
	}
	reply(w, http.StatusNoContent, nil, err)
}

func (rt router) containerRestart(w http.ResponseWriter, r *http.Request) {
	timeout, err := stopTimeout(r)
	if err == nil {
		err = rt.d.RestartContainer(r.Context(), r.PathValue("id"), timeout)
	}
	reply(w, http.StatusNoContent, nil, err)
}

func (rt router) containerKill(w http.ResponseWriter, r *http.Request) {
	reply(w, http.StatusNoContent, nil, rt.d.KillContainer(r.Context(), r.PathValue("id"), r.URL.Query().Get("signal")))
}

func (rt router) containerRemove(w http.ResponseWriter, r *http.Request) {
	reply(w, http.StatusNoContent, nil, rt.d.RemoveContainer(r.Context(), r.PathValue("id"),
		daemon.RemoveOptions{Force: boolParam(r, "force"), RemoveVolumes: boolParam(r, "v")}))
}

// containerWait sends its 200 headers at once (the docker CLI sends start
// only once it has them), then the exit code when the condition holds.
func (rt router) containerWait(w http.ResponseWriter, r *http.Request) {
	ch, err := rt.d.ContainerWait(r.Context(), r.PathValue("id"), daemon.WaitCondition(r.URL.Query().Get("condition")))
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.(http.Flusher).Flush()
	if code, ok := <-ch; ok {
		json.NewEncoder(w).Encode(api.WaitResponse{StatusCode: code})
	}
}

func (rt router) containerRename(w http.ResponseWriter, r *http.Request) {
	reply(w, http.StatusNoContent, nil, rt.d.RenameContainer(r.Context(), r.PathValue("id"), r.URL.Query().Get("name")))
}

func (rt router) containerPause(w http.ResponseWriter, r *http.Request) {
	reply(w, http.StatusNoContent, nil, rt.d.PauseContainer(r.Context(), r.PathValue("id")))
}

func (rt router) containerUnpause(w http.ResponseWriter, r *http.Request) {
	reply(w, http.StatusNoContent, nil, rt.d.UnpauseContainer(r.Context(), r.PathValue("id")))
}

func (rt router) containerTop(w http.ResponseWriter, r *http.Request) {
	top, err := rt.d.ContainerTop(r.Context(), r.PathValue("id"))
	reply(w, http.StatusOK, top, err)
}

// containerExplain is minidock's GET /containers/{id}/explain: what the
// kernel built for the container (daemon.Explain).
func (rt router) containerExplain(w http.ResponseWriter, r *http.Request) {
	ex, err := rt.d.Explain(r.Context(), r.PathValue("id"))
	reply(w, http.StatusOK, ex, err)
}

// containerStats streams samples until the client hangs up (stream=0:
// one); the headers go with the first.
func (rt router) containerStats(w http.ResponseWriter, r *http.Request) {
	stream := true
	if r.URL.Query().Get("stream") != "" {
		stream = boolParam(r, "stream")
	}
	var enc *json.Encoder
	err := rt.d.ContainerStats(r.Context(), r.PathValue("id"), stream, func(s *api.StatsJSON) error {
		if enc == nil {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusOK)
			enc = json.NewEncoder(w)
		}
		if err := enc.Encode(s); err != nil {
			return err
		}
		w.(http.Flusher).Flush()
		return nil
	})
	if err != nil && enc == nil {
		writeError(w, err)
	}
}

// containerLogs is the json-file log, framed without a TTY, raw with one.
func (rt router) containerLogs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	o := daemon.LogsOptions{Stdout: boolParam(r, "stdout"), Stderr: boolParam(r, "stderr"), Tail: -1, Follow: boolParam(r, "follow")}
	if t := q.Get("tail"); t != "" && t != "all" {
		n, err := strconv.Atoi(t)
		if err != nil || n < 0 {
			writeError(w, errdefs.Invalidf("invalid tail %q: a number or \"all\"", t))
			return
		}
		o.Tail = n
	}
	if s := q.Get("since"); s != "" && s != "0" {
		t, err := parseTime(s)
		if err != nil {
			writeError(w, err)
			return
		}
		o.Since = t
	}
	logs, err := rt.d.ContainerLogs(r.Context(), r.PathValue("id"), o)
	if err != nil {
		writeError(w, err)
		return
	}
	if logs.Tty {
		w.Header().Set("Content-Type", api.MediaRaw)
	} else {
		w.Header().Set("Content-Type", api.MediaMultiplexed)
	}
	w.WriteHeader(http.StatusOK)
	fl := w.(http.Flusher)
	fl.Flush()
	timestamps := boolParam(r, "timestamps")
	logs.Each(r.Context(), func(e *shim.LogEntry) error {
		line := []byte(e.Log)
		if timestamps {
			line = append([]byte(e.Time.Format(time.RFC3339Nano)+" "), line...)
		}
		if logs.Tty {
			_, err := w.Write(line)
			return err
		}
		stream := api.Stdout
		if e.Stream == "stderr" {
			stream = api.Stderr
		}
		return api.WriteFrame(w, stream, line)
	}, fl.Flush)
}

// containerExport writes the tar; an error after its first byte can
// only cut it short.
func (rt router) containerExport(w http.ResponseWriter, r *http.Request) {
	out := &lazyWriter{w: w, contentType: "application/x-tar"}
	if err := rt.d.ContainerExport(r.Context(), r.PathValue("id"), out); err != nil && !out.started {
		writeError(w, err)
	}
}

// lazyWriter sends the 200 headers with its first write.
type lazyWriter struct {
	w           http.ResponseWriter
	contentType string
	started     bool
}

func (l *lazyWriter) Write(p []byte) (int, error) {
	if !l.started {
		l.w.Header().Set("Content-Type", l.contentType)
		l.started = true
	}
	return l.w.Write(p)
}

func (rt router) containerChanges(w http.ResponseWriter, r *http.Request) {
	changes, err := rt.d.ContainerChanges(r.Context(), r.PathValue("id"))
	reply(w, http.StatusOK, changes, err)
}

func (rt router) containersPrune(w http.ResponseWriter, r *http.Request) {
	f, err := filters(r)
	if err != nil {
		writeError(w, err)
		return
	}
	report, err := rt.d.PruneContainers(r.Context(), f)
	reply(w, http.StatusOK, report, err)
}

// commit is POST /commit?container=&repo=&tag=&comment=&author=&changes=;
// the body, optional, is a config to apply over the container's.
func (rt router) commit(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	o := daemon.CommitOptions{Ref: q.Get("repo"), Author: q.Get("author"), Comment: q.Get("comment"), Changes: q["changes"]}
	if q.Get("tag") != "" {
		if o.Ref == "" {
			writeError(w, errdefs.Invalidf("tag %q given without a repository", q.Get("tag")))
			return
		}
		o.Ref += ":" + q.Get("tag")
	}
	if r.ContentLength != 0 {
		var body api.ContainerConfig
		if err := decodeJSON(w, r, &body); err != nil {
			if r.ContentLength > 0 {
				writeError(w, err)
				return
			}
		} else {
			o.Config = &body
		}
	}
	id, err := rt.d.Commit(r.Context(), q.Get("container"), o)
	reply(w, http.StatusCreated, api.IDResponse{ID: id}, err)
}
