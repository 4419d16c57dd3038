package daemon

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"

	"minidock/internal/errdefs"
	"minidock/internal/unixsock"
)

// Step mode through the daemon (`minidock run --step`, docs/step.md): the
// client opens a step stream (POST /containers/{id}/step, hijacked) before
// it starts the container. The start then listens on a socket of its own
// (relaySteps), gives its path to the shim (shim.Options.StepSocket), and
// copies between the shim's connection and the client's stream, both
// ways, while the shim's runtime creates the container in step mode and
// then starts it, up to execve: the runtime's prompts reach the client's
// terminal, the answers come back.
// The bytes are the runtime's prompt lines and the person's answer lines;
// the daemon reads none of them.

// stepStream is a client's step stream, waiting for the container's next
// start.
type stepStream struct {
	in    io.Reader
	out   io.Writer
	ready chan struct{} // closed once in and out are set
	done  chan struct{} // closed once a start has used it
}

// ContainerStep is POST /containers/{id}/step: streams is the client's
// terminal for the container's next start, which creates it in step mode.
// It returns once that start is over (execve, or a failure), or the
// container is removed. Only minidock's own runtime steps.
func (d *Daemon) ContainerStep(ctx context.Context, name string, streams Streams) error {
	c, err := d.lookup(name)
	if err != nil {
		return err
	}
	if d.cfg.Runtime != "" {
		return errdefs.Invalidf("step mode needs minidock's own runtime; this daemon runs %s (--runtime)", d.cfg.Runtime)
	}
	s := &stepStream{ready: make(chan struct{}), done: make(chan struct{})}
	d.mu.Lock()
	switch {
	case c.State.Status == "running":
		d.mu.Unlock()
		return errdefs.Conflictf("container %s is running: step mode pauses its start", c.ID)
	case c.step != nil:
		d.mu.Unlock()
		return errdefs.Conflictf("container %s has a step stream already", c.ID)
	}
	c.step = s
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		if c.step == s {
			c.step = nil
		}
		d.mu.Unlock()
	}()
	in, out, err := streams(true)
	if err != nil {
		return err
	}
	s.in, s.out = in, out
	close(s.ready)
	for {
		d.mu.Lock()
		removed, changed := c.removed, c.changed
		d.mu.Unlock()
		if removed {
			return nil
		}
		select {
		case <-s.done:
			return nil
		case <-changed:
		}
	}
}

// relaySteps takes c's step stream, if a client opened one, and listens
// for its shim on <exec-root>/shim/<id>.step.sock; the shim's connection
// and the client's stream are copied both ways. It returns the socket's
// path ("" without a step stream) and end, which stops the relay once the
// start is over (the shim has closed its end by then: endSteps in
// package shim) and lets the client's request return.
func (d *Daemon) relaySteps(c *Container) (socket string, end func(), err error) {
	d.mu.Lock()
	s := c.step
	c.step = nil
	d.mu.Unlock()
	if s == nil {
		return "", func() {}, nil
	}
	<-s.ready
	socket = filepath.Join(d.cfg.ExecRoot, "shim", c.ID+".step.sock")
	ln, err := unixsock.Listen(socket)
	if err != nil {
		close(s.done)
		return "", nil, err
	}
	relayed := make(chan struct{})
	go func() {
		defer close(relayed)
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		go func() {
			io.Copy(conn, s.in)
			// the client hung up: the runtime reads the end, which is q
			conn.(*net.UnixConn).CloseWrite()
		}()
		io.Copy(s.out, conn)
	}()
	var once sync.Once
	return socket, func() {
		once.Do(func() {
			ln.Close()
			os.Remove(socket)
			<-relayed
			close(s.done)
		})
	}, nil
}
