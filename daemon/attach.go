package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"

	"minidock/internal/errdefs"
	"minidock/shim"
)

// AttachOptions are the streams a client attaches to.
type AttachOptions struct {
	Stdin, Stdout, Stderr bool
	Streams               Streams
}

// ContainerAttach is POST /containers/{id}/attach?stream=1: the client's
// streams are joined to the container's, through its shim, until the
// container exits. An attach made before the start waits for the shim,
// and the start waits for it to connect (letAttachesConnect), so that it
// sees all of the output.
func (d *Daemon) ContainerAttach(ctx context.Context, name string, o AttachOptions) error {
	c, err := d.lookup(name)
	if err != nil {
		return err
	}
	req := shim.Request{Stdin: o.Stdin, Stdout: o.Stdout, Stderr: o.Stderr}
	d.mu.Lock()
	tty := c.Config.Tty
	req.StdinOnce = c.Config.StdinOnce
	waiting := c.State.Status != "running"
	if waiting {
		c.attaching++ // a start now waits for us
	}
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

	in, out, err := o.Streams(tty)
	if err != nil {
		return err
	}
	// Find the shim: now, or once a start has launched it.
	var st *shim.Stream
	for {
		d.mu.Lock()
		up, status, removed, ch := c.shimUp, c.State.Status, c.removed, c.changed
		d.mu.Unlock()
		if up || status == "running" {
			st, err = c.shim().Attach(req)
			break
		}
		if removed || (!waiting && status != "running") {
			return nil
		}
		// A client that hangs up meanwhile is not noticed (the docker CLI
		// half-closes at once); the wait ends with a start or a remove.
		<-ch
	}
	done()
	if err != nil {
		if shim.CodeOf(err) == shim.ErrNotRunning || errors.Is(err, shim.ErrGone) {
			return nil // it has exited meanwhile: the stream is empty
		}
		return err
	}
	defer st.Close()
	if o.Stdin && in != nil {
		go func() {
			io.Copy(st, in)
			st.CloseWrite()
		}()
	}
	io.Copy(out, st)
	return nil
}

// ResizeContainer is POST /containers/{id}/resize: the shim sets the size
// of the container's terminal.
func (d *Daemon) ResizeContainer(ctx context.Context, name string, h, w uint16) error {
	c, err := d.lookup(name)
	if err != nil {
		return err
	}
	d.mu.Lock()
	running, tty := c.State.Status == "running", c.Config.Tty
	d.mu.Unlock()
	if !running {
		return errdefs.Conflictf("Container %s is not running", c.ID)
	}
	if !tty {
		return errdefs.Invalidf("container %s has no terminal to resize", c.ID)
	}
	if err := c.shim().Resize("", h, w); err != nil {
		return fmt.Errorf("resize %s: %w", c.ID, err)
	}
	return nil
}

// applyConsoleSize gives the terminal of a process just started (the
// container's, execID "", or an exec's) the size its request carried,
// ConsoleSize [height, width], as Docker does before the client's first
// resize. Without a terminal, or without a size, it does nothing; a
// failure is only logged: the client resizes again.
func (d *Daemon) applyConsoleSize(c *Container, execID string, tty bool, size [2]uint) {
	if !tty || size[0] == 0 || size[1] == 0 || size[0] > 0xffff || size[1] > 0xffff {
		return
	}
	if err := c.shim().Resize(execID, uint16(size[0]), uint16(size[1])); err != nil {
		d.log.Printf("container %s: initial console size: %v", c.ID, err)
	}
}
