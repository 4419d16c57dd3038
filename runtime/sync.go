package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// The parent↔init handshake travels over a socketpair(AF_UNIX,
// SOCK_SEQPACKET): one JSON message per packet, a file descriptor alongside
// when needed (SCM_RIGHTS). docs/runtime.md draws the whole exchange.
//
//	parent → init  (config pipe)  initConfig, then EOF: go on
//	init → parent  msgPty + fd    the pty master (process.terminal)
//	init → parent  msgHooks       namespaces and mounts made: run createRuntime hooks
//	parent → init  msgHooksDone
//	init → parent  msgReady       everything but execve is done; init now waits for start
//	init → parent  msgError       a step failed: {step, message, errno}
//
// Rootless with newuidmap (rootless.go), before all of the above:
//
//	parent → init  msgIDMaps      the user namespace's maps are written: re-execute
const (
	msgIDMaps    = "idmaps"
	msgPty       = "pty"
	msgHooks     = "hooks"
	msgHooksDone = "hooks-done"
	msgReady     = "ready"
	msgError     = "error"
)

type syncMsg struct {
	Type    string `json:"type"`
	Step    string `json:"step,omitempty"`
	Message string `json:"message,omitempty"`
	Errno   int    `json:"errno,omitempty"`
}

// The init's file descriptors, fixed by the order of exec.Cmd.ExtraFiles.
const (
	fdSync   = 3 // child end of the sync socketpair
	fdConfig = 4 // read end of the config pipe
	fdStart  = 5 // listening start socket (create only)
	fdTrace  = 6 // where trace lines go (with --trace only)
)

// syncPair makes the socketpair; the child's end is returned as an *os.File
// to hand to exec.Cmd.
func syncPair() (parent int, child *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, nil, fmt.Errorf("socketpair: %w", err)
	}
	return fds[0], os.NewFile(uintptr(fds[1]), "sync"), nil
}

func sendMsg(fd int, m syncMsg, passFd int) error {
	data, _ := json.Marshal(m)
	var oob []byte
	if passFd >= 0 {
		oob = unix.UnixRights(passFd)
	}
	if err := unix.Sendmsg(fd, data, oob, nil, 0); err != nil {
		return fmt.Errorf("sync send %s: %w", m.Type, err)
	}
	return nil
}

// recvMsg reads one message and the fd that came with it (or -1). EOF
// (the other side exited) is an error.
func recvMsg(fd int) (syncMsg, int, error) {
	buf := make([]byte, 64<<10)
	oob := make([]byte, unix.CmsgSpace(4))
	var m syncMsg
	for {
		n, oobn, _, _, err := unix.Recvmsg(fd, buf, oob, unix.MSG_CMSG_CLOEXEC)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return m, -1, fmt.Errorf("sync receive: %w", err)
		}
		if n == 0 {
			return m, -1, errSyncClosed
		}
		passed := -1
		if oobn > 0 {
			scms, err := unix.ParseSocketControlMessage(oob[:oobn])
			if err == nil && len(scms) > 0 {
				if fds, err := unix.ParseUnixRights(&scms[0]); err == nil && len(fds) > 0 {
					passed = fds[0]
				}
			}
		}
		if err := json.Unmarshal(buf[:n], &m); err != nil {
			return m, -1, fmt.Errorf("sync receive: %w", err)
		}
		return m, passed, nil
	}
}

// errSyncClosed is the end of the sync socket: the other side exited, or
// the init called execve.
var errSyncClosed = errors.New("sync receive: the other side closed the connection")

// expect receives a message of type want; an error message from init
// becomes an *InitError.
func expect(fd int, want string) (int, error) {
	m, passed, err := recvMsg(fd)
	if err != nil {
		return -1, err
	}
	if m.Type == msgError {
		return -1, m.initError()
	}
	if m.Type != want {
		return -1, fmt.Errorf("sync: expected %q, got %q", want, m.Type)
	}
	return passed, nil
}

// InitError is a step of the init sequence that failed, as the parent
// learns of it over the sync socket, e.g.
//
//	container init: prepareRootfs: mount src=proc, dst=/r/proc, type=proc: operation not permitted
//
// errors.Is(err, unix.EPERM) holds when the errno of the failed kernel
// call was EPERM.
type InitError struct {
	Step  string     // the step's name, as in the trace and docs/runtime.md
	Msg   string     // what failed: the kernel call and its arguments, or why
	Errno unix.Errno // the errno of the failed kernel call, 0 if none

	err error // in the init itself: the step's error (an *execError exits 127)
}

func (e *InitError) Error() string { return "container init: " + e.Step + ": " + e.Msg }

func (e *InitError) Unwrap() error {
	switch {
	case e.err != nil:
		return e.err
	case e.Errno != 0:
		return e.Errno
	}
	return nil
}

func (e *InitError) message() syncMsg {
	return syncMsg{Type: msgError, Step: e.Step, Message: e.Msg, Errno: int(e.Errno)}
}

func (m syncMsg) initError() *InitError {
	return &InitError{Step: m.Step, Msg: m.Message, Errno: unix.Errno(m.Errno)}
}

// handshake holds both ends of the parent↔init channels: the sync
// socketpair and the config pipe. The child's ends go to initCommand and
// are closed in the parent once the init has started.
type handshake struct {
	parent  int      // the parent's end of the sync socketpair
	child   *os.File // the init's end: its fd 3
	configR *os.File // the config pipe's read end: the init's fd 4
	configW *os.File
}

func newHandshake() (*handshake, error) {
	parent, child, err := syncPair()
	if err != nil {
		return nil, err
	}
	r, w, err := os.Pipe()
	if err != nil {
		unix.Close(parent)
		child.Close()
		return nil, err
	}
	return &handshake{parent: parent, child: child, configR: r, configW: w}, nil
}

// sendConfig writes cfg to the config pipe and closes it (EOF ends the
// init's read). It closes the child's ends first: the init has them.
func (h *handshake) sendConfig(cfg *initConfig) error {
	h.closeChild()
	err := json.NewEncoder(h.configW).Encode(cfg)
	h.configW.Close()
	h.configW = nil
	if err != nil {
		return fmt.Errorf("send config to init: %w", err)
	}
	return nil
}

func (h *handshake) closeChild() {
	if h.child != nil {
		h.child.Close()
		h.configR.Close()
		h.child, h.configR = nil, nil
	}
}

// close releases whatever is still open.
func (h *handshake) close() {
	h.closeChild()
	if h.configW != nil {
		h.configW.Close()
	}
	unix.Close(h.parent)
}
