package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"minidock/image"
	"minidock/internal/errdefs"
)

// RemoveOptions are a removal's: Force kills a running container first
// (`rm -f`); RemoveVolumes removes its anonymous volumes that no other
// container uses (`rm -v`; AutoRemove does it too), never named ones.
type RemoveOptions struct {
	Force         bool
	RemoveVolumes bool
}

// RemoveContainer is `docker rm [-f] [-v]`: refused while the container
// runs unless forced (then it is killed first); its rootfs, files and
// name go, and its volumes are released. Any number of removals of one
// container may run at once: one removes it, the others find it removed.
func (d *Daemon) RemoveContainer(ctx context.Context, name string, o RemoveOptions) error {
	c, err := d.lookup(name)
	if err != nil {
		return err
	}
	return d.remove(c, o)
}

// remove deletes c once it is not running; with o.Force it stops it
// first. A start may run meanwhile (it holds c.op): after it, look again.
func (d *Daemon) remove(c *Container, o RemoveOptions) error {
	force := o.Force
	for {
		d.mu.Lock()
		running := c.State.Status == "running"
		d.mu.Unlock()
		if running {
			if !force {
				return errdefs.Conflictf("cannot remove container %q: container is running: stop the container before removing or force remove", "/"+c.Name)
			}
			if err := d.stop(c, unix.SIGKILL, 10*time.Second); err != nil && !errdefs.Is(err, errdefs.NotModified) {
				return err
			}
		}
		c.op.Lock()
		d.mu.Lock()
		running, removed := c.State.Status == "running", c.removed
		d.mu.Unlock()
		if removed {
			c.op.Unlock()
			return nil
		}
		if !running {
			break
		}
		c.op.Unlock()
	}
	defer c.op.Unlock()
	d.mu.Lock()
	c.Removing, c.RemoveVolumes = true, o.RemoveVolumes
	err := c.save()
	d.mu.Unlock()
	if err != nil {
		return fmt.Errorf("remove container %s: %w", c.ID, err)
	}
	// the volumes before the files: a daemon that dies after this finds
	// the record still there, and releases them again (restore)
	d.releaseVolumes(c, o.RemoveVolumes)
	if err := d.tracer(c).Call("remove", "rm -r", c.paths.dir+", the rootfs beside "+d.mergedDir(c.ID), "the container's files, its writable layer and its record", d.removeFiles(c.ID, c.paths)); err != nil {
		return err
	}
	d.closeTrace(c)
	d.mu.Lock()
	c.removed = true
	delete(d.containers, c.ID)
	for id, e := range d.execs {
		if e.ContainerID == c.ID {
			delete(d.execs, id)
		}
	}
	delete(d.names, c.Name)
	c.notify()
	d.emit(c, "destroy", nil)
	d.mu.Unlock()
	return nil
}

// removeFiles deletes a container's rootfs (the image store's record
// too) and its directory, config.v2.json last: a removal cut short is
// finished by the next daemon (restore).
func (d *Daemon) removeFiles(id string, p paths) error {
	if err := d.images.RemoveRootfs(id); err != nil && !errors.Is(err, image.ErrNotFound) {
		return fmt.Errorf("remove container %s: %w", id, err)
	}
	ents, _ := os.ReadDir(p.dir)
	for _, e := range ents {
		if f := filepath.Join(p.dir, e.Name()); f != p.config {
			if err := os.RemoveAll(f); err != nil {
				return fmt.Errorf("remove container %s: %w", id, err)
			}
		}
	}
	// A process that ran for the container (its shim, a command-line
	// runtime's delete) may still be closing a file of its own in the
	// directory: a removal that finds it not empty looks again, briefly.
	var err error
	for try := 0; try < 20; try++ {
		if err = os.RemoveAll(p.dir); !errors.Is(err, unix.ENOTEMPTY) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("remove container %s: %w", id, err)
	}
	return nil
}
