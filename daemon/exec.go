package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"minidock/api"
	"minidock/internal/errdefs"
	"minidock/shim"
)

// Exec is one process run in a running container (docker exec). It runs
// under the container's shim, like the container's own process, and so
// outlives a daemon restart: the next daemon finds it in the shim's
// state. Its fields change under d.mu.
type Exec struct {
	ID          string
	ContainerID string
	Config      api.ExecConfig

	started  bool
	running  bool
	exitCode *int
	pid      int
}

// ExecCreate is POST /containers/{id}/exec: an exec is recorded; it runs
// at ExecStart.
func (d *Daemon) ExecCreate(ctx context.Context, name string, cfg api.ExecConfig) (string, error) {
	c, err := d.lookup(name)
	if err != nil {
		return "", err
	}
	if len(cfg.Cmd) == 0 {
		return "", errdefs.Invalidf("no exec command specified")
	}
	if err := checkUser("User", cfg.User); err != nil {
		return "", err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if c.State.Status != "running" {
		return "", errdefs.Conflictf("container %s is not running", c.ID)
	}
	if c.State.Paused {
		return "", errdefs.Conflictf("Container %s is paused, unpause the container before exec", c.ID)
	}
	e := &Exec{ID: newID(), ContainerID: c.ID, Config: cfg}
	d.execs[e.ID] = e
	return e.ID, nil
}

func (d *Daemon) lookupExec(id string) (*Exec, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if e, ok := d.execs[id]; ok {
		return e, nil
	}
	return nil, errdefs.NotFoundf("No such exec instance: %s", id)
}

// ExecInspect is GET /exec/{id}/json; ExitCode is nil while it runs.
func (d *Daemon) ExecInspect(ctx context.Context, id string) (*api.ExecInspect, error) {
	e, err := d.lookupExec(id)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return &api.ExecInspect{
		ID: e.ID, ContainerID: e.ContainerID, Running: e.running, ExitCode: e.exitCode, Pid: e.pid,
		OpenStdin: e.Config.AttachStdin, OpenStdout: e.Config.AttachStdout, OpenStderr: e.Config.AttachStderr,
		ProcessConfig: api.ExecProcessConfig{Tty: e.Config.Tty, Entrypoint: e.Config.Cmd[0], Arguments: e.Config.Cmd[1:], User: e.Config.User},
	}, nil
}

// Streams connects a process's streams to a client: called once the
// engine is about to start (or join) the process, with whether it has a
// terminal, it returns where the client's input comes from (nil: none)
// and where the output goes: the multiplexed stream (api.WriteFrame's
// framing) without a terminal, raw bytes with one. The HTTP layer
// hijacks its connection there.
type Streams func(tty bool) (stdin io.Reader, out io.Writer, err error)

// ExecStartOptions are ExecStart's: Detach, or the client's Streams.
type ExecStartOptions struct {
	Detach  bool
	Streams Streams
}

// ExecStart is POST /exec/{id}/start: the container's shim starts the
// process, with its streams joined to the client's until it exits (not
// with Detach). A process that cannot start exits 127 (no such program)
// or 126, its message on its stderr.
func (d *Daemon) ExecStart(ctx context.Context, id string, o ExecStartOptions) error {
	e, err := d.lookupExec(id)
	if err != nil {
		return err
	}
	c, err := d.lookup(e.ContainerID)
	if err != nil {
		return err
	}
	d.mu.Lock()
	started, running := e.started, c.State.Status == "running"
	e.started = true
	d.mu.Unlock()
	if started {
		return errdefs.Conflictf("exec %s has already been started", e.ID)
	}
	if !running {
		return errdefs.Conflictf("container %s is not running", c.ID)
	}
	proc, err := d.execProcess(c, e)
	if err != nil {
		return err
	}
	cfg := e.Config
	var in io.Reader
	var out io.Writer
	if !o.Detach {
		if in, out, err = o.Streams(cfg.Tty); err != nil {
			return err
		}
	}
	req := shim.Request{Stdin: cfg.AttachStdin && in != nil, Stdout: out != nil, Stderr: out != nil}
	spec := &shim.ExecSpec{ID: e.ID, Process: proc, OpenStdin: cfg.AttachStdin && in != nil}
	pid, stream, err := c.shim().Exec(spec, req)
	if err != nil {
		code := 126
		if shim.CodeOf(err) == shim.ErrStart {
			if code = startExitCode(err.Error()); code == 128 {
				code = 126
			}
		}
		d.execEnded(e, code, 0)
		if out == nil {
			return err
		}
		// after the hijack the stream is all the client reads
		if cfg.Tty {
			io.WriteString(out, err.Error()+"\r\n")
		} else {
			api.WriteFrame(out, api.Stderr, []byte(err.Error()+"\n"))
		}
		return nil
	}
	d.mu.Lock()
	e.running, e.pid = true, pid
	d.mu.Unlock()
	d.applyConsoleSize(c, e.ID, cfg.Tty, cfg.ConsoleSize)
	if stream == nil {
		go d.collectExec(c, e)
		return nil
	}
	if req.Stdin {
		go func() {
			io.Copy(stream, in)
			stream.CloseWrite()
		}()
	}
	io.Copy(out, stream) // ends once the process has exited and its output is drained
	stream.Close()
	d.collectExec(c, e)
	return nil
}

// collectExec waits, through the shim, for an exec's exit and records it.
func (d *Daemon) collectExec(c *Container, e *Exec) {
	exit, err := c.shim().Wait(context.Background(), e.ID)
	code := 137 // its container (and the shim) went with it
	if err == nil {
		code = exit.ExitCode
	}
	d.execEnded(e, code, -1)
}

// execEnded records an exec's exit code (pid >= 0 sets its pid).
func (d *Daemon) execEnded(e *Exec, code, pid int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	e.running, e.exitCode = false, &code
	if pid >= 0 {
		e.pid = pid
	}
}

// execProcess makes the exec's OCI process: the container's (its
// bundle's, kept since the start), with the exec's command, terminal,
// environment, directory and user.
func (d *Daemon) execProcess(c *Container, e *Exec) (*specs.Process, error) {
	d.mu.Lock()
	base := c.process
	d.mu.Unlock()
	if base == nil {
		// a container a previous daemon started: read its bundle once
		data, err := os.ReadFile(filepath.Join(c.paths.bundle, "config.json"))
		if err != nil {
			return nil, fmt.Errorf("exec in %s: read its bundle: %w", c.ID, err)
		}
		var spec specs.Spec
		if err := json.Unmarshal(data, &spec); err != nil || spec.Process == nil {
			return nil, fmt.Errorf("exec in %s: parse its bundle config: %v", c.ID, err)
		}
		base = spec.Process
		d.mu.Lock()
		c.process = base
		d.mu.Unlock()
	}
	p := *base
	p.Args = e.Config.Cmd
	p.Terminal = e.Config.Tty
	p.Env = mergeEnv(p.Env, e.Config.Env)
	if e.Config.WorkingDir != "" {
		p.Cwd = e.Config.WorkingDir
	}
	if e.Config.User != "" {
		rfs, err := d.images.Rootfs(c.ID)
		if err != nil {
			return nil, err
		}
		uid, gid, extra, err := resolveUser(rfs.Merged, e.Config.User)
		if err != nil {
			return nil, err
		}
		p.User = specs.User{UID: uid, GID: gid, AdditionalGids: extra}
	}
	if e.Config.Privileged {
		caps := allHeldCaps() // security.go
		p.Capabilities = &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps}
	}
	return &p, nil
}

// ExecResize is POST /exec/{id}/resize: the shim sets the exec's
// terminal size.
func (d *Daemon) ExecResize(ctx context.Context, id string, h, w uint16) error {
	e, err := d.lookupExec(id)
	if err != nil {
		return err
	}
	c, err := d.lookup(e.ContainerID)
	if err != nil {
		return err
	}
	if err := c.shim().Resize(e.ID, h, w); err != nil {
		if code := shim.CodeOf(err); code == shim.ErrConflict || code == shim.ErrNotFound || errors.Is(err, shim.ErrGone) {
			return errdefs.Conflictf("exec %s has no running terminal", e.ID)
		}
		return fmt.Errorf("resize exec %s: %w", e.ID, err)
	}
	return nil
}

// restoreExecs takes up the execs a running container's shim still holds
// after a daemon restart: running ones are waited for again, ended ones
// have their exit recorded (and collected from the shim).
func (d *Daemon) restoreExecs(c *Container, list []shim.ExecState) {
	for _, x := range list {
		if x.Process == nil || len(x.Process.Args) == 0 {
			continue
		}
		e := &Exec{ID: x.ID, ContainerID: c.ID, started: true, running: x.Exit == nil, pid: x.Pid,
			Config: api.ExecConfig{Cmd: x.Process.Args, Tty: x.Process.Terminal, Env: x.Process.Env, WorkingDir: x.Process.Cwd}}
		d.execs[e.ID] = e
		go d.collectExec(c, e)
	}
}
