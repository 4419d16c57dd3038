package shim

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"minidock/internal/trace"
)

// Runtime is how the shim drives an OCI runtime. The bundle is the
// boundary: whatever implements this makes the container its config.json
// describes. Two implementations: package runtime called in this process
// (inProcess, minidock's own runtime; the container's init is still the
// re-executed binary) and any runc-compatible binary run through its
// command line (Command, `--runtime runc`).
type Runtime interface {
	// Create makes container id from bundle and leaves its init waiting
	// for Start, with io as its stdio. It returns the init's pid.
	Create(id, bundle string, io *IO) (pid int, err error)
	// Start lets the created init execve the container's process.
	Start(id string) error
	// State is the runtime's status of the container: "created",
	// "running", "paused" or "stopped".
	State(id string) (string, error)
	// Kill sends sig to the init, or with all to every process of the
	// container.
	Kill(id string, sig unix.Signal, all bool) error
	// Delete removes the container's runtime state and its cgroup; with
	// force it kills a container that still runs first.
	Delete(id string, force bool) error
	// Exec starts process p in the running container, with io as its
	// stdio, and returns its pid. The process is the shim's child (or is
	// re-parented to the shim, a child subreaper) once Exec returns.
	Exec(id string, p *specs.Process, io *IO) (pid int, err error)
	// Pause freezes the container's processes; Resume thaws them.
	Pause(id string) error
	Resume(id string) error
}

// IO is a process's stdio as the runtime is to set it up: files for its
// stdin, stdout and stderr (nil: /dev/null), or, for a process with a
// terminal, the console socket to which the runtime sends the pty
// master (runc's --console-socket protocol; see receiveConsole).
type IO struct {
	Stdin, Stdout, Stderr *os.File
	ConsoleSocket         string
	// Trace is where minidock's runtime in process (and its init) write
	// their trace events; nil: none. A command runtime writes none: its
	// stderr is the container's, and a trace must never land there.
	Trace *trace.Tracer
	// Step, for a create in step mode: where the prompts go and the
	// answers come from (runtime.CreateOptions.Step), through the
	// container's Start, up to execve. Only minidock's runtime in process
	// steps.
	Step io.ReadWriter
}

// Command is a runc-compatible runtime run through its command line:
// `ARGV... --root ROOT --log LOG --log-format json COMMAND ...`. Errors
// are the runtime's own message: its output, or else the last error in
// its JSON log.
type Command struct {
	Argv []string // the program and leading arguments (minidock runtime: [self, "runtime"])
	Root string   // --root: the runtime's state
	Dir  string   // the container's directory: the runtime's log, pid files
}

func (r *Command) logPath() string { return filepath.Join(r.Dir, RuntimeLogFile) }

func (r *Command) cmd(args ...string) *exec.Cmd {
	all := append([]string{}, r.Argv[1:]...)
	all = append(all, "--root", r.Root, "--log", r.logPath(), "--log-format", "json")
	return exec.Command(r.Argv[0], append(all, args...)...)
}

// run runs one runtime command with stdio and returns its error as the
// runtime worded it. Its output goes to a file, not to a pipe: with a
// pipe, os/exec copies through a goroutine and a 32 KiB buffer, and what
// that touches stays in the shim's resident memory for the container's
// whole life.
func (r *Command) run(stdio *IO, args ...string) (string, error) {
	out, err := os.CreateTemp(r.Dir, "runtime-output-")
	if err != nil {
		return "", fmt.Errorf("runtime %s: %w", args[0], err)
	}
	defer os.Remove(out.Name())
	defer out.Close()
	cmd := r.cmd(args...)
	cmd.Env = untraced(os.Environ())
	cmd.Stdout, cmd.Stderr = out, out
	if stdio != nil {
		cmd.Stdin = stdio.Stdin
		if stdio.Stdout != nil {
			cmd.Stdout = stdio.Stdout
		}
		if stdio.Stderr != nil {
			cmd.Stderr = stdio.Stderr
		}
	}
	err = cmd.Run()
	var text bytes.Buffer
	if _, serr := out.Seek(0, io.SeekStart); serr == nil {
		text.ReadFrom(out)
	}
	if err != nil {
		return text.String(), fmt.Errorf("%s", r.message(&text, err))
	}
	return text.String(), nil
}

// message is a failed command's error: its output, or the last error of
// its JSON log, or how it ended.
func (r *Command) message(out *bytes.Buffer, err error) string {
	if s := strings.TrimSpace(out.String()); s != "" {
		return s
	}
	data, _ := os.ReadFile(r.logPath())
	if msg := lastLogError(data); msg != "" {
		return msg
	}
	return err.Error()
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

// pidFile is where a command writes the pid of the process it made.
func (r *Command) pidFile(name string) string { return filepath.Join(r.Dir, name) }

func (r *Command) Create(id, bundle string, stdio *IO) (int, error) {
	if stdio.Step != nil {
		return 0, fmt.Errorf("step mode needs minidock's own runtime, not %s", r.Argv[0])
	}
	pf := r.pidFile(PidFile)
	os.Remove(pf)
	args := []string{"create", "--bundle", bundle, "--pid-file", pf}
	if stdio.ConsoleSocket != "" {
		args = append(args, "--console-socket", stdio.ConsoleSocket)
	}
	if _, err := r.run(stdio, append(args, id)...); err != nil {
		return 0, err
	}
	return readPid(pf)
}

func (r *Command) Start(id string) error {
	_, err := r.run(nil, "start", id)
	return err
}

func (r *Command) State(id string) (string, error) {
	out, err := r.run(nil, "state", id)
	if err != nil {
		return "", err
	}
	var st struct{ Status string }
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		return "", fmt.Errorf("runtime state %s: %q: %w", id, out, err)
	}
	return st.Status, nil
}

func (r *Command) Kill(id string, sig unix.Signal, all bool) error {
	args := []string{"kill"}
	if all {
		args = append(args, "--all")
	}
	_, err := r.run(nil, append(args, id, strconv.Itoa(int(sig)))...)
	return err
}

func (r *Command) Delete(id string, force bool) error {
	args := []string{"delete"}
	if force {
		args = append(args, "--force")
	}
	_, err := r.run(nil, append(args, id)...)
	return err
}

// Exec runs `exec --detach --process FILE --pid-file FILE`: the runtime
// exits once the process runs, and the process, orphaned, is re-parented
// to the shim (a child subreaper), which waits for it by the pid in the
// pid file. runc takes a console socket only with --detach, so every exec
// goes this one way, with a terminal or without.
func (r *Command) Exec(id string, p *specs.Process, stdio *IO) (int, error) {
	f, err := os.CreateTemp(r.Dir, "exec-process-")
	if err != nil {
		return 0, fmt.Errorf("exec in %s: %w", id, err)
	}
	defer os.Remove(f.Name())
	err = json.NewEncoder(f).Encode(p)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, fmt.Errorf("exec in %s: write process: %w", id, err)
	}
	pf := f.Name() + ".pid"
	defer os.Remove(pf)
	args := []string{"exec", "--detach", "--process", f.Name(), "--pid-file", pf}
	if stdio.ConsoleSocket != "" {
		args = append(args, "--console-socket", stdio.ConsoleSocket)
	}
	if _, err := r.run(stdio, append(args, id)...); err != nil {
		return 0, err
	}
	return readPid(pf)
}

func (r *Command) Pause(id string) error {
	_, err := r.run(nil, "pause", id)
	return err
}

func (r *Command) Resume(id string) error {
	_, err := r.run(nil, "resume", id)
	return err
}

// untraced is env without MINIDOCK_TRACE: a runtime that traces to its
// stderr, as minidock's does, would write the trace into the container's
// stderr, and so into its log.
func untraced(env []string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, "MINIDOCK_TRACE=") {
			out = append(out, kv)
		}
	}
	return out
}

func readPid(p string) (int, error) {
	data, err := os.ReadFile(p)
	if err != nil {
		return 0, fmt.Errorf("read pid file: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("pid file %s holds %q", p, data)
	}
	return pid, nil
}
