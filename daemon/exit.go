package daemon

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"minidock/internal/errdefs"
	"minidock/shim"
)

// monitor waits on a running container's shim for the init's exit (a
// wait request, answered once the shim has deleted the container and
// written exit.json), then records it.
func (d *Daemon) monitor(c *Container) {
	exit, err := c.shim().Wait(context.Background(), "")
	if err != nil {
		exit = nil // gone: exit.json says how it ended
	}
	d.exited(c, exit)
}

// exited records how a run ended: the shim's answer, or else its
// exit.json. A shim gone without either was killed under its container:
// what the runtime still has of it is cleaned up. Then the network is
// left, the rootfs unmounted, and AutoRemove and the restart policy
// applied.
func (d *Daemon) exited(c *Container, exit *shim.Exit) {
	d.mu.Lock()
	current := c.State.Status == "running" || c.State.Starting
	d.mu.Unlock()
	if !current {
		return // recorded already
	}
	lost := false
	if exit == nil {
		exit, lost = d.readExit(c)
	}
	d.tracer(c).CallResult("exit", "shim wait", c.ID[:12], fmt.Sprintf("exit code %d", exit.ExitCode), "the shim reports the container's exit")
	d.leave(c)
	d.mu.Lock()
	c.recordExit(exit, lost)
	c.shimUp = false
	c.notify()
	d.emitExit(c, exit)
	auto := c.HostConfig.AutoRemove && !c.removed
	d.mu.Unlock()
	if auto {
		// not forced: a container restarted meanwhile stays
		if err := d.remove(c, RemoveOptions{RemoveVolumes: true}); err != nil && !errdefs.Is(err, errdefs.Conflict) {
			d.log.Printf("remove container %s (AutoRemove): %v", c.ID, err)
		}
	}
	d.maybeRestart(c)
}

// leave gives back what a run of c held: its network (addresses, veths,
// ports), its rootfs mount and its volumes' driver filesystems.
func (d *Daemon) leave(c *Container) {
	d.mu.Lock()
	sb := c.sandbox()
	d.mu.Unlock()
	tr := d.tracer(c)
	sb.Trace = tr
	tr.Line("exit", "leave: network, rootfs, volumes")
	d.network.Leave(sb)
	tr.Call("exit", "umount2", d.mergedDir(c.ID)+", UMOUNT_NOFOLLOW", "the container's overlay mount goes; its upper directory stays", d.images.Unmount(c.ID))
	d.unmountShm(c) // namespaces.go: a shareable IPC namespace's /dev/shm
	d.unmountVolumes(c)
	d.mu.Lock()
	c.setSandbox(sb)
	d.mu.Unlock()
}

// recordExit saves how a run ended; lost: nobody recorded it. Callers
// hold d.mu.
func (c *Container) recordExit(exit *shim.Exit, lost bool) {
	c.State = State{Status: "exited", OOMKilled: exit.OOMKilled, ExitCode: exit.ExitCode,
		StartedAt: c.State.StartedAt, FinishedAt: exit.FinishedAt}
	if lost {
		c.State.Error = "the shim ended without recording an exit status"
	}
	c.exits++
	c.save()
}

// emitExit sends the events of an exit: oom (if so), die. Callers hold
// d.mu.
func (d *Daemon) emitExit(c *Container, exit *shim.Exit) {
	if exit.OOMKilled {
		d.emit(c, "oom", nil)
	}
	d.emit(c, "die", map[string]string{"exitCode": strconv.Itoa(exit.ExitCode)})
}

// readExit is how a run ended for which the shim said nothing: its
// exit.json, or, lost, a shim killed under its container: what the
// runtime still has of it is cleaned up, and the code is 255.
func (d *Daemon) readExit(c *Container) (exit *shim.Exit, lost bool) {
	exit, err := shim.ReadExit(c.paths.dir)
	if err == nil {
		return exit, false
	}
	if err := shim.Cleanup(d.cfg.Binary, d.shimOptions(c)); err != nil {
		d.log.Print(err)
	}
	return &shim.Exit{ExitCode: 255, FinishedAt: time.Now().UTC()}, true
}
