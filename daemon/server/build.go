package server

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"minidock/build"
	"minidock/internal/errdefs"
)

// build is POST /build, the classic builder's endpoint: the body is the
// build context as a tar (plain, gzip or bzip2), the query the build's
// options. The query is checked whole before anything is read; then the
// reply is Docker's JSON stream, each message flushed as it is written,
// ending with {"aux":{"ID":...}} or an errorDetail. The request's context
// ends when the client hangs up, which cancels the build.
func (rt router) build(w http.ResponseWriter, r *http.Request) {
	opts, err := buildOptions(r.URL.Query())
	if err == nil && opts.NetworkMode != "default" && opts.NetworkMode != "host" && opts.NetworkMode != "none" {
		if _, nerr := rt.d.NetworkInspect(r.Context(), opts.NetworkMode); nerr != nil {
			err = errdefs.Invalidf("networkmode %q: no such network (default, host, none or a network's name)", opts.NetworkMode)
		}
	}
	if err != nil {
		writeError(w, err)
		return
	}
	// Messages go out while the context may still be coming in: without
	// full duplex, net/http would discard the unread body at the first
	// flush.
	http.NewResponseController(w).EnableFullDuplex()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	// The error, if any, is in the stream already.
	rt.d.Build(r.Context(), opts, r.Body, flushWriter{w})
	// A build that failed before the end of its context leaves some of it
	// unread. Read what is left here, up to 1 MiB: net/http would
	// otherwise read the rest after the handler, and its watch for the
	// client's next request, armed when the body ends, would then race
	// with the read of that request (seen: "invalid concurrent Body.Read
	// call"). More than that left, net/http closes the connection.
	io.CopyN(io.Discard, r.Body, 1<<20)
}

// flushWriter sends each write to the client at once.
type flushWriter struct{ w http.ResponseWriter }

func (f flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if fl, ok := f.w.(http.Flusher); ok {
		fl.Flush()
	}
	return n, err
}

// buildOptions reads POST /build's query. The docker CLI sends every
// parameter it knows, most at their zero value; a parameter this builder
// does not support is refused naming it only when it asks for something
// (a non-zero value), and one it does not know at all is refused always.
func buildOptions(q url.Values) (build.Options, error) {
	opts := build.Options{
		Tags: q["t"], Dockerfile: q.Get("dockerfile"), Target: q.Get("target"),
		Platform: q.Get("platform"), NetworkMode: q.Get("networkmode"),
	}
	var bad []string
	flag := func(name string) bool {
		switch v := q.Get(name); strings.ToLower(v) {
		case "", "0", "false":
			return false
		case "1", "true":
			return true
		default:
			bad = append(bad, fmt.Sprintf("%s=%q (want 0 or 1)", name, v))
			return false
		}
	}
	opts.NoCache, opts.Quiet, opts.Pull = flag("nocache"), flag("q"), flag("pull")
	flag("forcerm") // a failed step's container is removed anyway
	opts.KeepContainers = q.Has("rm") && !flag("rm")
	if v := q.Get("buildargs"); v != "" && v != "null" {
		if err := json.Unmarshal([]byte(v), &opts.BuildArgs); err != nil {
			bad = append(bad, fmt.Sprintf("buildargs: not a JSON object of strings: %v", err))
		}
	}
	if v := q.Get("labels"); v != "" && v != "null" {
		if err := json.Unmarshal([]byte(v), &opts.Labels); err != nil {
			bad = append(bad, fmt.Sprintf("labels: not a JSON object of strings: %v", err))
		}
	}
	switch opts.NetworkMode {
	case "", "default", "bridge":
		opts.NetworkMode = "default"
	}
	switch v := q.Get("version"); v {
	case "", "1":
	case "2":
		bad = append(bad, "version=2: BuildKit is not supported; this daemon has the classic builder (DOCKER_BUILDKIT=0)")
	default:
		bad = append(bad, fmt.Sprintf("version=%q: unknown builder version", v))
	}
	for name := range q {
		if isBuildParam(name) {
			continue
		}
		if zero, known := unsupportedBuildParam(name); !known {
			bad = append(bad, fmt.Sprintf("%s: unknown parameter", name))
		} else if v := q.Get(name); !zero(v) || len(q[name]) > 1 {
			bad = append(bad, fmt.Sprintf("%s=%q: not supported by this builder", name, v))
		}
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		return opts, errdefs.Invalidf("build: %s", strings.Join(bad, "; "))
	}
	return opts, nil
}

// isBuildParam tells the parameters of POST /build this builder applies.
func isBuildParam(name string) bool {
	switch name {
	case "t", "dockerfile", "buildargs", "target", "nocache", "rm", "forcerm", "labels",
		"networkmode", "q", "pull", "platform", "version":
		return true
	}
	return false
}

// unsupportedBuildParam tells, for a parameter of Docker's POST /build
// that this builder does not apply, which values ask for nothing (the
// docker CLI sends them all, at their zero value); known is false for a
// parameter Docker's API does not have.
func unsupportedBuildParam(name string) (zero func(string) bool, known bool) {
	empty := func(v string) bool { return v == "" }
	number := func(v string) bool { return v == "" || v == "0" }
	list := func(v string) bool { return v == "" || v == "null" || v == "[]" || v == "{}" }
	switch name {
	case "cpusetcpus", "cpusetmems", "cgroupparent", "remote", "session", "buildid", "extrahosts", "securityopt":
		return empty, true
	case "cpushares", "cpuquota", "cpuperiod", "memory", "memswap", "shmsize", "squash":
		return number, true
	case "ulimits", "cachefrom", "outputs":
		return list, true
	case "isolation":
		return func(v string) bool { return v == "" || v == "default" }, true
	}
	return nil, false
}
