package daemon

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"minidock/api"
	"minidock/shim"
)

// containerLogs is GET /containers/{id}/logs: the json-file log the shim
// writes, framed without a TTY, raw with one; follow polls the file until
// the container has stopped and the file is read to its end.
func (d *Daemon) containerLogs(w http.ResponseWriter, r *http.Request) {
	c, err := d.lookup(r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	q := r.URL.Query()
	stdout, stderr := boolParam(r, "stdout"), boolParam(r, "stderr")
	if !stdout && !stderr {
		writeError(w, badRequest("you must choose at least one stream"))
		return
	}
	tail := -1
	if t := q.Get("tail"); t != "" && t != "all" {
		if tail, err = strconv.Atoi(t); err != nil || tail < 0 {
			writeError(w, badRequest("invalid tail %q: a number or \"all\"", t))
			return
		}
	}
	var since time.Time
	if s := q.Get("since"); s != "" && s != "0" {
		sec, err := strconv.ParseFloat(s, 64)
		if err != nil {
			writeError(w, badRequest("invalid since %q: unix seconds", s))
			return
		}
		since = time.Unix(0, int64(sec*1e9))
	}
	follow, timestamps := boolParam(r, "follow"), boolParam(r, "timestamps")
	d.mu.Lock()
	tty := c.Config.Tty
	d.mu.Unlock()

	f, err := os.Open(shim.LogPath(d.containerDir(c.ID), c.ID))
	if err != nil && !os.IsNotExist(err) {
		writeError(w, fmt.Errorf("open log of %s: %w", c.ID, err))
		return
	}
	if f != nil {
		defer f.Close()
	}
	if tty {
		w.Header().Set("Content-Type", api.MediaRaw)
	} else {
		w.Header().Set("Content-Type", api.MediaMultiplexed)
	}
	w.WriteHeader(http.StatusOK)
	fl := w.(http.Flusher)
	fl.Flush()

	write := func(e *shim.LogEntry) error {
		if (e.Stream == "stdout" && !stdout) || (e.Stream == "stderr" && !stderr) || e.Time.Before(since) {
			return nil
		}
		line := []byte(e.Log)
		if timestamps {
			line = append([]byte(e.Time.Format(time.RFC3339Nano)+" "), line...)
		}
		if tty {
			_, err := w.Write(line)
			return err
		}
		stream := api.Stdout
		if e.Stream == "stderr" {
			stream = api.Stderr
		}
		return api.WriteFrame(w, stream, line)
	}

	var br *bufio.Reader
	if f != nil {
		br = bufio.NewReader(f)
	}
	var pending []byte
	// readAll emits every complete line now in the file.
	readAll := func() error {
		if br == nil {
			return nil
		}
		for {
			chunk, err := br.ReadBytes('\n')
			pending = append(pending, chunk...)
			if err != nil {
				return nil // EOF: the rest of a line may come later
			}
			var e shim.LogEntry
			if json.Unmarshal(pending, &e) == nil {
				if err := write(&e); err != nil {
					return err
				}
			}
			pending = pending[:0]
		}
	}
	if tail >= 0 && br != nil {
		// keep the last tail lines of the selected streams
		var kept []shim.LogEntry
		for {
			line, err := br.ReadBytes('\n')
			if err != nil {
				pending = append(pending, line...)
				break
			}
			var e shim.LogEntry
			if json.Unmarshal(line, &e) != nil || (e.Stream == "stdout" && !stdout) || (e.Stream == "stderr" && !stderr) {
				continue
			}
			kept = append(kept, e)
			if len(kept) > tail {
				kept = kept[1:]
			}
		}
		for i := range kept {
			if err := write(&kept[i]); err != nil {
				return
			}
		}
	} else if err := readAll(); err != nil {
		return
	}
	fl.Flush()
	if !follow {
		return
	}
	for {
		d.mu.Lock()
		done := c.State.Status != "running" || c.removed
		ch := c.changed
		d.mu.Unlock()
		if br == nil {
			if f, err = os.Open(shim.LogPath(d.containerDir(c.ID), c.ID)); err == nil {
				defer f.Close()
				br = bufio.NewReader(f)
			}
		}
		if err := readAll(); err != nil {
			return
		}
		fl.Flush()
		if done {
			return
		}
		select {
		case <-ch:
		case <-time.After(100 * time.Millisecond):
		case <-r.Context().Done():
			return
		}
	}
}

// containerAttach is POST /containers/{id}/attach: the connection is
// hijacked and joined to the shim's attach socket. A request made before
// start waits for the shim, and start waits for it to connect.
func (d *Daemon) containerAttach(w http.ResponseWriter, r *http.Request) {
	c, err := d.lookup(r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	if !boolParam(r, "stream") {
		writeError(w, badRequest("attach without stream=1 (logs only) is not supported"))
		return
	}
	req := shim.Request{Stdin: boolParam(r, "stdin"), Stdout: boolParam(r, "stdout"), Stderr: boolParam(r, "stderr")}
	d.mu.Lock()
	tty := c.Config.Tty
	req.StdinOnce = c.Config.StdinOnce
	if c.State.Status == "created" || c.State.Status == "exited" {
		c.attaching++ // a start now waits for us
	}
	waiting := c.State.Status != "running"
	d.mu.Unlock()
	done := func() {
		if waiting {
			d.mu.Lock()
			c.attaching--
			c.notify()
			d.mu.Unlock()
			waiting = false
		}
	}
	defer done()

	hj, ok := w.(http.Hijacker)
	if !ok {
		writeError(w, fmt.Errorf("attach: connection cannot be hijacked"))
		return
	}
	conn, brw, err := hj.Hijack()
	if err != nil {
		return
	}
	defer conn.Close()
	media := api.MediaMultiplexed
	if tty {
		media = api.MediaRaw
	}
	if strings.EqualFold(r.Header.Get("Upgrade"), "tcp") {
		fmt.Fprintf(brw, "HTTP/1.1 101 UPGRADED\r\nContent-Type: %s\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n", media)
	} else {
		fmt.Fprintf(brw, "HTTP/1.1 200 OK\r\nContent-Type: %s\r\n\r\n", media)
	}
	if brw.Flush() != nil {
		return
	}

	// After the hijack, read the connection itself, after what the
	// server had already buffered of it.
	var in io.Reader = conn
	if n := brw.Reader.Buffered(); n > 0 {
		b, _ := brw.Reader.Peek(n)
		in = io.MultiReader(bytes.NewReader(append([]byte(nil), b...)), conn)
	}
	// Find the shim: now, or once a start has created the container.
	var sc *shimConn
	for {
		d.mu.Lock()
		sock, status, removed, ch := c.shimSocket, c.State.Status, c.removed, c.changed
		d.mu.Unlock()
		if sock == "" && status == "running" {
			sock = d.shimSocket(c.ID)
		}
		if sock != "" {
			sc, err = dialShim(sock, req)
			break
		}
		if removed || (!waiting && status != "running") {
			return
		}
		// A client that hangs up meanwhile is not noticed (the docker CLI
		// half-closes at once); the wait ends with a start or a remove.
		<-ch
	}
	done()
	if err != nil {
		return
	}
	defer sc.Close()
	if req.Stdin {
		go func() {
			io.Copy(sc, in)
			sc.CloseWrite()
		}()
	}
	io.Copy(conn, sc)
	if tc, ok := conn.(*net.UnixConn); ok {
		tc.CloseWrite()
	}
}

// terminalSize reads the h= (rows) and w= (columns) of a resize request.
func terminalSize(r *http.Request) (h, w uint64, err error) {
	h, herr := strconv.ParseUint(r.URL.Query().Get("h"), 10, 16)
	w, werr := strconv.ParseUint(r.URL.Query().Get("w"), 10, 16)
	if herr != nil || werr != nil {
		return 0, 0, badRequest("resize: h and w must be numbers of rows and columns")
	}
	return h, w, nil
}

// containerResize is POST /containers/{id}/resize?h=&w=: the shim sets
// the size of the container's terminal.
func (d *Daemon) containerResize(w http.ResponseWriter, r *http.Request) {
	c, err := d.lookup(r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	h, wd, err := terminalSize(r)
	if err != nil {
		writeError(w, err)
		return
	}
	d.mu.Lock()
	running, tty := c.State.Status == "running", c.Config.Tty
	d.mu.Unlock()
	if !running {
		writeError(w, conflict("Container %s is not running", c.ID))
		return
	}
	if !tty {
		writeError(w, badRequest("container %s has no terminal to resize", c.ID))
		return
	}
	sc, err := dialShim(d.shimSocket(c.ID), shim.Request{Resize: true, Height: uint16(h), Width: uint16(wd)})
	if err != nil {
		writeError(w, fmt.Errorf("resize %s: %w", c.ID, err))
		return
	}
	sc.Close()
	w.WriteHeader(http.StatusOK)
}
