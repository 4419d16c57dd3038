package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"minidock/network"
	"minidock/shim"
)

// restore loads every saved container and makes its record match what
// runs, asking each container's shim, the only supervisor, whatever the
// moment the last daemon died at:
//
//   - a directory without config.v2.json (a create cut short), or a record
//     marked Removing (a removal cut short): the removal is finished;
//   - recorded running, or Starting (the daemon died during a start):
//     a shim that answers tells the truth. Running or paused: the
//     container is taken up (and watched again); created, never started:
//     the shim deletes it and the record goes back to what it was before
//     the start; stopped: its exit is recorded. No shim: exit.json says
//     how a run ended; a start that never got so far is undone, and
//     whatever the runtime has of it cleaned up (shim --delete);
//   - the execs the shims still hold are listed again;
//   - the volumes learn again which containers use them, and which running
//     ones have them mounted (restoreVolumes).
//
// Then the network controller gets the sandboxes of the running
// containers (their addresses and ports; every other address is given
// back). It returns the containers found stopped, for autoStart.
func (d *Daemon) restore() ([]*Container, error) {
	dir := filepath.Join(d.cfg.DataRoot, "containers")
	ents, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("read %s: %w", dir, err)
	}
	var stopped, running, undone, ended, removed []*Container
	for _, e := range ents {
		c, err := d.load(e.Name())
		if err != nil {
			d.log.Printf("skip container %s: %v", e.Name(), err)
			continue
		}
		if c == nil || c.Removing {
			d.log.Printf("container %s: finishing its removal", e.Name())
			p := d.pathsOf(e.Name())
			if c != nil {
				p = c.paths
			}
			if err := d.removeFiles(e.Name(), p); err != nil {
				d.log.Print(err)
			}
			if c != nil {
				removed = append(removed, c)
			}
			continue
		}
		d.containers[c.ID] = c
		d.names[c.Name] = c.ID
		st := d.settle(c)
		d.restoreVolumes(c, st == "running")
		switch st {
		case "running":
			running = append(running, c)
		case "undone":
			undone = append(undone, c)
			stopped = append(stopped, c)
		case "ended":
			ended = append(ended, c)
		default:
			stopped = append(stopped, c)
		}
	}
	// every use declared: the driver filesystems of containers that
	// stopped while no daemon watched are unmounted, and the anonymous
	// volumes of removals cut short go as they would have
	if err := d.volumes.UnmountIdle(); err != nil {
		d.log.Printf("volumes: %v", err)
	}
	for _, c := range removed {
		d.releaseVolumes(c, c.RemoveVolumes)
	}
	var sbs []*network.Sandbox
	for _, c := range running {
		sbs = append(sbs, c.sandbox())
	}
	if err := d.network.Restore(sbs); err != nil {
		return nil, err
	}
	// after Restore: Leave rebuilds the firewall, which must know the
	// running containers' ports by then
	for _, c := range undone {
		d.undoStart(c)
	}
	for _, c := range running {
		go d.monitor(c)
	}
	// runs that ended while no daemon watched: AutoRemove, or the restart
	// policy (its backoff, the count going on; autoStart does not see them)
	for _, c := range ended {
		if c.HostConfig.AutoRemove {
			go d.remove(c, RemoveOptions{RemoveVolumes: true})
		} else {
			d.maybeRestart(c)
		}
	}
	return stopped, nil
}

// load reads a container's config.v2.json; nil, nil when there is none.
func (d *Daemon) load(id string) (*Container, error) {
	p := d.pathsOf(id)
	data, err := os.ReadFile(p.config)
	if os.IsNotExist(err) {
		return nil, nil
	}
	var c Container
	if err == nil {
		err = json.Unmarshal(data, &c)
	}
	if err == nil && c.ID != id {
		err = fmt.Errorf("it names container %q", c.ID)
	}
	if err != nil {
		return nil, fmt.Errorf("bad config.v2.json: %w", err)
	}
	c.paths, c.changed = p, make(chan struct{})
	if c.CgroupPath == "" { // a record older than the field
		c.CgroupPath = d.cfg.CgroupParent + "/" + c.ID
	}
	return &c, nil
}

// settle makes c's record match its shim (see restore), before the API
// serves. It returns "running" for a container that runs, "undone" for a
// start it undid, "ended" for a run that ended while no daemon watched,
// else "stopped".
func (d *Daemon) settle(c *Container) string {
	if c.State.Status != "running" && !c.State.Starting {
		return "stopped"
	}
	cl := c.shim()
	st, err := cl.State()
	switch {
	case err != nil && !errors.Is(err, shim.ErrGone):
		d.log.Printf("container %s: its shim answers no state: %v", c.ID[:12], err)
		fallthrough
	case err != nil: // no shim
		_, err := os.Stat(filepath.Join(c.paths.dir, shim.ExitFile))
		if os.IsNotExist(err) && c.State.Starting && c.State.Status != "running" {
			// never got as far as a run: undo the start
			if err := shim.Cleanup(d.cfg.Binary, d.shimOptions(c)); err != nil {
				d.log.Print(err)
			}
			return "undone"
		}
		d.exitedAtRestore(c, nil)
		return "ended"
	case st.Status == "created":
		d.log.Printf("container %s: its start was cut short: deleting it", c.ID[:12])
		if err := cl.Delete(); err != nil {
			d.log.Printf("container %s: %v", c.ID[:12], err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		cl.Wait(ctx, "")
		cancel()
		return "undone"
	case st.Status == "stopped":
		exit, err := cl.Wait(context.Background(), "")
		if err != nil {
			exit = st.Exit
		}
		d.exitedAtRestore(c, exit)
		return "ended"
	}
	// running or paused: the container is ours again
	if c.State.Status != "running" {
		d.log.Printf("container %s: its start was cut short after the process started: taking it up", c.ID[:12])
		c.State = State{Status: "running", StartedAt: time.Now().UTC()}
	}
	c.State.Starting = false
	c.State.Pid = st.Pid
	c.State.Paused = st.Status == "paused"
	c.save()
	d.restoreExecs(c, st.Execs)
	return "running"
}

// exitedAtRestore records how a run ended while no daemon watched; its
// addresses are given back by the network controller's Restore (they
// are not a running container's), its veths went with its namespace,
// its ports with the last daemon. exit nil: nobody recorded it.
func (d *Daemon) exitedAtRestore(c *Container, exit *shim.Exit) {
	lost := false
	if exit == nil {
		exit, lost = d.readExit(c)
	}
	c.Ports, c.GatewayIf = nil, ""
	for _, ep := range c.Networks {
		ep.IP = netip.Prefix{}
	}
	d.images.Unmount(c.ID)
	d.unmountShm(c) // namespaces.go: a shareable IPC namespace's /dev/shm
	d.mu.Lock()
	c.recordExit(exit, lost)
	d.emitExit(c, exit)
	d.mu.Unlock()
}

// undoStart puts back a container whose start a dead daemon left
// unfinished: no process ran, so it is as it was before that start.
func (d *Daemon) undoStart(c *Container) {
	d.leave(c)
	d.mu.Lock()
	c.State.Starting = false
	c.State.Error = "the daemon stopped while the container was starting"
	c.save()
	d.mu.Unlock()
}
