package daemon

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
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

// Each calls send for every selected line: the last Tail ones (or those
// since Since), then, with Follow, new ones as the shim writes them,
// until the container has stopped and the log is read to its end, or ctx
// ends. flush is called whenever the lines so far are sent. The log is
// never held in memory: where the wanted lines start is found by reading
// it backwards (tailStart), and from there it is read line by line.
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
		if o.Tail >= 0 || !o.Since.IsZero() {
			n := o.Tail
			if n < 0 {
				n = math.MaxInt
			}
			off, err := tailStart(l.f, n, l.o.keep)
			if err != nil {
				return fmt.Errorf("logs of %s: %w", l.c.ID, err)
			}
			if _, err := l.f.Seek(off, io.SeekStart); err != nil {
				return fmt.Errorf("logs of %s: %w", l.c.ID, err)
			}
		}
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
	if err := readAll(); err != nil {
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

// keep says whether a line of the log is one o selects, and whether it
// is older than Since (then every line before it is too: the shim writes
// them in time order). Without a stream or time to check, a line is not
// even decoded.
func (o *LogsOptions) keep(line []byte) (keep, older bool) {
	if o.Stdout && o.Stderr && o.Since.IsZero() {
		return len(line) > 0 && line[0] == '{', false
	}
	var e struct {
		Stream string
		Time   time.Time
	}
	if json.Unmarshal(line, &e) != nil {
		return false, false
	}
	if e.Time.Before(o.Since) {
		return false, true
	}
	return (e.Stream == "stdout" && o.Stdout) || (e.Stream == "stderr" && o.Stderr), false
}

// Reading a log backwards: a block at a time from the end, and a line
// that spans blocks read again whole (up to maxLogLine; the shim cuts
// lines at 16 KiB, some 100 KiB once escaped).
const (
	tailBlock  = 64 << 10
	maxLogLine = 1 << 20
)

// tailStart is the offset in the log f where its last n lines that keep
// selects begin, or where the lines after the last older one begin,
// whichever comes later. It reads f backwards, so that the cost is the
// lines wanted, not the log's size, and memory stays a block and a line
// whatever n is. An unfinished last line is not a line yet (the forward
// read meets it).
func tailStart(f *os.File, n int, keep func(line []byte) (keep, older bool)) (int64, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	if n == 0 {
		return st.Size(), nil
	}
	buf := make([]byte, tailBlock)
	var long []byte
	count := 0
	lineEnd := int64(-1) // end (past its '\n') of the line above the one being found
	var blockStart, blockEnd int64
	// consider looks at the line [start, end); it says where the wanted
	// lines begin once that is known.
	consider := func(start, end int64) (int64, bool, error) {
		var line []byte
		switch {
		case start >= blockStart && end <= blockEnd:
			line = buf[start-blockStart : end-blockStart]
		case end-start <= maxLogLine:
			if cap(long) < int(end-start) {
				long = make([]byte, end-start)
			}
			line = long[:end-start]
			if _, err := f.ReadAt(line, start); err != nil {
				return 0, false, fmt.Errorf("read log at %d: %w", start, err)
			}
		default:
			return 0, false, nil // not a line the shim writes
		}
		k, older := keep(line)
		if older {
			return end, true, nil
		}
		if k {
			if count++; count == n {
				return start, true, nil
			}
		}
		return 0, false, nil
	}
	for blockEnd = st.Size(); blockEnd > 0; blockEnd = blockStart {
		blockStart = max(0, blockEnd-tailBlock)
		b := buf[:blockEnd-blockStart]
		if _, err := f.ReadAt(b, blockStart); err != nil {
			return 0, fmt.Errorf("read log at %d: %w", blockStart, err)
		}
		for i := len(b) - 1; i >= 0; i-- {
			if b[i] != '\n' {
				continue
			}
			start := blockStart + int64(i) + 1
			if lineEnd >= 0 {
				if off, found, err := consider(start, lineEnd); err != nil || found {
					return off, err
				}
			}
			lineEnd = start
		}
	}
	if lineEnd > 0 {
		if off, found, err := consider(0, lineEnd); err != nil || found {
			return off, err
		}
	}
	return 0, nil
}
