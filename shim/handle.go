package shim

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"golang.org/x/sys/unix"

	"minidock/cgroup"
	"minidock/internal/trace"
)

// maxRequest bounds a request line (an exec's process spec is the big one).
const maxRequest = 1 << 20

// handle serves one connection: one Request, one Response, and for an
// attach (or an attached exec) the streams.
func (s *shim) handle(conn net.Conn) {
	br := bufio.NewReader(io.LimitReader(conn, maxRequest))
	line, err := br.ReadBytes('\n')
	var req Request
	if err == nil {
		err = json.Unmarshal(line, &req)
	}
	if err != nil {
		reply(conn, Response{Error: fmt.Sprintf("bad request: %v", err), Code: ErrInvalid})
		conn.Close()
		return
	}
	<-s.created
	switch req.Op {
	case OpAttach:
		s.attach(conn, br, req)
		return
	case OpExec:
		s.exec(conn, br, req)
		return
	case OpWait:
		s.wait(conn, req)
	default:
		// Counted with the waits: an init that ends meanwhile (a program
		// that exits at once after a start; the kill of a delete) must
		// not end the shim (waitInit) before the request is answered.
		s.mu.Lock()
		s.waiting++
		s.mu.Unlock()
		reply(conn, s.do(req))
		s.mu.Lock()
		s.waiting--
		s.answered.Broadcast()
		s.mu.Unlock()
	}
	conn.Close()
	if req.Op == OpStart {
		tidy()
	}
}

// reply writes one Response line.
func reply(conn net.Conn, r Response) error {
	data, _ := json.Marshal(r)
	_, err := conn.Write(append(data, '\n'))
	return err
}

// fail is the Response of an error of kind code.
func fail(code ErrorCode, err error) Response { return Response{Error: err.Error(), Code: code} }

// do answers the requests that need no stream.
func (s *shim) do(req Request) Response {
	switch req.Op {
	case OpState:
		return Response{State: s.state()}
	case OpStart:
		s.mu.Lock()
		started, exited := s.started, s.init.exit != nil
		s.started = true
		s.mu.Unlock()
		switch {
		case exited:
			return fail(ErrNotRunning, errExited)
		case started:
			return fail(ErrConflict, errors.New("the container has been started already"))
		}
		start := time.Now().UnixNano() // the line goes before the runtime's own
		s.mu.Lock()
		s.starting = true
		s.mu.Unlock()
		err := s.rt.Start(s.o.ID)
		s.mu.Lock()
		s.starting = false
		s.mu.Unlock()
		s.endSteps() // run --step: execve, or the error, ends the stepping
		s.trace.CallSince(start, "start", "runtime start", s.o.ID, trace.Result(err), "the init goes on to execve the container's process")
		if err != nil {
			return fail(ErrStart, err)
		}
		return Response{}
	case OpResize:
		p, resp := s.process(req.ExecID)
		if p == nil {
			return resp
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if err := p.resize(req.Height, req.Width); err != nil {
			return fail(ErrConflict, err)
		}
		return Response{}
	case OpKill:
		return s.kill(req)
	case OpPause, OpResume:
		if s.exited() {
			return fail(ErrNotRunning, errExited)
		}
		f := s.rt.Pause
		if req.Op == OpResume {
			f = s.rt.Resume
		}
		if err := f(s.o.ID); err != nil {
			return fail(ErrConflict, err)
		}
		return Response{}
	case OpPids:
		cg, err := cgroup.New(s.o.Cgroup, s.o.ID)
		if err != nil {
			return fail("", err)
		}
		pids, err := cg.Pids()
		if err != nil {
			return fail("", err)
		}
		return Response{Pids: pids}
	case OpStats:
		cg, err := cgroup.New(s.o.Cgroup, s.o.ID)
		if err != nil {
			return fail("", err)
		}
		st, err := cg.Stats()
		if err != nil {
			return fail("", err)
		}
		return Response{Stats: st}
	case OpDelete:
		s.mu.Lock()
		started := s.started
		s.mu.Unlock()
		if started {
			return fail(ErrConflict, errors.New("the container has been started: kill it instead"))
		}
		if err := s.rt.Delete(s.o.ID, true); err != nil {
			return fail("", err)
		}
		return Response{}
	}
	return fail(ErrInvalid, fmt.Errorf("unknown request %q", req.Op))
}

func (s *shim) exited() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.init.exit != nil
}

// process finds the init ("") or an exec; else the error Response.
func (s *shim) process(execID string) (*process, Response) {
	if execID == "" {
		return s.init, Response{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.execs[execID]; p != nil {
		return p, Response{}
	}
	return nil, fail(ErrNotFound, fmt.Errorf("no such exec: %s", execID))
}

// state is the container as the shim knows it: the runtime is asked only
// whether a running container is paused.
func (s *shim) state() *State {
	s.mu.Lock()
	st := &State{Status: "created", Pid: s.init.pid, Exit: s.init.exit}
	switch {
	case s.init.exit != nil:
		st.Status = "stopped"
	case s.started:
		st.Status = "running"
	}
	for _, e := range s.execs {
		st.Execs = append(st.Execs, ExecState{ID: e.id, Process: e.spec.Process, Pid: e.pid, Exit: e.exit})
	}
	s.mu.Unlock()
	if st.Status == "running" {
		if rs, err := s.rt.State(s.o.ID); err == nil && rs == "paused" {
			st.Status = "paused"
		}
	}
	return st
}

// kill signals the init (through the runtime) or an exec (directly: the
// shim is its parent). A process that has exited is ErrNotRunning, also
// when it exits while the signal is on its way.
func (s *shim) kill(req Request) Response {
	p, resp := s.process(req.ExecID)
	if p == nil {
		return resp
	}
	sig := unix.Signal(req.Signal)
	var err error
	if p == s.init {
		if s.exited() {
			return fail(ErrNotRunning, errExited)
		}
		if err = s.rt.Kill(s.o.ID, sig, req.All); err != nil {
			if st, serr := s.rt.State(s.o.ID); serr != nil || st == "stopped" {
				return fail(ErrNotRunning, err)
			}
		}
	} else {
		s.mu.Lock()
		if p.exit == nil {
			err = unix.Kill(p.pid, sig)
		} else {
			err = errExited
		}
		s.mu.Unlock()
		if err != nil {
			return fail(ErrNotRunning, err)
		}
	}
	if err != nil {
		return fail("", err)
	}
	return Response{}
}

// attach joins a client to a process's streams until the process has
// exited: what it writes goes to the process's stdin.
func (s *shim) attach(conn net.Conn, br *bufio.Reader, req Request) {
	p, resp := s.process(req.ExecID)
	if p == nil {
		reply(conn, resp)
		conn.Close()
		return
	}
	s.stream(conn, br, p, req, nil)
}

// stream registers conn as a client of p, answers, calls then (if set),
// and copies the client's stdin to the process. The connection is closed
// by p.finish.
func (s *shim) stream(conn net.Conn, br *bufio.Reader, p *process, req Request, then func(*shim)) {
	c := &client{conn: conn, req: req}
	s.mu.Lock()
	if p.exit != nil {
		s.mu.Unlock()
		reply(conn, fail(ErrNotRunning, errExited))
		conn.Close()
		return
	}
	p.clients[c] = true
	stdin := p.stdin
	// the answer is written under mu, so that no output frame goes before it
	err := reply(conn, Response{Pid: p.pid})
	s.mu.Unlock()
	if then != nil {
		then(s)
	}
	if err != nil {
		s.drop(p, c)
		return
	}
	if !req.Stdin || stdin == nil {
		return
	}
	// Bytes after the request line (already buffered), then the rest.
	var rest io.Reader = conn
	if br.Buffered() > 0 {
		rest = io.MultiReader(br, conn)
	}
	io.Copy(stdin, rest)
	if (req.StdinOnce || p.id != "") && !p.tty {
		s.mu.Lock()
		if p.stdin != nil {
			p.stdin.Close()
			p.stdin = nil
		}
		s.mu.Unlock()
	}
}

func (s *shim) drop(p *process, c *client) {
	s.mu.Lock()
	delete(p.clients, c)
	s.mu.Unlock()
	c.conn.Close()
}

// exec starts an exec'd process. A request that asks for streams becomes
// a client of it before the runtime starts it, so no output is lost.
func (s *shim) exec(conn net.Conn, br *bufio.Reader, req Request) {
	e := req.Exec
	if e == nil || e.ID == "" || e.Process == nil || len(e.Process.Args) == 0 {
		reply(conn, fail(ErrInvalid, errors.New("exec: no process given")))
		conn.Close()
		return
	}
	s.mu.Lock()
	if s.init.exit != nil || !s.started {
		s.mu.Unlock()
		reply(conn, fail(ErrNotRunning, errors.New("the container is not running")))
		conn.Close()
		return
	}
	if s.execs[e.ID] != nil {
		s.mu.Unlock()
		reply(conn, fail(ErrConflict, fmt.Errorf("exec %s exists already", e.ID)))
		conn.Close()
		return
	}
	p := newProcess(e.ID, e.Process.Terminal)
	p.spec = e
	s.execs[e.ID] = p
	s.mu.Unlock()

	_, err := s.start(p, e.OpenStdin, func(rio *IO) (int, error) { return s.rt.Exec(s.o.ID, e.Process, rio) })
	if err != nil {
		s.mu.Lock()
		delete(s.execs, e.ID)
		s.mu.Unlock()
		reply(conn, fail(ErrStart, err))
		conn.Close()
		return
	}
	// the client first, then the output (it sees all of it), then the
	// wait, which ends once the output is drained
	run := func(s *shim) {
		p.pump(s)
		go s.waitExec(p)
	}
	if !req.Stdout && !req.Stderr && !req.Stdin {
		run(s)
		reply(conn, Response{Pid: p.pid})
		conn.Close()
		tidy()
		return
	}
	s.stream(conn, br, p, req, func(s *shim) {
		run(s)
		go tidy()
	})
}

// waitExec waits for an exec'd process, then for its output, and records
// its exit; its clients' streams end.
func (s *shim) waitExec(p *process) {
	code := waitPid(p.pid)
	finished := time.Now().UTC()
	p.drain(2 * time.Second)
	s.mu.Lock()
	p.finish(&Exit{ExitCode: code, FinishedAt: finished})
	s.mu.Unlock()
}

// wait answers once the init, or an exec, has exited. An exec's record
// goes once its exit has been told: it has been collected.
func (s *shim) wait(conn net.Conn, req Request) {
	p, resp := s.process(req.ExecID)
	if p == nil {
		reply(conn, resp)
		return
	}
	s.mu.Lock()
	s.waiting++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.waiting--
		s.answered.Broadcast()
		s.mu.Unlock()
	}()
	// A client that hangs up meanwhile ends the wait: read returns.
	gone := make(chan struct{})
	go func() {
		var b [1]byte
		conn.Read(b[:])
		close(gone)
	}()
	select {
	case <-p.exited:
	case <-gone:
		return
	}
	s.mu.Lock()
	exit := p.exit
	s.mu.Unlock()
	conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if reply(conn, Response{Exit: exit}) == nil && p.id != "" {
		s.mu.Lock()
		delete(s.execs, p.id)
		s.mu.Unlock()
	}
}
