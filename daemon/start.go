package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"minidock/internal/errdefs"
	"minidock/internal/trace"
	"minidock/network"
	"minidock/shim"
)

// StartContainer is `docker start`: a start the user asked for, so the
// restart count and the manual-stop mark start over, as in Docker.
func (d *Daemon) StartContainer(ctx context.Context, name string) error {
	c, err := d.lookup(name)
	if err != nil {
		return err
	}
	d.userStart(c)
	return d.start(c)
}

// start runs a container, in this order (docs/daemon.md):
//
//  1. mount the root filesystem (overlayfs), and the volumes' driver
//     filesystems (mountVolumes);
//  2. join the networks: addresses, /etc/hosts, hostname, resolv.conf;
//  3. write the OCI bundle's config.json;
//  4. save the record as Starting, with its addresses;
//  5. launch the shim, which creates the container (its init waits);
//  6. wire the network into the init's namespace, save the ports;
//  7. let the attach requests made before the start connect to the shim;
//  8. have the shim start the process; save the record as running.
//
// A failure undoes what was done and records the container as exited
// with Docker's code for it (127: no such program, 126: not executable),
// then applies AutoRemove, so that `docker run --rm` never hangs.
func (d *Daemon) start(c *Container) (err error) {
	c.op.Lock()
	defer c.op.Unlock()
	d.mu.Lock()
	switch {
	case c.removed:
		d.mu.Unlock()
		return errdefs.NotFoundf("No such container: %s", c.ID)
	case c.State.Status == "running":
		d.mu.Unlock()
		return errdefs.ErrNotModified
	}
	sb := c.sandbox()
	d.mu.Unlock()
	tr := d.tracer(c)
	sb.Trace = tr
	tr.Line("start", "begin: rootfs, network, bundle, shim")

	launched := false     // a shim runs for this start
	endSteps := func() {} // run --step: the relay, until execve (step.go)
	defer func() {
		if err != nil {
			d.startFailed(c, sb, launched, err)
		}
		endSteps() // the shim has closed its end: execve, or stopped
		if launched {
			go d.shims.Prepare() // the next start's spare shim
		}
	}()
	rootfs, err := d.mountRootfs(c) // userns.go: idmapped under --userns-remap
	if err != nil {
		return err
	}
	if err := d.mountVolumes(c); err != nil {
		return err
	}
	net, err := d.joinNetwork(c, sb)
	if err != nil {
		return err
	}
	if err := d.writeBundle(c, rootfs, net); err != nil {
		return err
	}
	os.Remove(filepath.Join(c.paths.dir, shim.ExitFile)) // the last run's
	d.mu.Lock()
	c.State.Starting = true
	c.setSandbox(sb)
	err = c.save()
	d.mu.Unlock()
	if err != nil {
		return err
	}

	stepSocket, relayEnd, err := d.relaySteps(c) // step.go: run --step
	if err != nil {
		return err
	}
	endSteps = relayEnd
	launchedAt := time.Now().UnixNano() // the line goes before the shim's own
	pid, err := d.launchShim(c, stepSocket)
	tr.CallSince(launchedAt, "start", "launch shim", d.cfg.Binary+" shim --id "+c.ID[:12]+" ...", resultPid(pid, err),
		"the container's supervisor: it creates the container through the runtime and holds its stdio")
	if err != nil {
		return err
	}
	launched = true
	if err := d.network.Wire(sb, pid); err != nil {
		return fmt.Errorf("start container %s: network: %w", c.ID, err)
	}
	if len(sb.Ports) > 0 || sb.GatewayIf != "" { // held ports (and the gateway) are recorded before the process runs
		d.mu.Lock()
		c.setSandbox(sb)
		err = c.save()
		d.mu.Unlock()
		if err != nil {
			return err
		}
	}
	d.letAttachesConnect(c)
	startedAt := time.Now().UnixNano()
	err = c.shim().Start()
	tr.CallSince(startedAt, "start", "shim start", c.paths.socket, trace.Result(err), "the shim has the runtime start the container's process")
	if err != nil {
		if shim.CodeOf(err) == shim.ErrStart {
			return fmt.Errorf("failed to start container %s: %w", c.ID, err)
		}
		return fmt.Errorf("start container %s: %w", c.ID, err)
	}
	d.applyConsoleSize(c, "", c.Config.Tty, c.HostConfig.ConsoleSize)
	d.mu.Lock()
	c.State = State{Status: "running", Pid: pid, StartedAt: time.Now().UTC()}
	err = c.save()
	c.notify()
	d.emit(c, "start", nil)
	d.mu.Unlock()
	go d.monitor(c)
	return err
}

// joinNetwork gives c its networking for this start: through the
// network controller, or, in another container's namespace
// (container:<id>), that container's namespace and /etc files.
func (d *Daemon) joinNetwork(c *Container, sb *network.Sandbox) (network.Spec, error) {
	otherID, ok := strings.CutPrefix(sb.Mode, "container:")
	if !ok {
		return d.network.Join(sb)
	}
	other, err := d.lookup(otherID)
	if err != nil {
		return network.Spec{}, fmt.Errorf("cannot join network of container: %w", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if other.State.Status != "running" {
		return network.Spec{}, errdefs.Conflictf("cannot join network namespace of a non running container %s", other.Name)
	}
	return network.Spec{Join: fmt.Sprintf("/proc/%d/ns/net", other.State.Pid), Hostname: other.hostname(), EtcDir: other.paths.dir}, nil
}

// writeBundle writes bundle/config.json and keeps its process, on which
// execs are modelled.
func (d *Daemon) writeBundle(c *Container, rootfs string, net network.Spec) error {
	spec, err := buildSpec(c, rootfs, net)
	if err != nil {
		return err
	}
	if err := d.confine(c, spec); err != nil { // security.go
		return err
	}
	if err := os.MkdirAll(c.paths.bundle, 0o700); err != nil {
		return fmt.Errorf("bundle of %s: %w", c.ID, err)
	}
	data, _ := json.MarshalIndent(spec, "", "  ")
	err = os.WriteFile(filepath.Join(c.paths.bundle, "config.json"), data, 0o600)
	if err := d.tracer(c).Call("start", "write", filepath.Join(c.paths.bundle, "config.json")+fmt.Sprintf(", root %s, %d mounts", spec.Root.Path, len(spec.Mounts)),
		"the OCI bundle: everything the runtime needs to make the container", err); err != nil {
		return fmt.Errorf("bundle of %s: %w", c.ID, err)
	}
	d.mu.Lock()
	c.process = spec.Process
	d.mu.Unlock()
	return nil
}

// shimOptions is the command line of c's shim.
func (d *Daemon) shimOptions(c *Container) shim.Options {
	o := shim.Options{ID: c.ID, Bundle: c.paths.bundle, Dir: c.paths.dir, Socket: c.paths.socket,
		Runtime: d.cfg.Runtime, RuntimeRoot: d.runtimeRoot(), Cgroup: c.CgroupPath,
		Tty: c.Config.Tty, Stdin: c.Config.OpenStdin}
	if d.traced(c) {
		o.Trace = d.tracePath(c.ID)
	}
	return o
}

// launchShim has a shim create c (in step mode, prompting over
// stepSocket, when set); it returns the init's pid.
func (d *Daemon) launchShim(c *Container, stepSocket string) (int, error) {
	o := d.shimOptions(c)
	o.StepSocket = stepSocket
	pid, err := d.shims.Launch(o)
	if err != nil {
		if shim.CodeOf(err) == shim.ErrStart {
			return 0, fmt.Errorf("failed to create container %s: %w", c.ID, err)
		}
		return 0, err
	}
	return pid, nil
}

// letAttachesConnect publishes that c's shim is up, and waits (3 s at
// most) for the attach requests made before the start to connect to it,
// so that they see all of the output.
func (d *Daemon) letAttachesConnect(c *Container) {
	d.mu.Lock()
	defer d.mu.Unlock()
	c.shimUp = true
	c.notify()
	deadline := time.Now().Add(3 * time.Second)
	for c.attaching > 0 && time.Now().Before(deadline) {
		ch := c.changed
		d.mu.Unlock()
		select {
		case <-ch:
		case <-time.After(time.Until(deadline)):
		}
		d.mu.Lock()
	}
}

// startFailed undoes a failed start: a shim launched is told to delete
// the container and waited for (an AutoRemove must not take the
// container's directory from under the runtime's delete), the network
// is left, the rootfs and the volumes unmounted; the container is
// recorded as exited.
func (d *Daemon) startFailed(c *Container, sb *network.Sandbox, launched bool, err error) {
	if launched {
		cl := c.shim()
		derr := cl.Delete()
		switch {
		case errors.Is(derr, shim.ErrGone):
			// it does not answer: have the runtime delete the container,
			// and the shim, whose init that kills, ends
			if err := shim.Cleanup(d.cfg.Binary, d.shimOptions(c)); err != nil {
				d.log.Print(err)
			}
		case derr != nil && shim.CodeOf(derr) != shim.ErrNotRunning:
			cl.Kill("", unix.SIGKILL, true) // started, and failed after
		}
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		cl.Wait(ctx, "")
		cancel()
	}
	d.network.Leave(sb)
	d.images.Unmount(c.ID)
	d.unmountShm(c) // namespaces.go: a shareable IPC namespace's /dev/shm
	d.unmountVolumes(c)
	d.mu.Lock()
	c.setSandbox(sb)
	c.shimUp = false
	c.State = State{Status: "exited", ExitCode: startExitCode(err.Error()), Error: err.Error(),
		StartedAt: c.State.StartedAt, FinishedAt: time.Now().UTC()}
	c.exits++
	c.save()
	c.notify()
	d.emit(c, "die", map[string]string{"exitCode": strconv.Itoa(c.State.ExitCode)})
	auto := c.HostConfig.AutoRemove
	d.mu.Unlock()
	if auto {
		go d.remove(c, RemoveOptions{Force: true, RemoveVolumes: true})
	}
}

// resultPid spells the result of a step that makes a process.
func resultPid(pid int, err error) string {
	if err != nil {
		return trace.Result(err)
	}
	return fmt.Sprintf("pid %d", pid)
}

// startExitCode is the exit code Docker gives a container whose process
// could not be started: 127 not found, 126 not executable, else 128.
func startExitCode(msg string) int {
	switch {
	case strings.Contains(msg, "executable file not found"), strings.Contains(msg, "no such file or directory"):
		return 127
	case strings.Contains(msg, "permission denied"), strings.Contains(msg, "is a directory"):
		return 126
	}
	return 128
}
