package daemon

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"minidock/api"
	"minidock/internal/unixsock"
	"minidock/shim"
)

// Exec is one process run inside a running container (docker exec). It
// runs under `runtime exec`, a child of the daemon: unlike a container,
// it does not outlive the daemon.
type Exec struct {
	ID          string
	ContainerID string
	Config      api.ExecConfig

	mu       sync.Mutex
	started  bool
	running  bool
	exitCode *int
	pid      int
	console  *os.File // the pty master, with Tty
}

func (d *Daemon) execCreate(w http.ResponseWriter, r *http.Request) {
	c, err := d.lookup(r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	var cfg api.ExecConfig
	if err := decodeJSON(w, r, &cfg); err != nil {
		writeError(w, err)
		return
	}
	if len(cfg.Cmd) == 0 {
		writeError(w, badRequest("no exec command specified"))
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if c.State.Status != "running" {
		writeError(w, conflict("container %s is not running", c.ID))
		return
	}
	if c.State.Paused {
		writeError(w, conflict("Container %s is paused, unpause the container before exec", c.ID))
		return
	}
	e := &Exec{ID: newID(), ContainerID: c.ID, Config: cfg}
	d.execs[e.ID] = e
	writeJSON(w, http.StatusCreated, api.CreateResponse{ID: e.ID, Warnings: []string{}})
}

func (d *Daemon) lookupExec(id string) (*Exec, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if e, ok := d.execs[id]; ok {
		return e, nil
	}
	return nil, notFound("No such exec instance: %s", id)
}

func (d *Daemon) execInspect(w http.ResponseWriter, r *http.Request) {
	e, err := d.lookupExec(r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	e.mu.Lock()
	out := api.ExecInspect{
		ID: e.ID, ContainerID: e.ContainerID, Running: e.running, ExitCode: e.exitCode, Pid: e.pid,
		OpenStdin: e.Config.AttachStdin, OpenStdout: e.Config.AttachStdout, OpenStderr: e.Config.AttachStderr,
		ProcessConfig: api.ExecProcessConfig{Tty: e.Config.Tty, Entrypoint: e.Config.Cmd[0], Arguments: e.Config.Cmd[1:], User: e.Config.User},
	}
	e.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

// execProcess makes the exec's OCI process: the container's, with the
// exec's command, terminal, environment, directory and user.
func (d *Daemon) execProcess(c *Container, e *Exec) (*specs.Process, error) {
	data, err := os.ReadFile(filepath.Join(d.containerDir(c.ID), "bundle", "config.json"))
	if err != nil {
		return nil, fmt.Errorf("exec in %s: read its bundle: %w", c.ID, err)
	}
	var spec specs.Spec
	if err := json.Unmarshal(data, &spec); err != nil || spec.Process == nil {
		return nil, fmt.Errorf("exec in %s: parse its bundle config: %v", c.ID, err)
	}
	p := *spec.Process
	p.Args = e.Config.Cmd
	p.Terminal = e.Config.Tty
	p.Env = mergeEnv(p.Env, e.Config.Env)
	if e.Config.WorkingDir != "" {
		p.Cwd = e.Config.WorkingDir
	}
	if e.Config.User != "" {
		uid, gid, extra, err := resolveUser(spec.Root.Path, e.Config.User)
		if err != nil {
			return nil, err
		}
		p.User = specs.User{UID: uid, GID: gid, AdditionalGids: extra}
	}
	return &p, nil
}

// execStart is POST /exec/{id}/start: `runtime exec` with pipes (or a
// pty) joined to the hijacked connection; its exit code is the exec's.
func (d *Daemon) execStart(w http.ResponseWriter, r *http.Request) {
	e, err := d.lookupExec(r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	var req struct{ Detach, Tty bool }
	if r.ContentLength != 0 {
		if err := decodeJSON(w, r, &req); err != nil {
			writeError(w, err)
			return
		}
	}
	c, err := d.lookup(e.ContainerID)
	if err != nil {
		writeError(w, err)
		return
	}
	e.mu.Lock()
	if e.started {
		e.mu.Unlock()
		writeError(w, conflict("exec %s has already been started", e.ID))
		return
	}
	e.started = true
	e.mu.Unlock()
	d.mu.Lock()
	running := c.State.Status == "running"
	d.mu.Unlock()
	if !running {
		writeError(w, conflict("container %s is not running", c.ID))
		return
	}
	proc, err := d.execProcess(c, e)
	if err != nil {
		writeError(w, err)
		return
	}
	pf := filepath.Join(d.containerDir(c.ID), "exec-"+e.ID+".json")
	data, _ := json.Marshal(proc)
	if err := os.WriteFile(pf, data, 0o600); err != nil {
		writeError(w, fmt.Errorf("exec: write process file: %w", err))
		return
	}
	logPath := filepath.Join(d.containerDir(c.ID), "exec-"+e.ID+".log")
	args := []string{"exec", "--process", pf}
	prog, pre := d.cfg.Runtime, []string{}
	if prog == "" {
		prog, pre = d.self, []string{"runtime"}
	}
	pre = append(pre, "--root", d.runtimeRoot(), "--log", logPath, "--log-format", "json")

	var conn net.Conn
	var in io.Reader
	if !req.Detach {
		hj, ok := w.(http.Hijacker)
		if !ok {
			writeError(w, fmt.Errorf("exec: connection cannot be hijacked"))
			return
		}
		var brw interface {
			io.Reader
			Buffered() int
			Peek(int) ([]byte, error)
		}
		c2, rw, err := hj.Hijack()
		if err != nil {
			return
		}
		conn, brw = c2, rw.Reader
		defer conn.Close()
		media := api.MediaMultiplexed
		if e.Config.Tty {
			media = api.MediaRaw
		}
		if strings.EqualFold(r.Header.Get("Upgrade"), "tcp") {
			fmt.Fprintf(conn, "HTTP/1.1 101 UPGRADED\r\nContent-Type: %s\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n", media)
		} else {
			fmt.Fprintf(conn, "HTTP/1.1 200 OK\r\nContent-Type: %s\r\n\r\n", media)
		}
		in = conn
		if n := brw.Buffered(); n > 0 {
			b, _ := brw.Peek(n)
			in = io.MultiReader(bytes.NewReader(append([]byte(nil), b...)), conn)
		}
	}
	run := func() {
		code := d.runExec(e, prog, append(pre, args...), c.ID, conn, in)
		os.Remove(pf)
		os.Remove(logPath)
		e.mu.Lock()
		e.running, e.exitCode = false, &code
		if e.console != nil {
			e.console.Close()
			e.console = nil
		}
		e.mu.Unlock()
	}
	if req.Detach {
		go run()
		w.WriteHeader(http.StatusOK)
		return
	}
	run()
}

// runExec runs the runtime's exec and copies the streams; it returns the
// process's exit code (126/127 when it could not be started).
func (d *Daemon) runExec(e *Exec, prog string, args []string, containerID string, conn net.Conn, in io.Reader) int {
	cmd := exec.Command(prog, args...)
	var copies sync.WaitGroup
	var stdinW io.WriteCloser
	var consoleLn *net.UnixListener
	var pidFile string
	logPath := args[indexOf(args, "--log")+1]
	if e.Config.Tty {
		sock := filepath.Join(d.cfg.ExecRoot, "shim", "x"+e.ID[:16]+".con")
		var err error
		consoleLn, err = unixsock.Listen(sock)
		if err != nil {
			return 126
		}
		defer os.Remove(sock)
		defer consoleLn.Close()
		short, release, err := unixsock.Short(sock) // for the runtime
		if err != nil {
			return 126
		}
		defer release()
		// runc takes a console socket only with --detach: the runtime
		// exits once the process runs, and the process, orphaned, comes
		// to the daemon, a child subreaper, which waits for it by pid.
		pidFile = filepath.Join(d.cfg.ExecRoot, "shim", "x"+e.ID[:16]+".pid")
		defer os.Remove(pidFile)
		cmd.Args = append(cmd.Args, "--tty", "--detach", "--pid-file", pidFile, "--console-socket", short)
	} else if conn != nil {
		var err error
		if e.Config.AttachStdin {
			if stdinW, err = cmd.StdinPipe(); err != nil {
				return 126
			}
		}
		mu := &sync.Mutex{}
		cmd.Stdout = &frameWriter{w: conn, stream: api.Stdout, mu: mu}
		cmd.Stderr = &frameWriter{w: conn, stream: api.Stderr, mu: mu}
	}
	cmd.Args = append(cmd.Args, containerID)
	if err := cmd.Start(); err != nil {
		return 126
	}
	e.mu.Lock()
	e.running, e.pid = true, cmd.Process.Pid
	e.mu.Unlock()
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	var err error
	exited := false
	if consoleLn != nil {
		// the runtime sends the pty master, or fails and exits
		ptys := make(chan *os.File, 1)
		go func() {
			m, _ := shim.ReceiveConsole(consoleLn)
			ptys <- m
		}()
		select {
		case master := <-ptys:
			if master == nil {
				cmd.Process.Kill()
				break
			}
			e.mu.Lock()
			e.console = master
			e.mu.Unlock()
			if conn != nil {
				copies.Add(1)
				go func() {
					defer copies.Done()
					io.Copy(conn, master) // ends with EIO once the process is gone
				}()
				go io.Copy(master, in)
			}
		case err = <-waited:
			exited = true
			consoleLn.Close()
		}
	} else if stdinW != nil {
		go func() {
			io.Copy(stdinW, in)
			stdinW.Close()
		}()
	}
	if !exited {
		err = <-waited
	}
	if pidFile != "" && err == nil {
		err = waitDetached(e, pidFile)
	}
	copies.Wait()
	code := 0
	var ee *exec.ExitError
	if se, ok := err.(exitStatus); ok {
		code = int(se)
	} else if errors.As(err, &ee) {
		code = ee.ExitCode()
		data, _ := os.ReadFile(logPath)
		if msg := lastLogError(data); msg != "" {
			code = startExitCode(msg)
			if code == 128 {
				code = 126
			}
			// without a TTY the runtime's stderr is the stream: it has
			// printed the message there already
			if conn != nil && e.Config.Tty {
				io.WriteString(conn, msg+"\r\n")
			}
		}
	} else if err != nil {
		code = 126
	}
	return code
}

// exitStatus is the exit code of a detached exec process.
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// waitDetached waits for the process a detached `runtime exec` started:
// our child now, since the daemon is a child subreaper.
func waitDetached(e *Exec, pidFile string) error {
	data, err := os.ReadFile(pidFile)
	if err != nil {
		return fmt.Errorf("exec %s: read pid file: %w", e.ID, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return fmt.Errorf("exec %s: pid file holds %q", e.ID, data)
	}
	e.mu.Lock()
	e.pid = pid
	e.mu.Unlock()
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(pid, &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return fmt.Errorf("exec %s: wait for pid %d: %w", e.ID, pid, err)
		}
		break
	}
	if ws.Signaled() {
		return exitStatus(128 + int(ws.Signal()))
	}
	return exitStatus(ws.ExitStatus())
}

func indexOf(list []string, s string) int {
	for i, x := range list {
		if x == s {
			return i
		}
	}
	return -1
}

// lastLogError is the message of the last error in a runtime's JSON log.
func lastLogError(data []byte) string {
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		var l struct{ Level, Msg string }
		if json.Unmarshal([]byte(lines[i]), &l) == nil && l.Level == "error" && l.Msg != "" {
			return l.Msg
		}
	}
	return ""
}

// frameWriter frames what it is given as one stream of the multiplexed
// format; os/exec copies each stream in its own goroutine, so the two
// writers of one connection share a lock.
type frameWriter struct {
	w      io.Writer
	stream byte
	mu     *sync.Mutex
}

func (f *frameWriter) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := api.WriteFrame(f.w, f.stream, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (d *Daemon) execResize(w http.ResponseWriter, r *http.Request) {
	e, err := d.lookupExec(r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	h, wd, err := terminalSize(r)
	if err != nil {
		writeError(w, err)
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.console == nil {
		writeError(w, conflict("exec %s has no running terminal", e.ID))
		return
	}
	if err := unix.IoctlSetWinsize(int(e.console.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: uint16(h), Col: uint16(wd)}); err != nil {
		writeError(w, fmt.Errorf("resize exec %s: %w", e.ID, err))
		return
	}
	w.WriteHeader(http.StatusOK)
}
