package shim

import (
	"errors"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"minidock/internal/trace"
	"minidock/runtime"
)

// inProcess is minidock's own runtime called as a library in the shim's
// process: no `runtime create`, `start` or `delete` process is started
// for a container, only its init (this binary, re-executed as `minidock
// init`), whose parent is then the shim itself. The state lives under
// root, as the command line keeps it, so `minidock runtime --root ROOT
// list` shows what the shims run.
type inProcess struct {
	root    string
	trace   *trace.Tracer      // the container's, given at Create: its start and delete are traced too
	created *runtime.Container // what Create made: in step mode its Start asks on with Create's prompter
}

func newInProcess(root, dir string) (Runtime, error) {
	return &inProcess{root: root}, nil
}

// Create makes the container. With MINIDOCK_DEBUG_INIT=1 in the shim's
// environment (the daemon's), its init waits for a debugger, and the line
// `dlv attach PID` goes to the shim's stderr, the container's shim.log
// (docs/step.md).
func (r *inProcess) Create(id, bundle string, io *IO) (int, error) {
	o := runtime.CreateOptions{Bundle: bundle, ConsoleSocket: io.ConsoleSocket,
		Stdio: [3]*os.File{io.Stdin, io.Stdout, io.Stderr}, Step: io.Step, Trace: io.Trace}
	if os.Getenv("MINIDOCK_DEBUG_INIT") == "1" {
		o.DebugInit = os.Stderr
	}
	c, err := runtime.Create(r.root, id, o)
	if err != nil {
		return 0, err
	}
	r.trace, r.created = io.Trace, c
	return c.Pid, nil
}

// Start starts the container Create made; in step mode (io.Step) its
// init asks on over the same connection, up to execve (docs/step.md).
func (r *inProcess) Start(id string) error {
	c := r.created
	r.created = nil // once: the shim keeps none of it after the start
	if c == nil || c.ID != id {
		var err error
		if c, err = runtime.Load(r.root, id); err != nil {
			return err
		}
	}
	c.SetTrace(r.trace)
	return c.Start()
}

func (r *inProcess) State(id string) (string, error) {
	c, err := runtime.Load(r.root, id)
	if err != nil {
		return "", err
	}
	return c.Status(), nil
}

func (r *inProcess) Kill(id string, sig unix.Signal, all bool) error {
	c, err := runtime.Load(r.root, id)
	if err != nil {
		return err
	}
	return c.Signal(sig, all)
}

// Delete with force of a container the runtime no longer knows is done,
// as runc's is.
func (r *inProcess) Delete(id string, force bool) error {
	c, err := runtime.Load(r.root, id)
	if errors.Is(err, runtime.ErrNotExist) && force {
		return nil
	}
	if err != nil {
		return err
	}
	c.SetTrace(r.trace)
	return c.Delete(force)
}

func (r *inProcess) Exec(id string, p *specs.Process, io *IO) (int, error) {
	proc, err := runtime.Exec(r.root, id, p, runtime.ExecOptions{ConsoleSocket: io.ConsoleSocket,
		Stdio: [3]*os.File{io.Stdin, io.Stdout, io.Stderr}})
	if err != nil {
		return 0, err
	}
	return proc.Pid, nil
}

func (r *inProcess) Pause(id string) error {
	c, err := runtime.Load(r.root, id)
	if err != nil {
		return err
	}
	return c.Pause()
}

func (r *inProcess) Resume(id string) error {
	c, err := runtime.Load(r.root, id)
	if err != nil {
		return err
	}
	return c.Resume()
}
