package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"minidock/internal/atomicfile"
	"minidock/internal/trace"
)

// Container is what the runtime remembers about a container between
// commands, in <root>/<id>/state.json.
type Container struct {
	ID          string            `json:"id"`
	Pid         int               `json:"pid"`
	PidStart    uint64            `json:"pid_start"` // field 22 of /proc/<pid>/stat: tells a reused pid apart
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs"`
	Created     time.Time         `json:"created"`
	Annotations map[string]string `json:"annotations,omitempty"`
	CgroupPath  string            `json:"cgroup_path,omitempty"`
	Config      *specs.Spec       `json:"config"`
	// Step: created in step mode (CreateOptions.Step), so its init asks
	// Start before each call that is left: `runtime start` opens the
	// terminal for it (SetStep).
	Step bool `json:"step,omitempty"`

	dir     string
	trace   *trace.Tracer
	warn    func(string) // see SetWarn
	console *os.File     // the pty master kept for the caller (see Console)
	cg      cgroupHandle // the cgroup, once opened (see cgroup)
	prompt  *prompter    // step mode: what Start asks (Create's, or SetStep's)
}

// StateJSON is runc's `state` output, the OCI state plus "created".
type StateJSON struct {
	OCIVersion  string            `json:"ociVersion"`
	ID          string            `json:"id"`
	Pid         int               `json:"pid"`
	Status      string            `json:"status"`
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs"`
	Created     time.Time         `json:"created"`
	Owner       string            `json:"owner"`
	Annotations map[string]string `json:"annotations,omitempty"`
	// OOMKilled is minidock's addition: the kernel's OOM killer killed a
	// process of the container (memory.events oom_kill, or oom_control).
	OOMKilled bool `json:"oomKilled,omitempty"`
}

const (
	stateFile = "state.json"
	startSock = "start.sock" // exists while the container is "created"
	// startingFile stands for the start socket in a container made by
	// `runtime run` (StartNow): it exists from the first save of the state
	// until the init calls execve, so that no one sees it "running" (and
	// kills it expecting 128+signal from run) while the init still sets up.
	startingFile = "starting"
)

// checkID refuses ids that are empty or would make a path of their own.
func checkID(id string) error {
	if id == "" {
		return errors.New("container id cannot be empty")
	}
	if strings.Trim(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+.-") != "" || id == "." || id == ".." {
		return fmt.Errorf("invalid container id %q: only letters, digits and _ + . - are allowed", id)
	}
	return nil
}

// ErrNotExist is returned (wrapped) for an id the runtime does not know.
var ErrNotExist = errors.New("container does not exist")

// Load reads the state of container id from the runtime root directory.
func Load(root, id string) (*Container, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	dir := filepath.Join(root, id)
	data, err := os.ReadFile(filepath.Join(dir, stateFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("container %s: %w", id, ErrNotExist)
	}
	if err != nil {
		return nil, err
	}
	c := &Container{dir: dir}
	if err := json.Unmarshal(data, c); err != nil {
		return nil, fmt.Errorf("read state of %s: %w", id, err)
	}
	return c, nil
}

// List loads every container under root.
func List(root string) ([]*Container, error) {
	entries, err := os.ReadDir(root)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	var out []*Container
	for _, e := range entries {
		if c, err := Load(root, e.Name()); err == nil {
			out = append(out, c)
		}
	}
	return out, nil
}

// SetTrace makes the container's operations write trace events to t
// (nil: none); Create and Exec take theirs in their options.
func (c *Container) SetTrace(t *trace.Tracer) { c.trace = t.As("runtime") }

// SetWarn gives the container's operations somewhere to report what they
// go on past, as runc does with a warning (CreateOptions.Warn); nil:
// stderr.
func (c *Container) SetWarn(warn func(string)) { c.warn = warn }

// warnf reports a warning through c.warn.
func (c *Container) warnf(format string, args ...any) {
	warnTo(c.warn)(fmt.Sprintf(format, args...))
}

// warnTo is warn, or a writer of warnings to stderr when warn is nil.
func warnTo(warn func(string)) func(string) {
	if warn != nil {
		return warn
	}
	return func(msg string) { fmt.Fprintf(os.Stderr, "warning: %s\n", msg) }
}

// save writes state.json, atomically for concurrent readers (temp file,
// rename). It is not fsync'ed: the state describes processes, and no crash
// that could lose the write leaves them running.
func (c *Container) save() error {
	data, err := json.Marshal(c)
	if err != nil {
		return err
	}
	return atomicfile.Replace(filepath.Join(c.dir, stateFile), data, 0o600)
}

// Status is "created" (init waits for start, or sets up under run),
// "running", "paused" or "stopped", worked out from the init process and
// the start socket (or startingFile).
func (c *Container) Status() string {
	if !c.alive() {
		return "stopped"
	}
	for _, f := range []string{startSock, startingFile} {
		if _, err := os.Stat(filepath.Join(c.dir, f)); err == nil {
			return "created"
		}
	}
	if c.frozen() {
		return "paused"
	}
	return "running"
}

// alive reports whether the init process still runs (not a zombie, and the
// pid not reused by another process).
func (c *Container) alive() bool {
	if c.Pid <= 0 {
		return false
	}
	st, start, err := procStat(c.Pid)
	if err != nil || st == "Z" || st == "X" {
		return false
	}
	return c.PidStart == 0 || start == c.PidStart
}

// procStat reads a process's state letter and start time from
// /proc/<pid>/stat.
func procStat(pid int) (string, uint64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", 0, err
	}
	// the command name is in parentheses and may contain spaces
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return "", 0, fmt.Errorf("bad /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return "", 0, fmt.Errorf("bad /proc/%d/stat", pid)
	}
	start, _ := strconv.ParseUint(f[19], 10, 64)
	return f[0], start, nil
}

// State is what `runtime state` prints: the OCI state, worked out now.
func (c *Container) State() StateJSON {
	st := StateJSON{
		OCIVersion: specs.Version, ID: c.ID, Status: c.Status(), Bundle: c.Bundle,
		Rootfs: c.Rootfs, Created: c.Created, Owner: "", Annotations: c.Annotations,
	}
	if st.Status != "stopped" {
		st.Pid = c.Pid
	}
	if cg, err := c.cgroup(); err == nil {
		if n, err := cg.OOMKillCount(); err == nil && n > 0 {
			st.OOMKilled = true
		}
	}
	return st
}

// waitGone waits until pid has exited (pidfd_open + poll), up to timeout.
func waitGone(pid int, timeout time.Duration) error {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		if errors.Is(err, unix.ESRCH) {
			return nil
		}
		return fmt.Errorf("pidfd_open %d: %w", pid, err)
	}
	defer unix.Close(fd)
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	deadline := time.Now().Add(timeout)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return fmt.Errorf("process %d still running after %s", pid, timeout)
		}
		n, err := unix.Poll(fds, int(left.Milliseconds())+1)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
	}
}
