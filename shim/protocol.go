package shim

import (
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"minidock/cgroup"
)

// The daemon↔shim protocol, all of it (docs/daemon.md has it as a table).
//
// The daemon starts `minidock shim` with a pipe as fd 3. The shim creates
// the container, listens on its socket and writes one Hello (JSON, one
// line) on the pipe, then closes it. From then on every exchange is one
// connection to the socket: the client writes one Request line, the shim
// answers one Response line. After the answer to an Attach, or to an Exec
// that asks for streams, the connection carries the process's output
// (Docker's multiplexed framing, api.WriteFrame, without a terminal; raw
// bytes with one) and, with Stdin, the client's bytes to the process's
// stdin; the client's half-close closes that stdin when StdinOnce (or for
// an exec). The shim closes the connection once the process has exited
// and its output is drained.
//
// Files the shim writes in the container's directory (--dir) are part of
// the protocol too: exit.json (Exit, atomically, once the container has
// gone), the json-file log (LogEntry lines) and shim.log (its stderr).

// Hello is the shim's first and only message on fd 3.
type Hello struct {
	Pid   int    `json:",omitempty"` // the created init's pid
	Error string `json:",omitempty"` // why the container could not be created
}

// Op is what a Request asks for.
type Op string

const (
	OpState  Op = "state"  // the container's state and its execs' → Response.State
	OpStart  Op = "start"  // let the created init run the container's process
	OpAttach Op = "attach" // the streams of the init, or of exec ExecID
	OpResize Op = "resize" // set the terminal size of the init, or of exec ExecID
	OpKill   Op = "kill"   // send Signal to the init (All: every process), or to exec ExecID
	OpPause  Op = "pause"  // freeze the container's cgroup
	OpResume Op = "resume" // thaw it
	OpPids   Op = "pids"   // the container's processes → Response.Pids
	OpStats  Op = "stats"  // its cgroup's counters → Response.Stats
	OpExec   Op = "exec"   // start Exec in the container → Response.Pid; streams follow if asked
	OpWait   Op = "wait"   // answered (Response.Exit) once the init, or exec ExecID, has exited
	OpDelete Op = "delete" // kill and delete a container that was never started; the shim exits
)

// Request is the one line a client writes after connecting.
type Request struct {
	Op     Op
	ExecID string `json:",omitempty"` // an exec instead of the init (attach, resize, kill, wait)

	// attach, exec: the streams the client wants
	Stdin     bool `json:",omitempty"`
	Stdout    bool `json:",omitempty"`
	Stderr    bool `json:",omitempty"`
	StdinOnce bool `json:",omitempty"` // the client's half-close closes the init's stdin

	Height uint16 `json:",omitempty"` // resize: rows
	Width  uint16 `json:",omitempty"` // resize: columns

	Signal int  `json:",omitempty"` // kill
	All    bool `json:",omitempty"` // kill: every process of the container

	Exec *ExecSpec `json:",omitempty"` // exec
}

// ExecSpec is a process to run in the running container (docker exec).
type ExecSpec struct {
	ID        string
	Process   *specs.Process // the OCI process: args, env, cwd, user, terminal
	OpenStdin bool           // give it a stdin pipe (else /dev/null)
}

// Response is the one line the shim answers.
type Response struct {
	Error string    `json:",omitempty"`
	Code  ErrorCode `json:",omitempty"` // what kind of error

	State *State        `json:",omitempty"` // state
	Pid   int           `json:",omitempty"` // exec
	Pids  []int         `json:",omitempty"` // pids
	Stats *cgroup.Stats `json:",omitempty"` // stats
	Exit  *Exit         `json:",omitempty"` // wait
}

// ErrorCode tells the daemon what kind of error a Response carries.
type ErrorCode string

const (
	ErrNotRunning ErrorCode = "not-running" // the process has exited (or never started)
	ErrConflict   ErrorCode = "conflict"    // the state forbids it: already started, not paused, no terminal
	ErrNotFound   ErrorCode = "not-found"   // no such exec
	ErrInvalid    ErrorCode = "invalid"     // a malformed request
	ErrStart      ErrorCode = "start"       // the runtime could not start the process: Error is its message
)

// State is the container as its shim sees it.
type State struct {
	// Status is "created" (the init waits for start), "running",
	// "paused", or "stopped" (the init has exited: Exit says how).
	Status string
	Pid    int
	Exit   *Exit       `json:",omitempty"`
	Execs  []ExecState `json:",omitempty"` // execs whose exit nobody has collected yet
}

// ExecState is one exec as its shim sees it.
type ExecState struct {
	ID      string
	Process *specs.Process
	Pid     int
	Exit    *Exit `json:",omitempty"` // set once it has exited
}

// Exit is how a process ended; for the init it is also exit.json.
type Exit struct {
	ExitCode   int // the exit status, or 128+signal
	FinishedAt time.Time
	OOMKilled  bool `json:",omitempty"` // the OOM killer hit the container's cgroup
}

// LogEntry is one line of Docker's json-file log format.
type LogEntry struct {
	Log    string    `json:"log"`
	Stream string    `json:"stream"`
	Time   time.Time `json:"time"`
}
