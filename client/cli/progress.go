package cli

import (
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"

	"minidock/api"
)

// progressPrinter prints the progress messages of a pull or a push as
// docker does. On a terminal each layer (a message's ID) keeps one line,
// redrawn in place as its status and byte count change, with a bar:
//
//	3f4d90098f5b: Downloading [==========>                      ]  3.2MB/10.5MB
//
// Elsewhere (a pipe, a file, a test) every status change is a plain line
// of its own, and byte counts, which only a terminal can redraw, are left
// out.
type progressPrinter struct {
	out   io.Writer
	tty   bool
	width int            // the terminal's columns
	lines map[string]int // ID -> its line in the block of layer lines
	n     int            // lines in the block; the cursor is just below it
}

func newProgressPrinter(out io.Writer) *progressPrinter {
	p := &progressPrinter{out: out, lines: map[string]int{}, width: 80}
	if f, ok := out.(*os.File); ok && isTerminal(f) {
		p.tty = true
		if w, _, err := term.GetSize(int(f.Fd())); err == nil && w > 0 {
			p.width = w
		}
	}
	return p
}

// print shows one message.
func (p *progressPrinter) print(m api.JSONMessage) {
	switch {
	case m.Stream != "":
		fmt.Fprint(p.out, m.Stream)
		return
	case m.Status == "":
		return // an aux message: for programs, not people
	}
	text := m.Status
	if m.ID != "" {
		text = m.ID + ": " + text
	}
	counting := m.ProgressDetail != nil && m.ProgressDetail.Current > 0
	if !p.tty {
		if !counting {
			fmt.Fprintln(p.out, text)
		}
		return
	}
	if counting {
		text += " " + p.bar(m.ProgressDetail.Current, m.ProgressDetail.Total, len(text))
	}
	if len(text) > p.width-1 {
		text = text[:p.width-1]
	}
	if m.ID == "" {
		// a line of its own ends the block: later messages of the same
		// IDs (a second tag) start a new one
		p.lines, p.n = map[string]int{}, 0
		fmt.Fprintln(p.out, text)
		return
	}
	line, ok := p.lines[m.ID]
	if !ok {
		line = p.n
		p.lines[m.ID] = line
		p.n++
		fmt.Fprintln(p.out)
	}
	up := p.n - line
	// up to the layer's line, clear it, write, and back down
	fmt.Fprintf(p.out, "\x1b[%dA\r\x1b[2K%s\x1b[%dB\r", up, text, up)
}

// bar is "[=====>      ]  3.2MB/10.5MB" fitting the terminal after a
// prefix of used columns; only the numbers when it is narrow.
func (p *progressPrinter) bar(current, total int64, used int) string {
	numbers := humanSize(current)
	if total <= 0 {
		return numbers
	}
	numbers += "/" + humanSize(total)
	width := min(50, p.width-used-len(numbers)-6)
	if width < 10 {
		return numbers
	}
	done := int(int64(width) * min(current, total) / total)
	arrow := ""
	if done < width {
		arrow = ">"
	}
	return "[" + strings.Repeat("=", done) + arrow + strings.Repeat(" ", width-done-len(arrow)) + "] " + numbers
}
