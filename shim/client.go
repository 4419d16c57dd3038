package shim

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"minidock/cgroup"
	"minidock/internal/unixsock"
)

// The daemon's side of the protocol (protocol.go): Launch starts a shim,
// Client talks to a running one.

// Launcher starts shims for a daemon. It keeps one spare shim started
// ahead of need (`minidock shim --spare`), waiting for its Options on a
// pipe, so that a container's start does not wait for the binary to
// start; a spare whose daemon has gone reads EOF and exits.
type Launcher struct {
	Binary      string // the minidock binary
	RuntimeRoot string // named on the spare's command line, to tell whose it is

	mu    sync.Mutex
	spare *spare
}

// spare is a shim process waiting for its Options.
type spare struct {
	cmd     *exec.Cmd
	options *os.File // we write the Options here
	hello   *os.File // and read its Hello here
}

// startSpare starts a shim that waits for its options. Its stderr is
// /dev/null until it has them (then the container's shim.log).
func (l *Launcher) startSpare() (*spare, error) {
	helloR, helloW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	optR, optW, err := os.Pipe()
	if err != nil {
		helloR.Close()
		helloW.Close()
		return nil, err
	}
	cmd := exec.Command(l.Binary, "shim", "--spare", "--runtime-root", l.RuntimeRoot)
	cmd.Dir = "/"
	cmd.Env = untraced(os.Environ()) // the daemon's MINIDOCK_TRACE: Options.Trace says what to trace
	cmd.ExtraFiles = []*os.File{helloW, optR}
	// its own session: no signal meant for the daemon reaches it
	cmd.SysProcAttr = &unix.SysProcAttr{Setsid: true}
	err = cmd.Start()
	helloW.Close()
	optR.Close()
	if err != nil {
		helloR.Close()
		optW.Close()
		return nil, fmt.Errorf("start a shim: %w", err)
	}
	go cmd.Wait() // reap it while we are its parent
	return &spare{cmd: cmd, options: optW, hello: helloR}, nil
}

// Prepare starts the spare shim, if there is none.
func (l *Launcher) Prepare() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.spare != nil {
		return nil
	}
	sp, err := l.startSpare()
	if err == nil {
		l.spare = sp
	}
	return err
}

// Close lets the spare go.
func (l *Launcher) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.spare != nil {
		l.spare.options.Close()
		l.spare.hello.Close()
		l.spare = nil
	}
}

// Launch gives o to a shim (the spare, or a new one, whose own session
// keeps it from the daemon's signals) and waits for its Hello: it
// returns the created init's pid, or why the container could not be
// created (the shim has exited then). The caller has the next spare
// started (Prepare) once its start is done: not meanwhile, when the
// spare's own start would take the CPU this one needs.
func (l *Launcher) Launch(o Options) (int, error) {
	l.mu.Lock()
	sp := l.spare
	l.spare = nil
	l.mu.Unlock()
	if sp == nil {
		var err error
		if sp, err = l.startSpare(); err != nil {
			return 0, err
		}
	}
	defer sp.hello.Close()
	err := json.NewEncoder(sp.options).Encode(o)
	sp.options.Close()
	if err != nil {
		return 0, fmt.Errorf("create container %s: give the shim its options: %w", o.ID, err)
	}
	var h Hello
	if err := json.NewDecoder(sp.hello).Decode(&h); err != nil {
		return 0, fmt.Errorf("create container %s: the shim ended without an answer (%v); see %s", o.ID, err, filepath.Join(o.Dir, LogFile))
	}
	if h.Error != "" {
		return 0, &Error{Code: ErrStart, Msg: h.Error}
	}
	return h.Pid, nil
}

// Cleanup runs `binary shim --delete` for a container whose shim is gone:
// the runtime's state, cgroup and any process left are removed.
func Cleanup(binary string, o Options) error {
	args := []string{"shim", "--delete", "--id", o.ID, "--dir", o.Dir, "--runtime-root", o.RuntimeRoot}
	if o.Runtime != "" {
		args = append(args, "--runtime", o.Runtime)
	}
	out, err := exec.Command(binary, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("clean up container %s: %v: %s", o.ID, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Error is a shim's error Response.
type Error struct {
	Code ErrorCode
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

// CodeOf is the ErrorCode of a shim's error ("" for any other error).
func CodeOf(err error) ErrorCode {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// ErrGone is a shim that does not answer on its socket: it has exited
// (after writing exit.json), or was never started.
var ErrGone = errors.New("the shim is gone")

// Client is a connection factory for one container's shim.
type Client struct {
	Socket string
}

// open connects, sends req and reads the answer; the connection is left
// open for what follows (a wait's answer, streams).
func (c Client) open(req Request) (*Stream, error) {
	conn, err := unixsock.Dial(c.Socket)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrGone, err)
	}
	data, _ := json.Marshal(req)
	if _, err := conn.Write(append(data, '\n')); err != nil {
		conn.Close()
		return nil, fmt.Errorf("%w: %v", ErrGone, err)
	}
	return &Stream{UnixConn: conn, r: bufio.NewReader(conn)}, nil
}

// read reads the Response line of a connection.
func (st *Stream) read() (Response, error) {
	var resp Response
	line, err := st.r.ReadBytes('\n')
	if err != nil {
		return resp, fmt.Errorf("%w: %v", ErrGone, err)
	}
	if err := json.Unmarshal(line, &resp); err != nil {
		return resp, fmt.Errorf("shim answered %q: %w", line, err)
	}
	if resp.Error != "" {
		return resp, &Error{Code: resp.Code, Msg: resp.Error}
	}
	return resp, nil
}

// call is one request and its answer.
func (c Client) call(req Request) (Response, error) {
	st, err := c.open(req)
	if err != nil {
		return Response{}, err
	}
	defer st.Close()
	return st.read()
}

// State asks for the container's state and its execs'.
func (c Client) State() (*State, error) {
	resp, err := c.call(Request{Op: OpState})
	if err != nil {
		return nil, err
	}
	if resp.State == nil {
		return nil, errors.New("the shim answered no state")
	}
	return resp.State, nil
}

// Start runs the created container's process.
func (c Client) Start() error { _, err := c.call(Request{Op: OpStart}); return err }

// Delete kills and deletes a container that was never started.
func (c Client) Delete() error { _, err := c.call(Request{Op: OpDelete}); return err }

// Kill sends sig to the init (all: every process), or to exec execID.
func (c Client) Kill(execID string, sig unix.Signal, all bool) error {
	_, err := c.call(Request{Op: OpKill, ExecID: execID, Signal: int(sig), All: all})
	return err
}

// Pause freezes the container; Resume thaws it.
func (c Client) Pause() error  { _, err := c.call(Request{Op: OpPause}); return err }
func (c Client) Resume() error { _, err := c.call(Request{Op: OpResume}); return err }

// Resize sets the terminal size of the init, or of exec execID.
func (c Client) Resize(execID string, h, w uint16) error {
	_, err := c.call(Request{Op: OpResize, ExecID: execID, Height: h, Width: w})
	return err
}

// Pids lists the container's processes (host pids).
func (c Client) Pids() ([]int, error) {
	resp, err := c.call(Request{Op: OpPids})
	return resp.Pids, err
}

// Stats reads the container's cgroup counters.
func (c Client) Stats() (*cgroup.Stats, error) {
	resp, err := c.call(Request{Op: OpStats})
	if err == nil && resp.Stats == nil {
		err = errors.New("the shim answered no stats")
	}
	return resp.Stats, err
}

// Wait waits until the init, or exec execID, has exited, or ctx ends.
// ErrGone: the shim has gone without answering (for the init: exit.json
// says how it ended).
func (c Client) Wait(ctx context.Context, execID string) (*Exit, error) {
	st, err := c.open(Request{Op: OpWait, ExecID: execID})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	stop := context.AfterFunc(ctx, func() { st.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	resp, err := st.read()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if err != nil {
		return nil, err
	}
	if resp.Exit == nil {
		return nil, errors.New("the shim answered a wait without an exit")
	}
	return resp.Exit, nil
}

// Attach joins the streams of the init, or of req.ExecID. The Stream reads
// the process's output, framed without a terminal; its writes go to the
// process's stdin (with req.Stdin), CloseWrite ends that.
func (c Client) Attach(req Request) (*Stream, error) {
	req.Op = OpAttach
	st, err := c.open(req)
	if err != nil {
		return nil, err
	}
	if _, err := st.read(); err != nil {
		st.Close()
		return nil, err
	}
	return st, nil
}

// Exec starts spec's process in the container. With streams asked for in
// req (Stdin, Stdout, Stderr), the returned Stream carries them, as
// Attach's does, from the process's first byte on; else it is nil.
func (c Client) Exec(spec *ExecSpec, req Request) (int, *Stream, error) {
	req.Op, req.Exec = OpExec, spec
	st, err := c.open(req)
	if err != nil {
		return 0, nil, err
	}
	resp, err := st.read()
	if err != nil {
		st.Close()
		return 0, nil, err
	}
	if !req.Stdin && !req.Stdout && !req.Stderr {
		st.Close()
		return resp.Pid, nil, nil
	}
	return resp.Pid, st, nil
}

// Stream is a connection to a shim after its answer: the process's
// streams.
type Stream struct {
	*net.UnixConn
	r *bufio.Reader // holds what came after the answer line
}

func (st *Stream) Read(p []byte) (int, error) { return st.r.Read(p) }
