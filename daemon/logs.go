package daemon

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"minidock/internal/errdefs"
	"minidock/shim"
)

// LogsOptions are GET /containers/{id}/logs's: which streams, the last
// Tail lines (negative: all), lines since Since, and Follow.
type LogsOptions struct {
	Stdout, Stderr bool
	Tail           int
	Since          time.Time
	Follow         bool
}

// Logs is a container's json-file log (the shim writes it), opened.
type Logs struct {
	Tty bool // the container has a terminal: its output is raw, not framed
	c   *Container
	d   *Daemon
	o   LogsOptions
	f   *os.File // nil until the log exists
}

// ContainerLogs opens a container's log for Logs.Each.
func (d *Daemon) ContainerLogs(ctx context.Context, name string, o LogsOptions) (*Logs, error) {
	c, err := d.lookup(name)
	if err != nil {
		return nil, err
	}
	if !o.Stdout && !o.Stderr {
		return nil, errdefs.Invalidf("you must choose at least one stream")
	}
	f, err := os.Open(c.paths.log)
	if err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("open log of %s: %w", c.ID, err)
	}
	d.mu.Lock()
	tty := c.Config.Tty
	d.mu.Unlock()
	return &Logs{Tty: tty, c: c, d: d, o: o, f: f}, nil
}

// Each calls send for every selected line: the last Tail ones, then, with
// Follow, new ones as the shim writes them, until the container has
// stopped and the log is read to its end, or ctx ends. flush is called
// whenever the lines so far are sent.
func (l *Logs) Each(ctx context.Context, send func(*shim.LogEntry) error, flush func()) error {
	if l.f != nil {
		defer func() { l.f.Close() }()
	}
	o := l.o
	selected := func(e *shim.LogEntry) bool {
		return !((e.Stream == "stdout" && !o.Stdout) || (e.Stream == "stderr" && !o.Stderr) || e.Time.Before(o.Since))
	}
	var br *bufio.Reader
	if l.f != nil {
		br = bufio.NewReader(l.f)
	}
	var pending []byte
	// readAll sends every complete line now in the file.
	readAll := func() error {
		if br == nil {
			return nil
		}
		for {
			chunk, err := br.ReadBytes('\n')
			pending = append(pending, chunk...)
			if err != nil {
				return nil // EOF: the rest of a line may come later
			}
			var e shim.LogEntry
			if json.Unmarshal(pending, &e) == nil && selected(&e) {
				if err := send(&e); err != nil {
					return err
				}
			}
			pending = pending[:0]
		}
	}
	if o.Tail >= 0 && br != nil {
		var kept []shim.LogEntry
		for {
			line, err := br.ReadBytes('\n')
			if err != nil {
				pending = append(pending, line...)
				break
			}
			var e shim.LogEntry
			if json.Unmarshal(line, &e) != nil || !selected(&e) {
				continue
			}
			kept = append(kept, e)
			if len(kept) > o.Tail {
				kept = kept[1:]
			}
		}
		for i := range kept {
			if err := send(&kept[i]); err != nil {
				return err
			}
		}
	} else if err := readAll(); err != nil {
		return err
	}
	flush()
	if !o.Follow {
		return nil
	}
	d, c := l.d, l.c
	for {
		d.mu.Lock()
		done := c.State.Status != "running" || c.removed
		ch := c.changed
		d.mu.Unlock()
		if br == nil {
			if f, err := os.Open(c.paths.log); err == nil {
				l.f = f
				br = bufio.NewReader(f)
			}
		}
		if err := readAll(); err != nil {
			return err
		}
		flush()
		if done {
			return nil
		}
		select {
		case <-ch:
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			return nil
		}
	}
}
