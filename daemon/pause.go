package daemon

import (
	"context"
	"fmt"

	"minidock/internal/errdefs"
)

// PauseContainer is `docker pause`: the shim has the runtime freeze the
// container's cgroup; 409 unless it runs and is not paused.
func (d *Daemon) PauseContainer(ctx context.Context, name string) error {
	return d.pauseOrResume(name, true)
}

// UnpauseContainer is `docker unpause`; 409 unless it is paused.
func (d *Daemon) UnpauseContainer(ctx context.Context, name string) error {
	return d.pauseOrResume(name, false)
}

func (d *Daemon) pauseOrResume(name string, pause bool) error {
	c, err := d.lookup(name)
	if err != nil {
		return err
	}
	c.op.Lock()
	defer c.op.Unlock()
	d.mu.Lock()
	running, paused := c.State.Status == "running", c.State.Paused
	d.mu.Unlock()
	switch {
	case pause && !running:
		return errdefs.Conflictf("Container %s is not running", c.ID)
	case pause && paused:
		return errdefs.Conflictf("Container %s is already paused", c.ID)
	case !pause && !paused:
		return errdefs.Conflictf("Container %s is not paused", c.ID)
	}
	verb, do := "pause", c.shim().Pause
	if !pause {
		verb, do = "unpause", c.shim().Resume
	}
	if err := do(); err != nil {
		return fmt.Errorf("%s container %s: %w", verb, c.ID, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if c.State.Status == "running" {
		c.State.Paused = pause
		c.save()
		c.notify()
		d.emit(c, verb, nil)
	}
	return nil
}

// thawForSignal resumes a paused container after a signal was sent to it,
// as Docker does, so that the signal is delivered.
func (d *Daemon) thawForSignal(c *Container) {
	d.mu.Lock()
	paused := c.State.Status == "running" && c.State.Paused
	d.mu.Unlock()
	if !paused {
		return
	}
	c.shim().Resume()
	d.mu.Lock()
	c.State.Paused = false
	c.save()
	c.notify()
	d.mu.Unlock()
}
