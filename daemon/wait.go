package daemon

import (
	"context"

	"minidock/internal/errdefs"
)

// WaitCondition is what ContainerWait waits for: "not-running" (the
// default), "next-exit" (the end of the next run), or "removed".
type WaitCondition string

// ContainerWait is POST /containers/{id}/wait: once the container is
// found and the condition checked, it returns a channel that gets the
// exit code when the condition holds (and is closed without one if ctx
// ends first). The docker CLI sends start only once the HTTP layer has
// answered with its headers, so "next-exit" counts from this call.
func (d *Daemon) ContainerWait(ctx context.Context, name string, cond WaitCondition) (<-chan int, error) {
	c, err := d.lookup(name)
	if err != nil {
		return nil, err
	}
	switch cond {
	case "", "not-running", "next-exit", "removed":
	default:
		return nil, errdefs.Invalidf("invalid condition: %q", string(cond))
	}
	d.mu.Lock()
	exits0 := c.exits
	d.mu.Unlock()
	out := make(chan int, 1)
	go func() {
		defer close(out)
		for {
			d.mu.Lock()
			var done bool
			switch cond {
			case "next-exit":
				done = c.exits > exits0 || c.removed
			case "removed":
				done = c.removed
			default:
				done = c.State.Status != "running"
			}
			code, ch := c.State.ExitCode, c.changed
			d.mu.Unlock()
			if done {
				out <- code
				return
			}
			select {
			case <-ch:
			case <-ctx.Done():
				return // the client hung up (docker run -d does)
			}
		}
	}()
	return out, nil
}
