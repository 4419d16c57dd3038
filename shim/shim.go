// Package shim is the per-container process between the daemon and the
// container (`minidock shim`). The daemon starts one per container start,
// in its own session, so that a daemon that dies (even by kill -9) leaves
// its containers running. The shim:
//
//   - is a child subreaper, so the container's init, once `runtime create`
//     has exited, becomes its child and it can wait4 for the exit status;
//   - holds the container's stdio (pipes) or the pty master (received on a
//     console socket, as runc's --console-socket protocol gives it);
//   - writes every output line to the json-file log;
//   - serves attach clients on a unix socket (one JSON line of request,
//     then the streams), and "wait" clients whose connection closes when
//     the shim exits;
//   - after the exit, deletes the runtime's state (and so the cgroup),
//     writes exit.json atomically and exits.
//
// docs/daemon.md draws the process tree and the start handshake.
package shim

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/sys/unix"

	"minidock/internal/unixsock"
)

// Files the shim keeps in the container's directory (--dir).
const (
	ExitFile       = "exit.json"   // Exit, written once the container is gone
	PidFile        = "init.pid"    // the container init's pid (runtime --pid-file)
	RuntimeLogFile = "runtime.log" // the runtime's --log, JSON lines
)

// LogPath is where the json-file log of container id in dir lives.
func LogPath(dir, id string) string { return filepath.Join(dir, id+"-json.log") }

// Exit is exit.json: how the container ended.
type Exit struct {
	ExitCode   int
	FinishedAt time.Time
}

// LogEntry is one line of Docker's json-file log format.
type LogEntry struct {
	Log    string    `json:"log"`
	Stream string    `json:"stream"`
	Time   time.Time `json:"time"`
}

// Request is the first line a client writes on the shim's socket.
// Wait alone asks for nothing but the close at exit; otherwise the client
// gets the streams it names (framed as Docker's multiplexed stream
// without a TTY, raw with one) and, with Stdin, what it writes goes to the
// container's stdin; its half-close closes that stdin when StdinOnce.
// Resize sets the terminal's size instead (answered "ok" or "error ...").
type Request struct {
	Stdin, Stdout, Stderr, StdinOnce, Wait bool

	Resize        bool
	Height, Width uint16
}

// Options is the shim's command line.
type Options struct {
	ID          string
	Bundle      string
	Dir         string   // the container's directory: log, exit.json, pid file
	Socket      string   // the attach socket
	Runtime     []string // runtime program and leading arguments
	RuntimeRoot string
	Tty         bool
	Stdin       bool // keep the container's stdin open for attach
}

// Main runs `minidock shim ARGS...`. File descriptor 3 is the status pipe
// to the daemon ("created PID", then "started" or "error MESSAGE"), fd 4
// the control pipe from it ("start").
func Main(args []string) int {
	var o Options
	fs := flag.NewFlagSet("minidock shim", flag.ContinueOnError)
	fs.StringVar(&o.ID, "id", "", "container id")
	fs.StringVar(&o.Bundle, "bundle", "", "OCI bundle directory")
	fs.StringVar(&o.Dir, "dir", "", "container directory (log, exit status)")
	fs.StringVar(&o.Socket, "socket", "", "attach socket path")
	rt := fs.String("runtime", "", "runtime binary (default: this binary's `runtime` role)")
	fs.StringVar(&o.RuntimeRoot, "runtime-root", "", "runtime --root")
	fs.BoolVar(&o.Tty, "tty", false, "give the container a terminal")
	fs.BoolVar(&o.Stdin, "stdin", false, "keep stdin open")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if o.ID == "" || o.Bundle == "" || o.Dir == "" || o.Socket == "" || o.RuntimeRoot == "" {
		fmt.Fprintln(os.Stderr, "minidock shim: --id, --bundle, --dir, --socket and --runtime-root are required")
		return 2
	}
	if *rt == "" {
		self, err := os.Executable()
		if err != nil {
			fmt.Fprintln(os.Stderr, "minidock shim: find own binary:", err)
			return 1
		}
		o.Runtime = []string{self, "runtime"}
	} else {
		o.Runtime = []string{*rt}
	}
	status := os.NewFile(3, "status")
	ctl := os.NewFile(4, "control")
	if err := run(o, status, ctl); err != nil {
		fmt.Fprintf(os.Stderr, "minidock shim %s: %v\n", o.ID, err)
		return 1
	}
	return 0
}

type client struct {
	conn net.Conn
	req  Request
}

type shim struct {
	o Options

	mu      sync.Mutex
	clients map[*client]bool
	log     *os.File
	partial [3][]byte // unfinished last line per stream, for the log
	logBuf  []byte    // log lines not yet written
	frame   []byte    // the frame being sent to attached clients
	stdin   io.WriteCloser
	console *os.File // the pty master, with a TTY
}

func run(o Options, status, ctl *os.File) error {
	// Orphans of our children (the init, once `runtime create` exits) are
	// reparented to us instead of pid 1, so we can wait4 for the init.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return report(status, fmt.Errorf("prctl(PR_SET_CHILD_SUBREAPER): %w", err))
	}
	s := &shim{o: o, clients: map[*client]bool{}}
	var err error
	s.log, err = os.OpenFile(LogPath(o.Dir, o.ID), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return report(status, fmt.Errorf("open log: %w", err))
	}
	ln, err := unixsock.Listen(o.Socket)
	if err != nil {
		return report(status, fmt.Errorf("listen on attach socket: %w", err))
	}
	defer os.Remove(o.Socket)
	go s.serve(ln)

	outputs, err := s.create(status)
	if err != nil {
		return report(status, err)
	}
	pid, err := readPid(filepath.Join(o.Dir, PidFile))
	if err != nil {
		s.runtime("delete", "--force", o.ID)
		return report(status, err)
	}
	fmt.Fprintf(status, "created %d\n", pid)

	line, _ := bufio.NewReader(ctl).ReadString('\n')
	var drained sync.WaitGroup
	for i, f := range outputs {
		if f != nil {
			drained.Add(1)
			go func(stream int, f *os.File) {
				defer drained.Done()
				s.pump(stream, f)
			}(i, f)
		}
	}
	if strings.TrimSpace(line) != "start" {
		err = errors.New("daemon went away before start")
	} else {
		if out, rerr := s.runtimeOutput("start", o.ID); rerr != nil {
			err = fmt.Errorf("%s", runtimeError(out, rerr))
		}
	}
	if err != nil {
		s.runtime("delete", "--force", o.ID)
		var ws unix.WaitStatus
		unix.Wait4(pid, &ws, 0, nil)
		return report(status, err)
	}
	fmt.Fprintln(status, "started")
	status.Close()
	ctl.Close()

	code := waitExit(pid)
	finished := time.Now().UTC()
	done := make(chan struct{})
	go func() { drained.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		// a process outside the container kept a pipe open; stop waiting
	}
	s.flushLog()
	// The runtime removes its state and the container's cgroup.
	s.runtime("delete", "--force", o.ID)
	if err := writeExit(filepath.Join(o.Dir, ExitFile), Exit{ExitCode: code, FinishedAt: finished}); err != nil {
		return err
	}
	// The clients' connections close when this process exits, so a
	// daemon that sees EOF knows the shim is gone, not just leaving.
	return nil
}

// report sends an error to the daemon over the status pipe.
func report(status *os.File, err error) error {
	msg := strings.ReplaceAll(err.Error(), "\n", " ")
	fmt.Fprintf(status, "error %s\n", msg)
	return err
}

// create runs `runtime create` with the container's stdio (or a console
// socket for a TTY) and returns the files to read output from: index 1
// stdout, 2 stderr (for a TTY, 1 is the pty master).
func (s *shim) create(status *os.File) ([3]*os.File, error) {
	var outputs [3]*os.File
	args := []string{"create", "--bundle", s.o.Bundle, "--pid-file", filepath.Join(s.o.Dir, PidFile)}
	var childEnds []*os.File
	defer func() {
		for _, f := range childEnds {
			f.Close()
		}
	}()
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return outputs, err
	}
	childEnds = append(childEnds, devnull)
	stdio := [3]*os.File{devnull, devnull, devnull}
	var console chan *os.File
	var consoleErr error
	if s.o.Tty {
		sock := s.o.Socket + ".con"
		cl, err := unixsock.Listen(sock)
		if err != nil {
			return outputs, fmt.Errorf("listen on console socket: %w", err)
		}
		defer os.Remove(sock)
		defer cl.Close()
		short, release, err := unixsock.Short(sock) // for the runtime
		if err != nil {
			return outputs, fmt.Errorf("console socket: %w", err)
		}
		defer release()
		args = append(args, "--console-socket", short)
		console = make(chan *os.File, 1)
		go func() {
			f, err := ReceiveConsole(cl)
			consoleErr = err
			console <- f
		}()
	} else {
		for i := 1; i <= 2; i++ {
			r, w, err := os.Pipe()
			if err != nil {
				return outputs, err
			}
			outputs[i], stdio[i] = r, w
			childEnds = append(childEnds, w)
		}
		if s.o.Stdin {
			r, w, err := os.Pipe()
			if err != nil {
				return outputs, err
			}
			stdio[0], s.stdin = r, w
			childEnds = append(childEnds, r)
		}
	}
	cmd := s.runtimeCmd(args...)
	cmd.Args = append(cmd.Args, s.o.ID)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdio[0], stdio[1], stdio[2]
	if s.o.Tty {
		// the runtime's own messages go to its log, and to ours
		// (shim.log): a file, so no goroutine copies them (see
		// runtimeOutput)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	}
	if err := cmd.Run(); err != nil {
		for _, f := range outputs {
			if f != nil {
				f.Close()
			}
		}
		return outputs, fmt.Errorf("%s", runtimeError(nil, err, s.runtimeLog()))
	}
	if s.o.Tty {
		select {
		case f := <-console:
			if f == nil {
				s.runtime("delete", "--force", s.o.ID)
				return outputs, fmt.Errorf("receive the console: %w", consoleErr)
			}
			outputs[1] = f
			s.mu.Lock()
			s.stdin, s.console = f, f
			s.mu.Unlock()
		case <-time.After(10 * time.Second):
			s.runtime("delete", "--force", s.o.ID)
			return outputs, errors.New("the runtime sent no console")
		}
	}
	return outputs, nil
}

// ReceiveConsole accepts one connection on a console socket and takes the
// pty master the runtime passes as SCM_RIGHTS (runc's --console-socket
// protocol). The daemon uses it for exec with a TTY too.
func ReceiveConsole(l *net.UnixListener) (*os.File, error) {
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

func (s *shim) runtimeCmd(args ...string) *exec.Cmd {
	all := append([]string{}, s.o.Runtime[1:]...)
	all = append(all, "--root", s.o.RuntimeRoot, "--log", s.runtimeLog(), "--log-format", "json")
	return exec.Command(s.o.Runtime[0], append(all, args...)...)
}

func (s *shim) runtimeLog() string { return filepath.Join(s.o.Dir, RuntimeLogFile) }

// runtime runs one runtime command, its output discarded.
func (s *shim) runtime(args ...string) error {
	return s.runtimeCmd(args...).Run()
}

// runtimeOutput runs one runtime command and returns its output. The
// output goes to a temporary file in the container's directory, not to a
// pipe: with a pipe, os/exec copies through a goroutine and a 32 KiB
// buffer, and what that touches stays in the shim's resident memory for
// the container's whole life (about 45 KiB of it, measured with 50
// shims by BenchmarkEngineRunDetached50).
func (s *shim) runtimeOutput(args ...string) (*bytes.Buffer, error) {
	var out bytes.Buffer
	f, err := os.CreateTemp(s.o.Dir, "runtime-output-")
	if err != nil {
		return &out, fmt.Errorf("runtime %s: %w", args[0], err)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	cmd := s.runtimeCmd(args...)
	cmd.Stdout, cmd.Stderr = f, f
	err = cmd.Run()
	if _, serr := f.Seek(0, io.SeekStart); serr == nil {
		out.ReadFrom(f)
	}
	return &out, err
}

// runtimeError makes the message of a failed runtime command: its output,
// or else the last error in its JSON log.
func runtimeError(out *bytes.Buffer, err error, logPath ...string) string {
	if out != nil && strings.TrimSpace(out.String()) != "" {
		return strings.TrimSpace(out.String())
	}
	for _, p := range logPath {
		data, _ := os.ReadFile(p)
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		for i := len(lines) - 1; i >= 0; i-- {
			var l struct{ Level, Msg string }
			if json.Unmarshal([]byte(lines[i]), &l) == nil && l.Level == "error" && l.Msg != "" {
				return l.Msg
			}
		}
	}
	return err.Error()
}

func readPid(p string) (int, error) {
	data, err := os.ReadFile(p)
	if err != nil {
		return 0, fmt.Errorf("read init pid: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("pid file %s holds %q", p, data)
	}
	return pid, nil
}

// waitExit waits for the init (our child since `runtime create` exited)
// and returns Docker's exit code: the status, or 128+signal.
func waitExit(pid int) int {
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(pid, &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 255
		}
		break
	}
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

// writeExit writes exit.json atomically: temp file, fsync, rename.
func writeExit(p string, e Exit) error {
	data, _ := json.Marshal(e)
	tmp := p + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("write exit status: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write exit status: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write exit status: %w", err)
	}
	f.Close()
	if err := os.Rename(tmp, p); err != nil {
		return fmt.Errorf("write exit status: %w", err)
	}
	return nil
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

// pump copies one output stream to the log and to every attached client.
func (s *shim) pump(stream int, f *os.File) {
	defer f.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := f.Read(buf)
		if n > 0 {
			s.output(stream, buf[:n])
		}
		if err != nil {
			return // EOF, or EIO from a pty whose other side is gone
		}
	}
}

var streamNames = [3]string{"stdin", "stdout", "stderr"}

func (s *shim) output(stream int, p []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.logLines(stream, p)
	for c := range s.clients {
		if c.req.Wait || (stream == 1 && !c.req.Stdout) || (stream == 2 && !c.req.Stderr) {
			continue
		}
		var err error
		if s.o.Tty {
			_, err = c.conn.Write(p)
		} else {
			err = s.writeFrame(c.conn, byte(stream), p)
		}
		if err != nil {
			c.conn.Close()
			delete(s.clients, c)
		}
	}
}

// writeFrame writes p as one frame of Docker's multiplexed stream (an
// 8-byte header: stream, 0, 0, 0, big-endian length; api.WriteFrame's
// format) from a buffer it keeps, so that output makes no garbage.
func (s *shim) writeFrame(w io.Writer, stream byte, p []byte) error {
	b := append(s.frame[:0], stream, 0, 0, 0, 0, 0, 0, 0)
	binary.BigEndian.PutUint32(b[4:], uint32(len(p)))
	b = append(b, p...)
	_, err := w.Write(b)
	if cap(b) <= 64<<10 {
		s.frame = b
	}
	return err
}

// logLines appends complete lines to the json-file log; a line longer
// than 16 KiB is cut, as Docker does. Only an unfinished last line is
// kept (in partial) for the next read.
func (s *shim) logLines(stream int, p []byte) {
	const maxLine = 16 << 10
	b, keep := p, s.partial[stream][:0]
	if len(s.partial[stream]) > 0 {
		b = append(s.partial[stream], p...)
		keep = b[:0]
	}
	for len(b) > 0 {
		i := bytes.IndexByte(b[:min(len(b), maxLine)], '\n')
		if i < 0 {
			if len(b) < maxLine {
				break
			}
			i = maxLine - 1
		}
		s.writeLog(stream, b[:i+1])
		b = b[i+1:]
	}
	// b may lie in keep's array, after its start: copy (memmove) handles
	// the overlap.
	s.partial[stream] = append(keep, b...)
	s.writeOut()
}

func (s *shim) flushLog() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, b := range s.partial {
		if len(b) > 0 {
			s.writeLog(i, b)
			s.partial[i] = nil
		}
	}
	s.writeOut()
}

// writeLog appends one LogEntry line to the log buffer, which goes to
// the file when it passes 32 KiB and at the end of each read (writeOut):
// one write(2) per read, not per line. It encodes by hand, byte for byte
// what json.Marshal(LogEntry{...}) writes (log_test.go checks), so that a
// chatty container's lines make no garbage for the shim to collect.
func (s *shim) writeLog(stream int, line []byte) {
	b := append(s.logBuf, `{"log":`...)
	b = appendJSONString(b, line)
	b = append(b, `,"stream":"`...)
	b = append(b, streamNames[stream]...)
	b = append(b, `","time":"`...)
	b = time.Now().UTC().AppendFormat(b, time.RFC3339Nano)
	s.logBuf = append(b, "\"}\n"...)
	if len(s.logBuf) >= 32<<10 {
		s.writeOut()
	}
}

// writeOut writes the buffered log lines.
func (s *shim) writeOut() {
	if len(s.logBuf) > 0 {
		s.log.Write(s.logBuf)
	}
	s.logBuf = s.logBuf[:0]
	if cap(s.logBuf) > 256<<10 {
		s.logBuf = nil // a rare huge line: do not keep its buffer
	}
}

// appendJSONString appends s as a JSON string, escaped as encoding/json
// does: control characters, quote, backslash, <, > and & (HTML-safe),
// U+2028 and U+2029, and invalid UTF-8 as U+FFFD.
func appendJSONString(b, s []byte) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// serve accepts attach and wait clients until the shim exits.
func (s *shim) serve(ln net.Listener) {
	for {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		go s.handle(conn)
	}
}

func (s *shim) handle(conn net.Conn) {
	br := bufio.NewReader(io.LimitReader(conn, 4096))
	line, err := br.ReadBytes('\n')
	var req Request
	if err == nil {
		err = json.Unmarshal(line, &req)
	}
	if err != nil {
		fmt.Fprintf(conn, "error bad request: %v\n", err)
		conn.Close()
		return
	}
	if req.Resize {
		s.resize(conn, req.Height, req.Width)
		return
	}
	c := &client{conn: conn, req: req}
	s.mu.Lock()
	s.clients[c] = true
	stdin := s.stdin
	s.mu.Unlock()
	if _, err := conn.Write([]byte("ok\n")); err != nil {
		s.drop(c)
		return
	}
	if !req.Stdin || stdin == nil {
		return
	}
	// Bytes after the request line (already buffered), then the rest.
	rest := io.MultiReader(br, conn)
	if br.Buffered() == 0 {
		rest = conn
	}
	io.Copy(stdin, rest)
	if req.StdinOnce && !s.o.Tty {
		stdin.Close()
	}
}

// resize sets the pty's window size (TIOCSWINSZ); the kernel sends the
// container's foreground process group SIGWINCH.
func (s *shim) resize(conn net.Conn, h, w uint16) {
	defer conn.Close()
	s.mu.Lock()
	console := s.console
	s.mu.Unlock()
	if console == nil {
		fmt.Fprintln(conn, "error the container has no terminal")
		return
	}
	ws := &unix.Winsize{Row: h, Col: w}
	if err := unix.IoctlSetWinsize(int(console.Fd()), unix.TIOCSWINSZ, ws); err != nil {
		fmt.Fprintf(conn, "error resize the terminal: %v\n", err)
		return
	}
	conn.Write([]byte("ok\n"))
}

func (s *shim) drop(c *client) {
	s.mu.Lock()
	delete(s.clients, c)
	s.mu.Unlock()
	c.conn.Close()
}
