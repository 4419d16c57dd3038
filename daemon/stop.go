package daemon

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"minidock/internal/errdefs"
	"minidock/internal/signals"
	"minidock/shim"
)

// StopOptions are a stop's signal ("" = the container's StopSignal, else
// SIGTERM) and how long to wait before SIGKILL (nil = 10 s; negative = for
// ever).
type StopOptions struct {
	Signal  string
	Timeout *time.Duration
}

func (o StopOptions) timeout() time.Duration {
	if o.Timeout == nil {
		return 10 * time.Second
	}
	return *o.Timeout
}

// StopContainer is `docker stop`: the stop signal, up to the timeout for
// the container to exit, then SIGKILL. ErrNotModified when it was not
// running.
func (d *Daemon) StopContainer(ctx context.Context, name string, o StopOptions) error {
	c, err := d.lookup(name)
	if err != nil {
		return err
	}
	sig := unix.SIGTERM
	if o.Signal != "" {
		if sig, err = signals.Parse(o.Signal); err != nil {
			return errdefs.Wrap(errdefs.InvalidParameter, err)
		}
	} else if c.Config.StopSignal != "" {
		if s, err := signals.Parse(c.Config.StopSignal); err == nil {
			sig = s
		}
	}
	return d.stop(c, sig, o.timeout())
}

// stop sends sig, waits up to timeout (a negative one: for ever), then
// kills; ErrNotModified when the container was not running. The exit is
// recorded (and AutoRemove done) when it returns.
func (d *Daemon) stop(c *Container, sig unix.Signal, timeout time.Duration) error {
	wasRestarting := d.cancelRestart(c)
	d.mu.Lock()
	running := c.State.Status == "running"
	d.mu.Unlock()
	if !running && !wasRestarting {
		return errdefs.ErrNotModified
	}
	if !running {
		return nil // the restart it waited for is off: stopped
	}
	if err := d.signal(c, sig, false); err != nil && !d.waitStopped(c, time.Second) {
		return err
	}
	if timeout < 0 {
		timeout = 1<<63 - 1
	}
	if d.waitStopped(c, timeout) {
		return nil
	}
	if err := d.signal(c, unix.SIGKILL, true); err != nil && !d.waitStopped(c, time.Second) {
		return err
	}
	if !d.waitStopped(c, 10*time.Second) {
		return fmt.Errorf("container %s did not exit 10s after SIGKILL", c.ID)
	}
	return nil
}

// KillContainer is `docker kill`: a signal (default SIGKILL); 409 when the
// container is not running. After SIGKILL it returns once the exit is
// recorded.
func (d *Daemon) KillContainer(ctx context.Context, name, signal string) error {
	c, err := d.lookup(name)
	if err != nil {
		return err
	}
	sig := unix.SIGKILL
	if signal != "" {
		if sig, err = signals.Parse(signal); err != nil {
			return errdefs.Wrap(errdefs.InvalidParameter, err)
		}
	}
	d.mu.Lock()
	running := c.State.Status == "running"
	d.mu.Unlock()
	if !running {
		return errdefs.Conflictf("Cannot kill container: %s: container %s is not running", name, c.ID)
	}
	d.cancelRestart(c)
	if err := d.signal(c, sig, false); err != nil {
		return err
	}
	if sig == unix.SIGKILL {
		d.waitStopped(c, 10*time.Second)
	}
	return nil
}

// RestartContainer is `docker restart`: stop (when running), then start.
func (d *Daemon) RestartContainer(ctx context.Context, name string, timeout *time.Duration) error {
	c, err := d.lookup(name)
	if err != nil {
		return err
	}
	if err := d.stop(c, unix.SIGTERM, StopOptions{Timeout: timeout}.timeout()); err != nil && !errdefs.Is(err, errdefs.NotModified) {
		return err
	}
	d.userStart(c)
	return d.start(c)
}

// signal has the shim send sig to c's init (all: to every process, so a
// SIGKILL leaves nothing behind), then thaws a paused container so that
// the signal is delivered, as Docker does. A container whose process has
// just exited (or whose shim has gone) is no error: it is stopping.
func (d *Daemon) signal(c *Container, sig unix.Signal, all bool) error {
	err := c.shim().Kill("", sig, all)
	switch {
	case err == nil:
	case shim.CodeOf(err) == shim.ErrNotRunning, errors.Is(err, shim.ErrGone):
		return nil
	default:
		return fmt.Errorf("kill container %s with signal %d: %w", c.ID, sig, err)
	}
	d.thawForSignal(c)
	return nil
}

// waitStopped waits up to timeout for c to stop running.
func (d *Daemon) waitStopped(c *Container, timeout time.Duration) bool {
	deadline := time.After(timeout)
	for {
		d.mu.Lock()
		running, ch := c.State.Status == "running", c.changed
		d.mu.Unlock()
		if !running {
			return true
		}
		select {
		case <-ch:
		case <-deadline:
			return false
		}
	}
}
