// Package reaper is the PID 1 of a container run with --init: Docker's
// docker-init (tini), played by minidock's own binary, which the daemon
// binds into the container at /sbin/docker-init (daemon/reaper.go) and
// cmd/minidock runs in this role when it is called by that name.
//
// Why a container wants one: the kernel reparents every orphaned process
// of a pid namespace to its PID 1, and only PID 1 can reap it; a shell or
// a server that never calls wait(2) for children it did not start leaves
// zombies behind. And PID 1 gets no signal it has no handler for, so a
// program that counts on SIGTERM's default action never stops. The reaper
// handles every signal (passing it on) and reaps every child.
package reaper

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

// Main runs `docker-init -- COMMAND [ARG...]`: it starts COMMAND (looked
// up in PATH) as its child, in a process group of its own (the terminal's
// foreground group when stdin is one), passes every signal it receives on
// to it, reaps every child that exits, and returns COMMAND's exit status,
// or 128+N when signal N killed it, as soon as COMMAND has exited.
func Main(args []string) int {
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "docker-init: usage: docker-init -- COMMAND [ARG...]")
		return 2
	}
	// With --pid=host the reaper is not PID 1: orphans of its children
	// come to it all the same.
	unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)

	sigs := make(chan os.Signal, 64)
	signal.Notify(sigs) // every signal, SIGCHLD included, before the child exists
	child, err := start(args)
	if err != nil {
		fmt.Fprintf(os.Stderr, "docker-init: %v\n", err)
		if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
			return 127
		}
		return 126
	}
	for s := range sigs {
		switch s {
		case unix.SIGCHLD:
			if status, done := reap(child); done {
				return status
			}
		case unix.SIGURG: // the Go runtime's own preemption signal
		default:
			unix.Kill(child, s.(syscall.Signal))
		}
	}
	return 0
}

// start starts the command with the reaper's stdio and environment.
func start(args []string) (int, error) {
	path, err := exec.LookPath(args[0])
	if err != nil {
		return 0, err
	}
	attr := &syscall.SysProcAttr{Setpgid: true}
	if _, err := unix.IoctlGetTermios(0, unix.TCGETS); err == nil {
		attr.Foreground, attr.Ctty = true, 0
	}
	p, err := os.StartProcess(path, args, &os.ProcAttr{Files: []*os.File{os.Stdin, os.Stdout, os.Stderr}, Sys: attr})
	if err != nil {
		return 0, err
	}
	return p.Pid, nil
}

// reap collects every child that has exited; done tells whether the
// command was one of them, with its status.
func reap(child int) (status int, done bool) {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if err == unix.EINTR {
			continue
		}
		if pid <= 0 || err != nil {
			return status, done
		}
		if pid != child {
			continue
		}
		done = true
		switch {
		case ws.Exited():
			status = ws.ExitStatus()
		case ws.Signaled():
			status = 128 + int(ws.Signal())
		}
	}
}
