package daemon

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"minidock/api"
	"minidock/internal/unixsock"
	"minidock/shim"
)

func (d *Daemon) runtimeRoot() string { return filepath.Join(d.cfg.ExecRoot, "runtime") }

// runtimeCmd runs the OCI runtime directly (kill): the same binary and
// root the shims use.
func (d *Daemon) runtimeCmd(args ...string) *exec.Cmd {
	prog, pre := d.cfg.Runtime, []string{}
	if prog == "" {
		prog, pre = d.self, []string{"runtime"}
	}
	all := append(pre, "--root", d.runtimeRoot())
	return exec.Command(prog, append(all, args...)...)
}

func (d *Daemon) containerStart(w http.ResponseWriter, r *http.Request) {
	c, err := d.lookup(r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	d.userStart(c)
	if err := d.start(c); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// start mounts the rootfs, writes the bundle, and starts a shim, which
// creates the container; attach requests waiting for it connect to the
// shim; then the shim starts the container's process.
func (d *Daemon) start(c *Container) (err error) {
	c.op.Lock()
	defer c.op.Unlock()
	d.mu.Lock()
	if c.removed {
		d.mu.Unlock()
		return notFound("No such container: %s", c.ID)
	}
	if c.State.Status == "running" {
		d.mu.Unlock()
		return notModified()
	}
	d.mu.Unlock()

	dir := d.containerDir(c.ID)
	for _, f := range []string{shim.ExitFile, shim.PidFile} {
		os.Remove(filepath.Join(dir, f))
	}
	pid, ctl, statusPipe, err := d.startShim(c)
	defer func() {
		if err == nil {
			return
		}
		d.releaseNetwork(c)
		d.images.Unmount(c.ID)
		d.mu.Lock()
		c.shimSocket = ""
		c.State = State{Status: "exited", ExitCode: startExitCode(err.Error()), Error: err.Error(),
			StartedAt: c.State.StartedAt, FinishedAt: time.Now().UTC()}
		c.exits++
		d.save(c)
		c.notify()
		d.emit(c, "die", map[string]string{"exitCode": strconv.Itoa(c.State.ExitCode)})
		auto := c.HostConfig.AutoRemove
		d.mu.Unlock()
		if auto {
			go d.remove(c, true)
		}
	}()
	if err != nil {
		return err
	}
	defer func() {
		ctl.Close() // without "start" before it, the shim deletes the container and exits
		if err != nil {
			// Wait for that (EOF on the status pipe) before the failure is
			// recorded: an AutoRemove must not take the container's
			// directory, where the runtime keeps its log, from under the
			// shim's `runtime delete`.
			statusPipe.SetReadDeadline(time.Now().Add(15 * time.Second))
			io.Copy(io.Discard, statusPipe)
		}
		statusPipe.Close()
	}()
	status := bufio.NewReader(statusPipe)
	c.oom = d.watchOOM(c) // the cgroup exists now
	if err := d.wireNetwork(c, pid); err != nil {
		return fmt.Errorf("start container %s: network: %w", c.ID, err)
	}

	// Let attach requests made before start connect first, so they see
	// all of the output.
	d.mu.Lock()
	c.shimSocket = d.shimSocket(c.ID)
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
	d.mu.Unlock()

	if _, err := io.WriteString(ctl, "start\n"); err != nil {
		return fmt.Errorf("start container %s: tell the shim: %w", c.ID, err)
	}
	line, rerr := status.ReadString('\n')
	line = strings.TrimSpace(line)
	if line != "started" {
		if msg, ok := strings.CutPrefix(line, "error "); ok {
			return fmt.Errorf("failed to start container %s: %s", c.ID, msg)
		}
		return fmt.Errorf("start container %s: the shim ended without an answer (%v); see %s", c.ID, rerr, filepath.Join(dir, "shim.log"))
	}
	d.mu.Lock()
	c.State = State{Status: "running", Pid: pid, StartedAt: time.Now().UTC()}
	err = d.save(c)
	c.notify()
	d.emit(c, "start", nil)
	d.mu.Unlock()
	go d.monitor(c)
	return err
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

// startShim mounts the rootfs, writes the bundle, starts `minidock shim`
// in a new session and waits until it has created the container. It
// returns the init's pid, the control pipe and the status pipe.
func (d *Daemon) startShim(c *Container) (int, io.WriteCloser, *os.File, error) {
	rootfs, err := d.images.Mount(c.ID)
	if err != nil {
		return 0, nil, nil, err
	}
	img, err := d.images.Resolve(c.Image)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("image %s of container %s: %w", c.Image, c.ID, err)
	}
	plan, err := d.prepareNetwork(c)
	if err != nil {
		return 0, nil, nil, err
	}
	d.mu.Lock()
	spec, err := buildSpec(c, img.Config.Config, rootfs, d.cfg.CgroupParent, plan)
	d.mu.Unlock()
	if err != nil {
		return 0, nil, nil, err
	}
	dir := d.containerDir(c.ID)
	bundle := filepath.Join(dir, "bundle")
	if err := os.MkdirAll(bundle, 0o700); err != nil {
		return 0, nil, nil, fmt.Errorf("bundle of %s: %w", c.ID, err)
	}
	data, _ := json.MarshalIndent(spec, "", "  ")
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), data, 0o600); err != nil {
		return 0, nil, nil, fmt.Errorf("bundle of %s: %w", c.ID, err)
	}
	statusR, statusW, err := os.Pipe()
	if err != nil {
		return 0, nil, nil, err
	}
	ctlR, ctlW, err := os.Pipe()
	if err != nil {
		statusR.Close()
		statusW.Close()
		return 0, nil, nil, err
	}
	logf, err := os.OpenFile(filepath.Join(dir, "shim.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return 0, nil, nil, err
	}
	defer logf.Close()
	args := []string{"shim", "--id", c.ID, "--bundle", bundle, "--dir", dir,
		"--socket", d.shimSocket(c.ID), "--runtime-root", d.runtimeRoot()}
	if d.cfg.Runtime != "" {
		args = append(args, "--runtime", d.cfg.Runtime)
	}
	if c.Config.Tty {
		args = append(args, "--tty")
	}
	if c.Config.OpenStdin {
		args = append(args, "--stdin")
	}
	cmd := exec.Command(d.self, args...)
	cmd.Dir = "/"
	cmd.Stderr = logf
	cmd.ExtraFiles = []*os.File{statusW, ctlR}
	// Its own session: no signal meant for the daemon reaches it.
	cmd.SysProcAttr = &unix.SysProcAttr{Setsid: true}
	err = cmd.Start()
	statusW.Close()
	ctlR.Close()
	if err != nil {
		statusR.Close()
		ctlW.Close()
		return 0, nil, nil, fmt.Errorf("start shim of %s: %w", c.ID, err)
	}
	go cmd.Wait() // reap it while we are its parent
	// One read: the shim writes nothing more until it is told to start.
	buf := make([]byte, 512)
	n, rerr := statusR.Read(buf)
	line := strings.TrimSpace(string(buf[:n]))
	if pidStr, ok := strings.CutPrefix(line, "created "); ok {
		pid, _ := strconv.Atoi(pidStr)
		return pid, ctlW, statusR, nil
	}
	// an error: the shim exits after it, so read to EOF
	rest, _ := io.ReadAll(statusR)
	line = strings.TrimSpace(line + string(rest))
	statusR.Close()
	ctlW.Close()
	if msg, ok := strings.CutPrefix(line, "error "); ok {
		return 0, nil, nil, fmt.Errorf("failed to create container %s: %s", c.ID, msg)
	}
	return 0, nil, nil, fmt.Errorf("create container %s: the shim ended without an answer (%v); see %s", c.ID, rerr, filepath.Join(dir, "shim.log"))
}

// monitor holds a "wait" connection to a running container's shim; the
// shim closes it when it exits, after writing exit.json.
func (d *Daemon) monitor(c *Container) {
	conn, err := dialShim(d.shimSocket(c.ID), shim.Request{Wait: true})
	if err != nil {
		conn = nil
	}
	d.watch(c, conn)
}

// watch waits for EOF on a shim's wait connection (nil: gone already),
// then records the exit.
func (d *Daemon) watch(c *Container, conn *shimConn) {
	if conn != nil {
		io.Copy(io.Discard, conn)
		conn.Close()
	}
	d.exited(c)
}

// exited records how a container ended, from the exit.json its shim
// wrote, unmounts its rootfs, and removes it when AutoRemove is set.
func (d *Daemon) exited(c *Container) {
	exit, err := shim.ReadExit(d.containerDir(c.ID))
	if err != nil {
		exit = &shim.Exit{ExitCode: 255, FinishedAt: time.Now().UTC()}
		// a shim killed under its container: do not leave the container
		d.runtimeCmd("delete", "--force", c.ID).Run()
	}
	d.releaseNetwork(c)
	d.images.Unmount(c.ID)
	oom := c.oom.oomKilled()
	c.oom = nil
	d.mu.Lock()
	c.State.Status = "exited"
	c.State.Paused = false
	c.State.OOMKilled = oom
	c.State.Pid = 0
	c.State.ExitCode = exit.ExitCode
	c.State.FinishedAt = exit.FinishedAt
	if err != nil {
		c.State.Error = "the shim ended without recording an exit status"
	}
	c.shimSocket = ""
	c.exits++
	d.save(c)
	c.notify()
	if oom {
		d.emit(c, "oom", nil)
	}
	d.emit(c, "die", map[string]string{"exitCode": strconv.Itoa(exit.ExitCode)})
	auto := c.HostConfig.AutoRemove && !c.removed
	d.mu.Unlock()
	if auto {
		// not forced: a container restarted meanwhile stays
		d.remove(c, false)
	}
	d.maybeRestart(c)
}

// dialShim connects to a shim's socket and sends a request.
func dialShim(sock string, req shim.Request) (*shimConn, error) {
	conn, err := unixsock.Dial(sock)
	if err != nil {
		return nil, err
	}
	data, _ := json.Marshal(req)
	if _, err := conn.Write(append(data, '\n')); err != nil {
		conn.Close()
		return nil, err
	}
	br := bufio.NewReader(conn)
	line, err := br.ReadString('\n')
	if err != nil || line != "ok\n" {
		conn.Close()
		return nil, fmt.Errorf("shim at %s refused: %q %v", sock, line, err)
	}
	return &shimConn{UnixConn: conn, r: br}, nil
}

// shimConn reads through the buffer that held the shim's "ok" line.
type shimConn struct {
	*net.UnixConn
	r *bufio.Reader
}

func (s *shimConn) Read(p []byte) (int, error) { return s.r.Read(p) }

func (d *Daemon) containerWait(w http.ResponseWriter, r *http.Request) {
	c, err := d.lookup(r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	cond := r.URL.Query().Get("condition")
	switch cond {
	case "", "not-running", "next-exit", "removed":
	default:
		writeError(w, badRequest("invalid condition: %q", cond))
		return
	}
	d.mu.Lock()
	exits0 := c.exits
	d.mu.Unlock()
	// The docker CLI sends start only once it has these headers.
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.(http.Flusher).Flush()
	for {
		d.mu.Lock()
		var done bool
		switch cond {
		case "next-exit":
			done = c.exits > exits0 || c.removed
		case "removed":
			done = c.removed
		default:
			done = c.State.Status != "running"
		}
		code, ch := c.State.ExitCode, c.changed
		d.mu.Unlock()
		if done {
			json.NewEncoder(w).Encode(api.WaitResponse{StatusCode: code})
			return
		}
		select {
		case <-ch:
		case <-r.Context().Done():
			return // the client hung up (docker run -d does)
		}
	}
}

// waitStopped waits up to timeout for c to stop running.
func (d *Daemon) waitStopped(c *Container, timeout time.Duration) bool {
	deadline := time.After(timeout)
	for {
		d.mu.Lock()
		running, ch := c.State.Status == "running", c.changed
		d.mu.Unlock()
		if !running {
			return true
		}
		select {
		case <-ch:
		case <-deadline:
			return false
		}
	}
}

func (d *Daemon) signal(c *Container, sig unix.Signal) error {
	out, err := d.runtimeCmd("kill", c.ID, strconv.Itoa(int(sig))).CombinedOutput()
	if err != nil {
		return fmt.Errorf("kill container %s with signal %d: %v: %s", c.ID, sig, err, strings.TrimSpace(string(out)))
	}
	d.thawForSignal(c)
	return nil
}

func (d *Daemon) containerStop(w http.ResponseWriter, r *http.Request) {
	c, err := d.lookup(r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	timeout, err := stopTimeout(r.URL.Query().Get("t"))
	if err != nil {
		writeError(w, err)
		return
	}
	sig := unix.SIGTERM
	if s := r.URL.Query().Get("signal"); s != "" {
		if sig, err = parseSignal(s); err != nil {
			writeError(w, err)
			return
		}
	} else if c.Config.StopSignal != "" {
		if s, err := parseSignal(c.Config.StopSignal); err == nil {
			sig = s
		}
	}
	if err := d.stop(c, sig, timeout); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// stopTimeout reads the t= of stop and restart: seconds, 10 by default,
// negative for no limit.
func stopTimeout(t string) (time.Duration, error) {
	if t == "" {
		return 10 * time.Second, nil
	}
	n, err := strconv.Atoi(t)
	if err != nil {
		return 0, badRequest("invalid stop timeout t=%q", t)
	}
	return time.Duration(n) * time.Second, nil
}

// stop sends sig, waits up to timeout (a negative one: for ever), then
// kills; 304 when the container was not running.
func (d *Daemon) stop(c *Container, sig unix.Signal, timeout time.Duration) error {
	wasRestarting := d.cancelRestart(c)
	d.mu.Lock()
	running := c.State.Status == "running"
	d.mu.Unlock()
	if !running && !wasRestarting {
		return notModified()
	}
	if !running {
		return nil // the restart it waited for is off: stopped
	}
	if err := d.signal(c, sig); err != nil && !d.waitStopped(c, time.Second) {
		return err
	}
	if timeout < 0 {
		timeout = 1<<63 - 1
	}
	if d.waitStopped(c, timeout) {
		return nil
	}
	if err := d.signal(c, unix.SIGKILL); err != nil && !d.waitStopped(c, time.Second) {
		return err
	}
	if !d.waitStopped(c, 10*time.Second) {
		return fmt.Errorf("container %s did not exit 10s after SIGKILL", c.ID)
	}
	return nil
}

// containerRestart is POST /containers/{id}/restart?t=: stop (when
// running), then start.
func (d *Daemon) containerRestart(w http.ResponseWriter, r *http.Request) {
	c, err := d.lookup(r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	timeout, err := stopTimeout(r.URL.Query().Get("t"))
	if err != nil {
		writeError(w, err)
		return
	}
	if err := d.stop(c, unix.SIGTERM, timeout); err != nil && statusOf(err) != http.StatusNotModified {
		writeError(w, err)
		return
	}
	// the exit is recorded (and AutoRemove done) before stop returns
	d.userStart(c)
	if err := d.start(c); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (d *Daemon) containerKill(w http.ResponseWriter, r *http.Request) {
	c, err := d.lookup(r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	sig := unix.SIGKILL
	if s := r.URL.Query().Get("signal"); s != "" {
		if sig, err = parseSignal(s); err != nil {
			writeError(w, err)
			return
		}
	}
	d.mu.Lock()
	running := c.State.Status == "running"
	d.mu.Unlock()
	if !running {
		writeError(w, conflict("Cannot kill container: %s: container %s is not running", r.PathValue("id"), c.ID))
		return
	}
	d.cancelRestart(c)
	if err := d.signal(c, sig); err != nil {
		writeError(w, err)
		return
	}
	if sig == unix.SIGKILL {
		d.waitStopped(c, 10*time.Second)
	}
	w.WriteHeader(http.StatusNoContent)
}

// parseSignal takes 9, KILL or SIGKILL.
func parseSignal(s string) (unix.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, badRequest("invalid signal: %s", s)
		}
		return unix.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, badRequest("invalid signal: %s", s)
}

func (d *Daemon) containerRemove(w http.ResponseWriter, r *http.Request) {
	c, err := d.lookup(r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	if err := d.remove(c, boolParam(r, "force")); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// remove deletes a container: refused while it runs unless forced (then
// it is killed first); its rootfs, files and name go.
func (d *Daemon) remove(c *Container, force bool) error {
	// A start may run meanwhile (it holds c.op): after it, look again.
	for {
		d.mu.Lock()
		running := c.State.Status == "running"
		d.mu.Unlock()
		if running {
			if !force {
				return conflict("cannot remove container %q: container is running: stop the container before removing or force remove", "/"+c.Name)
			}
			if err := d.stop(c, unix.SIGKILL, 10*time.Second); err != nil && statusOf(err) != http.StatusNotModified {
				return err
			}
		}
		c.op.Lock()
		d.mu.Lock()
		running = c.State.Status == "running"
		removed := c.removed
		d.mu.Unlock()
		if removed {
			c.op.Unlock()
			return nil
		}
		if !running {
			break
		}
		c.op.Unlock()
	}
	defer c.op.Unlock()
	if err := d.images.RemoveRootfs(c.ID); err != nil && statusOf(err) != http.StatusNotFound {
		return fmt.Errorf("remove container %s: %w", c.ID, err)
	}
	if err := os.RemoveAll(d.containerDir(c.ID)); err != nil {
		return fmt.Errorf("remove container %s: %w", c.ID, err)
	}
	d.mu.Lock()
	c.removed = true
	delete(d.containers, c.ID)
	for id, e := range d.execs {
		if e.ContainerID == c.ID {
			delete(d.execs, id)
		}
	}
	delete(d.names, c.Name)
	c.notify()
	d.emit(c, "destroy", nil)
	d.mu.Unlock()
	return nil
}
