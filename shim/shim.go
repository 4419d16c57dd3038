// Package shim is the per-container supervisor (`minidock shim`), and the
// daemon's client of it. The daemon starts one shim per container start,
// in its own session, so that a daemon that dies (even by kill -9) leaves
// its containers and their execs running. The shim is the only
// supervisor, as containerd's shim is:
//
//   - it drives the OCI runtime (Runtime: minidock's own in process, or a
//     runc-compatible binary) to create, start, signal, pause and delete
//     the container, and to exec processes in it;
//   - it is a child subreaper, so the container's init and every exec'd
//     process are its children (directly, or once the runtime that made
//     them has exited), and it waits for their exit statuses;
//   - it holds their stdio (pipes) or pty masters (received on a console
//     socket, runc's --console-socket protocol), writes the init's output
//     to the json-file log, and serves attach clients;
//   - it reads the container's cgroup for stats, processes and the OOM
//     killer's count;
//   - once the init has exited, it deletes the runtime's state (and so
//     the cgroup), writes exit.json atomically, answers the waiting
//     clients and exits.
//
// protocol.go is the whole of the daemon↔shim protocol; client.go is the
// daemon's side of it; docs/daemon.md draws the process tree.
package shim

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"minidock/cgroup"
	"minidock/internal/atomicfile"
	"minidock/internal/signals"
	"minidock/internal/trace"
	"minidock/internal/unixsock"
)

// Files the shim keeps in the container's directory (--dir).
const (
	ExitFile       = "exit.json"   // Exit, written once the container is gone
	PidFile        = "init.pid"    // the init's pid, from a command runtime's --pid-file
	RuntimeLogFile = "runtime.log" // a command runtime's --log, JSON lines
	LogFile        = "shim.log"    // the shim's own messages (its stderr)
)

// Options is the shim's command line.
type Options struct {
	ID          string
	Bundle      string
	Dir         string // the container's directory: log, exit.json
	Socket      string // where the shim listens
	Runtime     string // a runc-compatible binary; "" = minidock's runtime in process
	RuntimeRoot string // the runtime's --root
	Cgroup      string // the container's cgroupsPath: stats, processes, OOM count
	Tty         bool   // the init gets a terminal
	Stdin       bool   // the init's stdin stays open for attach clients
	// Trace is the container's trace file (docs/trace.md): the shim, the
	// runtime in process and the init append their events to it. "": no
	// trace.
	Trace string `json:",omitempty"`
	// StepSocket, for `minidock run --step`: a unix socket the daemon
	// listens on and relays to the client's terminal. The shim connects
	// to it and creates and starts the container in step mode, prompts
	// and answers going over it until execve (minidock's runtime in
	// process only; docs/step.md).
	StepSocket string `json:",omitempty"`
	// Delete is the clean-up mode: the container's shim is gone, so delete
	// whatever the runtime still has of it (killing what runs) and exit.
	Delete bool `json:"-"`
}

// Main runs `minidock shim ARGS...`. File descriptor 3 is the pipe for
// the Hello. A spare shim (--spare, started before a container needs
// it) reads its Options, as JSON, from fd 4 first; at EOF (the daemon has
// gone) it exits.
func Main(args []string) int {
	var o Options
	fs := flag.NewFlagSet("minidock shim", flag.ContinueOnError)
	spare := fs.Bool("spare", false, "wait for the options on fd 4")
	fs.StringVar(&o.ID, "id", "", "container id")
	fs.StringVar(&o.Bundle, "bundle", "", "OCI bundle directory")
	fs.StringVar(&o.Dir, "dir", "", "container directory (log, exit status)")
	fs.StringVar(&o.Socket, "socket", "", "socket to serve the daemon on")
	fs.StringVar(&o.Runtime, "runtime", "", "runc-compatible runtime binary (default: minidock's runtime, in process)")
	fs.StringVar(&o.RuntimeRoot, "runtime-root", "", "the runtime's --root")
	fs.StringVar(&o.Cgroup, "cgroup", "", "the container's cgroups path")
	fs.BoolVar(&o.Tty, "tty", false, "give the container a terminal")
	fs.BoolVar(&o.Stdin, "stdin", false, "keep stdin open")
	fs.StringVar(&o.Trace, "trace", "", "append trace events (JSON lines) to this file")
	fs.StringVar(&o.StepSocket, "step-socket", "", "create in step mode, prompting over this unix socket")
	fs.BoolVar(&o.Delete, "delete", false, "delete the container's runtime state and exit")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *spare {
		f := os.NewFile(4, "options")
		err := json.NewDecoder(f).Decode(&o)
		f.Close()
		if err != nil {
			return 0 // not needed after all
		}
	}
	if o.Dir != "" && !o.Delete {
		// its messages go to the container's shim.log
		if f, err := os.OpenFile(filepath.Join(o.Dir, LogFile), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600); err == nil {
			unix.Dup3(int(f.Fd()), 2, 0)
			f.Close()
		}
	}
	if o.ID == "" || o.Dir == "" || o.RuntimeRoot == "" || (!o.Delete && (o.Bundle == "" || o.Socket == "")) {
		fmt.Fprintln(os.Stderr, "minidock shim: --id, --dir and --runtime-root are required, and --bundle and --socket unless --delete")
		return 2
	}
	rt, err := NewRuntime(o.Runtime, o.RuntimeRoot, o.Dir)
	if err != nil {
		fmt.Fprintf(os.Stderr, "minidock shim %s: %v\n", o.ID, err)
		return 1
	}
	if o.Delete {
		if err := rt.Delete(o.ID, true); err != nil {
			fmt.Fprintf(os.Stderr, "minidock shim %s: delete: %v\n", o.ID, err)
			return 1
		}
		return 0
	}
	var tr *trace.Tracer
	if o.Trace != "" {
		if tr, err = trace.OpenFile(o.Trace, "shim"); err != nil {
			fmt.Fprintf(os.Stderr, "minidock shim %s: %v\n", o.ID, err) // the container runs untraced
		}
	}
	if err := run(o, rt, tr, os.NewFile(3, "hello")); err != nil {
		fmt.Fprintf(os.Stderr, "minidock shim %s: %v\n", o.ID, err)
		return 1
	}
	return 0
}

// NewRuntime is the Runtime the options name: a command-line runtime for a
// binary, else minidock's own, in process.
func NewRuntime(binary, root, dir string) (Runtime, error) {
	if binary != "" {
		return &Command{Argv: []string{binary}, Root: root, Dir: dir}, nil
	}
	return newInProcess(root, dir)
}

// shim is one running shim.
type shim struct {
	o     Options
	rt    Runtime
	trace *trace.Tracer // nil: no trace

	mu       sync.Mutex
	init     *process
	execs    map[string]*process // by exec ID, until their exit is collected
	started  bool                // OpStart has run
	starting bool                // OpStart is in the runtime (waitInit's delete waits for it)
	step     net.Conn            // run --step: the step socket, from the create until endSteps
	created  chan struct{}       // closed once the create has ended, well or not
	done     chan struct{}       // closed when the shim may exit
	waiting  int                 // requests not answered yet (but attach, exec)
	answered *sync.Cond          // on mu: a wait request has been answered
}

func run(o Options, rt Runtime, tr *trace.Tracer, hello *os.File) error {
	// Orphans of our children (the init, once a command runtime's create
	// has exited; a detached exec) are re-parented to us instead of pid 1,
	// so that we can wait4 for them.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return sayHello(hello, Hello{}, fmt.Errorf("prctl(PR_SET_CHILD_SUBREAPER): %w", err))
	}
	s := &shim{o: o, rt: rt, trace: tr, execs: map[string]*process{}, created: make(chan struct{}), done: make(chan struct{})}
	s.answered = sync.NewCond(&s.mu)
	logFile, err := os.OpenFile(LogPath(o.Dir, o.ID), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if tr.Call("create", "open", LogPath(o.Dir, o.ID)+", O_WRONLY|O_APPEND|O_CREATE", "the json-file log, where the init's output goes", err) != nil {
		return sayHello(hello, Hello{}, fmt.Errorf("open log: %w", err))
	}
	// Listen first: a daemon restarted while the create runs finds the
	// socket, and its requests wait for the create to end.
	ln, err := unixsock.Listen(o.Socket)
	if tr.Call("create", "listen", o.Socket, "the daemon's requests (start, attach, wait, exec)", err) != nil {
		return sayHello(hello, Hello{}, err)
	}
	go s.serve(ln)

	s.init = newProcess("", o.Tty)
	s.init.log = &jsonLog{f: logFile}
	var step net.Conn
	if o.StepSocket != "" {
		if step, err = unixsock.Dial(o.StepSocket); err != nil {
			close(s.created)
			ln.Close()
			os.Remove(o.Socket)
			return sayHello(hello, Hello{}, fmt.Errorf("step socket: %w", err))
		}
	}
	pid, err := s.start(s.init, o.Stdin, func(io *IO) (int, error) {
		if step != nil {
			io.Step = step
		}
		io.Trace = tr
		start := time.Now().UnixNano() // the line goes before the runtime's own
		pid, err := rt.Create(o.ID, o.Bundle, io)
		tr.CallSince(start, "create", "runtime create", o.ID+", bundle "+o.Bundle, resultPid(pid, err), "the runtime makes the container; its init waits for start")
		return pid, err
	})
	if err != nil {
		if step != nil {
			step.Close()
		}
		close(s.created)
		ln.Close()
		os.Remove(o.Socket)
		return sayHello(hello, Hello{}, err)
	}
	s.mu.Lock()
	s.step = step // the init asks on at the start, up to execve (endSteps)
	s.mu.Unlock()
	s.init.pump(s) // nothing comes before the start; attach clients come before that
	close(s.created)
	go s.waitInit(ln)
	sayHello(hello, Hello{Pid: pid}, nil)
	<-s.done
	return nil
}

// endSteps closes the step socket, if any, once the init has called
// execve or exited: the daemon then ends the client's step stream.
func (s *shim) endSteps() {
	s.mu.Lock()
	step := s.step
	s.step = nil
	s.mu.Unlock()
	if step != nil {
		step.Close()
	}
}

// resultPid spells the result of a call that makes a process.
func resultPid(pid int, err error) string {
	if err != nil {
		return trace.Result(err)
	}
	return fmt.Sprintf("pid %d", pid)
}

// sayHello writes the Hello (the error's message if err is set), closes
// the pipe, and returns err.
func sayHello(pipe *os.File, h Hello, err error) error {
	if err != nil {
		h.Error = strings.ReplaceAll(err.Error(), "\n", " ")
	}
	json.NewEncoder(pipe).Encode(h)
	pipe.Close()
	return err
}

// waitInit waits for the container's init to exit, then ends the
// container: the rest of its output, the OOM killer's count, the
// runtime's delete (state and cgroup), exit.json; the socket goes (a
// next start's shim may listen there as soon as the daemon hears of the
// exit), then the waiting clients are answered.
func (s *shim) waitInit(ln net.Listener) {
	p := s.init
	code := waitPid(p.pid)
	finished := time.Now().UTC()
	s.endSteps() // killed while it waited for start, or at a pause of it
	s.trace.CallResult("exit", "wait4", fmt.Sprint(p.pid), fmt.Sprintf("exit code %d", code), "the container's process has ended")
	p.drain(5 * time.Second)
	s.mu.Lock()
	p.log.flush()
	s.mu.Unlock()
	exit := &Exit{ExitCode: code, FinishedAt: finished}
	if cg, err := cgroup.New(s.o.Cgroup, s.o.ID); err == nil && s.o.Cgroup != "" {
		if n, err := cg.OOMKillCount(); err == nil && n > 0 {
			exit.OOMKilled = true
		}
	}
	// The pid namespace is gone with the init, and so are the execs:
	// collect their exits before the cgroup goes.
	s.mu.Lock()
	var execs []*process
	for _, e := range s.execs {
		execs = append(execs, e)
	}
	s.mu.Unlock()
	for _, e := range execs {
		select {
		case <-e.exited:
		case <-time.After(2 * time.Second):
		}
	}
	// A start still in the runtime (runc's start removes its exec.fifo
	// once the init has gone on, and a program that exits at once gets
	// here first): the delete waits for it, 2 s at most.
	for i := 0; i < 200 && s.isStarting(); i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if err := s.trace.Call("exit", "runtime delete", s.o.ID, "the runtime removes its state and the cgroup", s.rt.Delete(s.o.ID, true)); err != nil {
		fmt.Fprintf(os.Stderr, "minidock shim %s: delete: %v\n", s.o.ID, err)
	}
	if err := s.trace.Call("exit", "write", filepath.Join(s.o.Dir, ExitFile), "the exit status, for the daemon (even one restarted meanwhile)", writeExit(s.o.Dir, exit)); err != nil {
		fmt.Fprintf(os.Stderr, "minidock shim %s: %v\n", s.o.ID, err)
	}
	ln.Close()
	os.Remove(s.o.Socket)
	// Let the clients that wait hear it (the daemon's monitor, a wait of
	// a restarted daemon), 2 s at most, then go: the socket closes with us.
	gaveUp := false
	timer := time.AfterFunc(2*time.Second, func() {
		s.mu.Lock()
		gaveUp = true
		s.answered.Broadcast()
		s.mu.Unlock()
	})
	s.mu.Lock()
	p.finish(exit)
	for s.waiting > 0 && !gaveUp {
		s.answered.Wait()
	}
	s.mu.Unlock()
	timer.Stop()
	close(s.done)
}

// isStarting tells whether a start is in the runtime.
func (s *shim) isStarting() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.starting
}

// waitPid waits for a child and returns Docker's exit code: the status,
// or 128+signal (255 if it cannot be waited for).
func waitPid(pid int) int {
	code, err := signals.Wait(pid)
	if err != nil {
		return 255
	}
	return code
}

// writeExit writes exit.json atomically (not waiting for the disk: it is
// about a process, which a machine crash ends anyway).
func writeExit(dir string, e *Exit) error {
	data, _ := json.Marshal(e)
	return atomicfile.Replace(filepath.Join(dir, ExitFile), data, 0o600)
}

// ReadExit reads the exit.json of a container directory.
func ReadExit(dir string) (*Exit, error) {
	data, err := os.ReadFile(filepath.Join(dir, ExitFile))
	if err != nil {
		return nil, err
	}
	var e Exit
	if err := json.Unmarshal(data, &e); err != nil {
		return nil, fmt.Errorf("parse %s: %w", filepath.Join(dir, ExitFile), err)
	}
	return &e, nil
}

// start sets up p's stdio and has the runtime make the process (create
// or exec, through spawn): the console socket and the pipes are made here
// for both, the one path for either. The caller then starts reading its
// output (p.pump), once the clients that must see all of it are there.
func (s *shim) start(p *process, openStdin bool, spawn func(*IO) (int, error)) (int, error) {
	rio, taken, err := s.newIO(p, openStdin)
	if err != nil {
		return 0, err
	}
	pid, err := spawn(rio)
	if err = taken(err); err != nil {
		return 0, err
	}
	p.pid = pid
	return pid, nil
}

// tidy gives back the memory the runtime's work left as garbage (in
// process: the bundle's JSON, the init's handshake), which the shim will
// never need again: now, once the container's start (or an exec's) has
// been answered, not minutes from now, and not before (it stops the
// world).
func tidy() { debug.FreeOSMemory() }

// serve accepts the daemon's connections until the shim exits.
func (s *shim) serve(ln net.Listener) {
	for {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		go s.handle(conn)
	}
}

var errExited = errors.New("the process has exited")
