package server

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"

	"minidock/api"
	"minidock/daemon"
	"minidock/internal/errdefs"
)

// Hijacked streams (attach, exec start): the engine calls back once it is
// about to join the process (daemon.Streams), and only then is the HTTP
// connection taken over and answered 101 UPGRADED; an error before that
// is an ordinary HTTP error.

// hijacker answers and takes over one request's connection.
type hijacker struct {
	w    http.ResponseWriter
	r    *http.Request
	conn net.Conn
}

// streams is the daemon.Streams of the request: the client's stdin (what
// the server had buffered of it, then the connection) and the connection
// for the output.
func (h *hijacker) streams(tty bool) (io.Reader, io.Writer, error) {
	hj, ok := h.w.(http.Hijacker)
	if !ok {
		return nil, nil, fmt.Errorf("the connection cannot be hijacked")
	}
	conn, brw, err := hj.Hijack()
	if err != nil {
		return nil, nil, err
	}
	h.conn = conn
	media := api.MediaMultiplexed
	if tty {
		media = api.MediaRaw
	}
	if strings.EqualFold(h.r.Header.Get("Upgrade"), "tcp") {
		fmt.Fprintf(brw, "HTTP/1.1 101 UPGRADED\r\nContent-Type: %s\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n", media)
	} else {
		fmt.Fprintf(brw, "HTTP/1.1 200 OK\r\nContent-Type: %s\r\n\r\n", media)
	}
	if err := brw.Flush(); err != nil {
		return nil, nil, err
	}
	return bufferedThenConn(brw.Reader, conn), conn, nil
}

// bufferedThenConn reads what the server had buffered of the connection,
// then the connection itself.
func bufferedThenConn(br *bufio.Reader, conn net.Conn) io.Reader {
	n := br.Buffered()
	if n == 0 {
		return conn
	}
	b, _ := br.Peek(n)
	return io.MultiReader(bytes.NewReader(append([]byte(nil), b...)), conn)
}

// finish ends a hijacked connection: the client sees the end of the
// stream. err, if the connection was not taken over yet, is an HTTP error.
func (h *hijacker) finish(err error) {
	if h.conn == nil {
		if err != nil {
			writeError(h.w, err)
		}
		return
	}
	if cw, ok := h.conn.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite() // unix, TCP (trackedConn) or TLS (close_notify)
	}
	h.conn.Close()
}

// containerAttach is POST /containers/{id}/attach?stream=1&stdin=&stdout=&stderr=.
func (rt router) containerAttach(w http.ResponseWriter, r *http.Request) {
	if !boolParam(r, "stream") {
		writeError(w, errdefs.Invalidf("attach without stream=1 (logs only) is not supported"))
		return
	}
	if boolParam(r, "logs") {
		writeError(w, errdefs.Invalidf("attach with logs=1 is not supported by this daemon: the past output is GET /containers/{id}/logs"))
		return
	}
	h := &hijacker{w: w, r: r}
	h.finish(rt.d.ContainerAttach(r.Context(), r.PathValue("id"), daemon.AttachOptions{
		Stdin: boolParam(r, "stdin"), Stdout: boolParam(r, "stdout"), Stderr: boolParam(r, "stderr"), Streams: h.streams}))
}

// containerStep is POST /containers/{id}/step, minidock's own: the
// client's terminal for the container's next start, in step mode
// (daemon.ContainerStep), hijacked; raw bytes both ways.
func (rt router) containerStep(w http.ResponseWriter, r *http.Request) {
	h := &hijacker{w: w, r: r}
	h.finish(rt.d.ContainerStep(r.Context(), r.PathValue("id"), h.streams))
}

// execStart is POST /exec/{id}/start: hijacked unless Detach.
func (rt router) execStart(w http.ResponseWriter, r *http.Request) {
	var req struct{ Detach, Tty bool }
	if r.ContentLength != 0 {
		if err := decodeJSON(w, r, &req); err != nil {
			writeError(w, err)
			return
		}
	}
	h := &hijacker{w: w, r: r}
	err := rt.d.ExecStart(r.Context(), r.PathValue("id"), daemon.ExecStartOptions{Detach: req.Detach, Streams: h.streams})
	if req.Detach && err == nil {
		w.WriteHeader(http.StatusOK)
		return
	}
	h.finish(err)
}

// terminalSize reads the h= (rows) and w= (columns) of a resize request.
func terminalSize(r *http.Request) (h, w uint16, err error) {
	hh, herr := strconv.ParseUint(r.URL.Query().Get("h"), 10, 16)
	ww, werr := strconv.ParseUint(r.URL.Query().Get("w"), 10, 16)
	if herr != nil || werr != nil {
		return 0, 0, errdefs.Invalidf("resize: h and w must be numbers of rows and columns")
	}
	return uint16(hh), uint16(ww), nil
}

func (rt router) containerResize(w http.ResponseWriter, r *http.Request) {
	h, wd, err := terminalSize(r)
	if err == nil {
		err = rt.d.ResizeContainer(r.Context(), r.PathValue("id"), h, wd)
	}
	reply(w, http.StatusOK, nil, err)
}

func (rt router) execResize(w http.ResponseWriter, r *http.Request) {
	h, wd, err := terminalSize(r)
	if err == nil {
		err = rt.d.ExecResize(r.Context(), r.PathValue("id"), h, wd)
	}
	reply(w, http.StatusOK, nil, err)
}

func (rt router) execCreate(w http.ResponseWriter, r *http.Request) {
	var cfg api.ExecConfig
	if err := decodeStrict(w, r, &cfg); err != nil {
		writeError(w, err)
		return
	}
	id, err := rt.d.ExecCreate(r.Context(), r.PathValue("id"), cfg)
	reply(w, http.StatusCreated, api.CreateResponse{ID: id, Warnings: []string{}}, err)
}

func (rt router) execInspect(w http.ResponseWriter, r *http.Request) {
	e, err := rt.d.ExecInspect(r.Context(), r.PathValue("id"))
	reply(w, http.StatusOK, e, err)
}
