package daemon

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"minidock/internal/errdefs"
	"minidock/internal/trace"
)

// A traced container (created with `minidock run --trace`, which sends
// POST /containers/create?trace=1, or any container of a daemon started
// with --trace or MINIDOCK_TRACE=1) has a trace file under the exec root,
// trace/<id>.jsonl: the daemon, the container's shim, the runtime in the
// shim and the init each append their events to it, one JSON line per
// kernel call or step (package trace). GET /containers/{id}/trace returns
// it; the client merges it with its own events into one timeline
// (docs/trace.md). Nothing of it ever goes to the container's stdio.
//
// The file outlives a removal (a `run --rm` wants the removal in its
// timeline) until it is fetched once; a daemon's start removes those that
// nobody fetched.

// traceDir is where the trace files are.
func (d *Daemon) traceDir() string { return filepath.Join(d.cfg.ExecRoot, "trace") }

// tracePath is container id's trace file.
func (d *Daemon) tracePath(id string) string { return filepath.Join(d.traceDir(), id+".jsonl") }

// tracer is c's Tracer, opened at first use; nil for an untraced
// container. Callers hold neither d.mu nor need to: c.tr is set once.
func (d *Daemon) tracer(c *Container) *trace.Tracer {
	if !d.traced(c) {
		return nil
	}
	c.trOnce.Do(func() {
		if err := os.MkdirAll(d.traceDir(), 0o700); err != nil {
			d.log.Printf("container %s: trace: %v", c.ID, err)
			return
		}
		tr, err := trace.OpenFile(d.tracePath(c.ID), "daemon")
		if err != nil {
			d.log.Printf("container %s: trace: %v", c.ID, err)
			return
		}
		c.tr = tr
	})
	return c.tr
}

// ContainerTrace is the trace file of a container, or of one removed
// since whose trace nobody fetched yet (named by its full id): then this
// fetch is the last, and the file goes.
func (d *Daemon) ContainerTrace(name string) ([]byte, error) {
	c, err := d.lookup(name)
	if err == nil {
		if !d.traced(c) {
			return nil, errdefs.Invalidf("container %s is not traced: create it with `minidock run --trace` (create?trace=1) or start the daemon with --trace", c.ID)
		}
		data, err := os.ReadFile(d.tracePath(c.ID))
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil // nothing happened yet
		}
		return data, err
	}
	if fullID(name) != nil {
		return nil, err
	}
	data, rerr := os.ReadFile(d.tracePath(name))
	if rerr != nil {
		return nil, err // no such container, and no trace left of one
	}
	os.Remove(d.tracePath(name))
	return data, nil
}

// traced says whether c is traced: asked for at its create, or by the
// daemon's --trace.
func (d *Daemon) traced(c *Container) bool { return c.Trace || d.cfg.Trace }

// closeTrace closes c's trace file once c is removed. The file of a
// container traced at the request of a `run --rm` stays for one fetch
// (ContainerTrace); any other goes with the container.
func (d *Daemon) closeTrace(c *Container) {
	if c.tr != nil {
		c.tr.Close()
	}
	if !c.Trace || !c.HostConfig.AutoRemove {
		os.Remove(d.tracePath(c.ID))
	}
}

// removeStaleTraces removes, at the daemon's start, the trace files of
// containers that no longer exist.
func (d *Daemon) removeStaleTraces() {
	ents, _ := os.ReadDir(d.traceDir())
	for _, e := range ents {
		id := e.Name()[:max(0, len(e.Name())-len(".jsonl"))]
		if _, ok := d.containers[id]; !ok {
			os.Remove(filepath.Join(d.traceDir(), e.Name()))
		}
	}
}

// fullID accepts a full container id: 64 hex digits.
func fullID(id string) error {
	if len(id) != 64 {
		return fmt.Errorf("%q is not a full container id", id)
	}
	for _, r := range id {
		if (r < '0' || r > '9') && (r < 'a' || r > 'f') {
			return fmt.Errorf("%q is not a full container id", id)
		}
	}
	return nil
}

// mergedDir is where c's overlay is mounted, for the trace.
func (d *Daemon) mergedDir(id string) string {
	if r, err := d.images.Rootfs(id); err == nil {
		return r.Merged
	}
	return "the rootfs of " + id[:12]
}
