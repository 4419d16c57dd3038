package runtime

import (
	"io"
	"os"
	"os/signal"
	"time"

	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"minidock/internal/signals"
)

// foreground is how the command line's `run` and `exec` wait for the
// process they started (pid, a child of this process) and return its exit
// code, 128+signal when killed. Meanwhile the signals the runtime gets are
// forwarded to it (as runc does) and, with a pty master, the caller's
// terminal is connected to it. Only the command line does this: a library
// caller waits for its children itself.
func foreground(pid int, master *os.File) int {
	sigs := make(chan os.Signal, 64)
	signal.Notify(sigs)
	forwarded := make(chan struct{})
	go func() {
		for s := range sigs {
			sig := s.(unix.Signal)
			if sig != unix.SIGCHLD && sig != unix.SIGWINCH && sig != unix.SIGURG && sig != unix.SIGPIPE {
				unix.Kill(pid, sig)
			}
		}
		close(forwarded)
	}()
	var outDone chan struct{}
	if master != nil {
		restore := attachTerminal(master)
		defer restore()
		outDone = make(chan struct{})
		go func() { io.Copy(os.Stdout, master); close(outDone) }()
	}
	code, err := signals.Wait(pid)
	if err != nil {
		code = 1
	}
	signal.Stop(sigs)
	close(sigs)
	<-forwarded
	if outDone != nil {
		// the copy ends with EIO once the last holder of the pty's slave
		// side has exited
		select {
		case <-outDone:
		case <-time.After(time.Second):
		}
	}
	return code
}

// attachTerminal connects the caller's terminal to the container's pty
// master: raw mode on our stdin when it is a terminal, bytes copied both
// ways, window size copied on SIGWINCH. It returns a function that undoes
// raw mode.
func attachTerminal(master *os.File) func() {
	restore := func() {}
	in := int(os.Stdin.Fd())
	if term.IsTerminal(in) {
		if st, err := term.MakeRaw(in); err == nil {
			restore = func() { term.Restore(in, st) }
		}
		copyWinsize(in, master)
		winch := make(chan os.Signal, 1)
		signal.Notify(winch, unix.SIGWINCH)
		go func() {
			for range winch {
				copyWinsize(in, master)
			}
		}()
	}
	go io.Copy(master, os.Stdin)
	return restore
}

func copyWinsize(from int, to *os.File) {
	if ws, err := unix.IoctlGetWinsize(from, unix.TIOCGWINSZ); err == nil {
		unix.IoctlSetWinsize(int(to.Fd()), unix.TIOCSWINSZ, ws)
	}
}
