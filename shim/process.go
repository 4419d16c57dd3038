package shim

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"minidock/internal/unixsock"
)

// process is one process the shim supervises: the container's init, or
// an exec'd process. Its fields change under the shim's mu.
type process struct {
	id      string    // the exec ID; "" for the init
	spec    *ExecSpec // an exec's request
	tty     bool
	pid     int
	stdin   io.WriteCloser // nil when its stdin is /dev/null
	console *os.File       // the pty master, with a terminal
	outputs [3]*os.File    // our ends of its stdout and stderr (1: the pty master with a terminal)
	log     *jsonLog       // the init's output goes to the json-file log
	clients map[*client]bool
	frame   framer
	pumps   sync.WaitGroup // the readers of its outputs
	exit    *Exit          // set when it has exited
	exited  chan struct{}  // closed then
}

// client is an attached connection: it gets the streams it asked for.
type client struct {
	conn net.Conn
	req  Request
}

func newProcess(id string, tty bool) *process {
	return &process{id: id, tty: tty, clients: map[*client]bool{}, exited: make(chan struct{})}
}

// newIO makes p's stdio: pipes for stdout and stderr, and for stdin when
// open (else /dev/null), or, with a terminal, a console socket the
// runtime sends the pty master to. taken is called with the runtime's
// result: it closes the runtime's ends, takes the pty master, and on
// error undoes the rest.
func (s *shim) newIO(p *process, openStdin bool) (*IO, func(error) error, error) {
	rio := &IO{}
	var theirs []*os.File // the runtime's ends, closed once it has them
	undo := func() {
		for _, f := range theirs {
			f.Close()
		}
		for _, f := range p.outputs {
			if f != nil {
				f.Close()
			}
		}
		if p.stdin != nil {
			p.stdin.Close()
		}
	}
	if p.tty {
		sock := s.o.Socket + ".con"
		if p.id != "" {
			sock = s.o.Socket + "." + p.id[:min(12, len(p.id))] + ".con"
		}
		ln, err := unixsock.Listen(sock)
		if err != nil {
			return nil, nil, fmt.Errorf("console socket: %w", err)
		}
		short, release, err := unixsock.Short(sock) // for the runtime
		if err != nil {
			ln.Close()
			os.Remove(sock)
			return nil, nil, fmt.Errorf("console socket: %w", err)
		}
		rio.ConsoleSocket = short
		s.trace.Call("create", "listen", sock, "the console socket: the runtime sends the pty master here", nil)
		type result struct {
			f   *os.File
			err error
		}
		got := make(chan result, 1)
		go func() {
			f, err := receiveConsole(ln)
			got <- result{f, err}
		}()
		taken := func(rerr error) error {
			defer release()
			defer os.Remove(sock)
			defer ln.Close()
			if rerr != nil {
				return rerr
			}
			select {
			case r := <-got:
				if r.err != nil {
					return fmt.Errorf("receive the console: %w", r.err)
				}
				p.console, p.outputs[1], p.stdin = r.f, r.f, r.f
				return nil
			case <-time.After(10 * time.Second):
				return errors.New("the runtime sent no console")
			}
		}
		return rio, taken, nil
	}
	for i := 1; i <= 2; i++ {
		r, w, err := os.Pipe()
		if s.trace.Call("create", "pipe2", fmt.Sprintf("O_CLOEXEC: the process's fd %d", i), "the shim reads the process's output from it, for the log and attach clients", err) != nil {
			undo()
			return nil, nil, err
		}
		p.outputs[i] = r
		theirs = append(theirs, w)
	}
	rio.Stdout, rio.Stderr = theirs[0], theirs[1]
	if openStdin {
		r, w, err := os.Pipe()
		if s.trace.Call("create", "pipe2", "O_CLOEXEC: the process's fd 0", "attach clients write the process's stdin into it", err) != nil {
			undo()
			return nil, nil, err
		}
		rio.Stdin, p.stdin = r, w
		theirs = append(theirs, r)
	}
	taken := func(rerr error) error {
		if rerr != nil {
			undo()
			return rerr
		}
		for _, f := range theirs {
			f.Close()
		}
		return nil
	}
	return rio, taken, nil
}

// receiveConsole accepts one connection on a console socket and takes the
// pty master the runtime passes as SCM_RIGHTS (runc's --console-socket
// protocol).
func receiveConsole(l *net.UnixListener) (*os.File, error) {
	c, err := l.AcceptUnix()
	if err != nil {
		return nil, err
	}
	defer c.Close()
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil, fmt.Errorf("read console message: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) == 0 {
		return nil, fmt.Errorf("console message has no file descriptor (%v)", err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) == 0 {
		return nil, fmt.Errorf("console message has no file descriptor (%v)", err)
	}
	return os.NewFile(uintptr(fds[0]), "pty-master"), nil
}

// pump starts reading p's outputs: each read goes to the log (the init's)
// and to every attached client.
func (p *process) pump(s *shim) {
	for i, f := range p.outputs {
		if f == nil {
			continue
		}
		p.pumps.Add(1)
		go func(stream int, f *os.File) {
			defer p.pumps.Done()
			defer f.Close()
			buf := make([]byte, 32<<10)
			for {
				n, err := f.Read(buf)
				if n > 0 {
					s.output(p, stream, buf[:n])
				}
				if err != nil {
					return // EOF, or EIO from a pty whose other side is gone
				}
			}
		}(i, f)
	}
}

// drain waits (at most timeout: a process outside the container may keep
// a pipe open) until p's outputs are read to their end.
func (p *process) drain(timeout time.Duration) {
	done := make(chan struct{})
	go func() { p.pumps.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(timeout):
	}
}

// output sends one read of p's stream to the log and the clients.
func (s *shim) output(p *process, stream int, b []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.log != nil {
		p.log.lines(stream, b)
	}
	for c := range p.clients {
		if (stream == 1 && !c.req.Stdout) || (stream == 2 && !c.req.Stderr) {
			continue
		}
		var err error
		if p.tty {
			_, err = c.conn.Write(b)
		} else {
			err = p.frame.write(c.conn, byte(stream), b)
		}
		if err != nil {
			c.conn.Close()
			delete(p.clients, c)
		}
	}
}

// finish records p's exit and hangs up on its clients: their streams
// end. Callers hold mu.
func (p *process) finish(e *Exit) {
	p.exit = e
	for c := range p.clients {
		if uc, ok := c.conn.(*net.UnixConn); ok {
			uc.CloseWrite()
		}
		c.conn.Close()
		delete(p.clients, c)
	}
	if p.console != nil {
		p.console.Close()
		p.console = nil
	} else if p.stdin != nil {
		p.stdin.Close()
	}
	p.stdin = nil
	close(p.exited)
}

// resize sets the size of p's terminal (TIOCSWINSZ); the kernel sends its
// foreground process group SIGWINCH. Callers hold mu.
func (p *process) resize(h, w uint16) error {
	if p.console == nil {
		return errNoTerminal
	}
	if err := unix.IoctlSetWinsize(int(p.console.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: h, Col: w}); err != nil {
		return fmt.Errorf("resize the terminal: %w", err)
	}
	return nil
}

var errNoTerminal = errors.New("the process has no terminal")
