package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"
	"golang.org/x/term"

	"minidock/api"
	"minidock/client"
)

// attachOptions say how run and start -a attach to a container.
type attachOptions struct {
	interactive, tty, rm bool
	// steps (run --step) is closed once the step stream has ended and its
	// terminal is closed: only then do this process's stdin and terminal
	// become the container's.
	steps <-chan struct{}
}

// runAttached attaches to a created container, waits for it and starts it
// (run, start -a), in the order docker uses, so that no output is missed
// and the exit is seen. It returns the container's exit code as a
// statusError.
func (cli *CLI) runAttached(ctx context.Context, id string, o attachOptions) error {
	c := cli.client
	conn, err := c.ContainerAttach(ctx, id, client.AttachOptions{Stdin: o.interactive, Stdout: true, Stderr: true})
	if err != nil {
		return err
	}
	defer conn.Close()
	cond := "next-exit"
	if o.rm {
		cond = "removed"
	}
	waiter, err := c.ContainerWait(ctx, id, cond)
	if err != nil {
		return err
	}
	defer waiter.Close()
	stopForwarding := forwardSignals(ctx, c, id)
	defer stopForwarding()
	if err := c.ContainerStart(ctx, id); err != nil {
		fmt.Fprintln(cli.Err, err)
		waiter.Result() // with --rm the daemon removes it: wait for that
		return statusError(startFailureCode(err))
	}
	if o.steps != nil {
		<-o.steps
	}
	outDone, restore := cli.stream(conn, o.interactive, o.tty, func(h, w int) error { return c.ContainerResize(ctx, id, h, w) })
	defer restore()
	status, err := waiter.Result()
	if err != nil {
		return err
	}
	select {
	case <-outDone:
	case <-time.After(2 * time.Second):
	}
	if status.StatusCode != 0 {
		return statusError(status.StatusCode)
	}
	return nil
}

// forwardSignals sends the signals this process gets to the container,
// as docker run's --sig-proxy does; the returned func stops it.
func forwardSignals(ctx context.Context, c *client.Client, id string) func() {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2)
	go func() {
		for s := range sigs {
			c.ContainerKill(ctx, id, strconv.Itoa(int(s.(unix.Signal))))
		}
	}()
	return func() { signal.Stop(sigs); close(sigs) }
}

// stream connects a hijacked connection to this process's stdio: the
// output to stdout and stderr (framed unless tty), stdin to it when
// interactive (then a half-close), and with a tty our terminal in raw
// mode, its size sent through resize now and on every SIGWINCH. done is
// closed when the output ends; restore puts the terminal back.
func (cli *CLI) stream(conn *client.HijackedConn, interactive, tty bool, resize func(h, w int) error) (done <-chan struct{}, restore func()) {
	var undo []func()
	if tty {
		// keys, Ctrl-C included, go to the container's terminal
		if fd := int(os.Stdin.Fd()); interactive && term.IsTerminal(fd) {
			if old, err := term.MakeRaw(fd); err == nil {
				undo = append(undo, func() { term.Restore(fd, old) })
			}
		}
		sendSize := func() {
			if w, h, err := term.GetSize(int(os.Stdout.Fd())); err == nil {
				resize(h, w)
			}
		}
		sendSize()
		winch := make(chan os.Signal, 1)
		signal.Notify(winch, unix.SIGWINCH)
		go func() {
			for range winch {
				sendSize()
			}
		}()
		undo = append(undo, func() { signal.Stop(winch) })
	}
	if interactive {
		go func() {
			io.Copy(conn, cli.In)
			conn.CloseWrite()
		}()
	}
	out := make(chan struct{})
	go func() {
		if tty {
			io.Copy(cli.Out, conn)
		} else {
			api.Demux(conn, cli.Out, cli.Err)
		}
		close(out)
	}()
	var once sync.Once
	return out, func() {
		once.Do(func() {
			for _, u := range undo {
				u()
			}
		})
	}
}
