package build

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
)

// MaxDockerfileSize is the largest Dockerfile the builder reads (10 MiB).
const MaxDockerfileSize = 10 << 20

// Dockerfile is a parsed Dockerfile: its parser directives and its
// instructions in order.
type Dockerfile struct {
	// Escape is the escape character: '\\', or '`' with "# escape=`".
	Escape rune
	// Syntax is the "# syntax=" directive: recorded, not acted on (it
	// names a BuildKit frontend image).
	Syntax       string
	Instructions []*Instruction
}

// Instruction is one instruction as written, before any substitution.
type Instruction struct {
	Line    int    // line of its keyword, from 1
	EndLine int    // last line, continuations and heredocs included
	Cmd     string // keyword in upper case: "RUN"
	// Flags are the leading --name[=value] words, as written.
	Flags []string
	// Args is the rest: continuation lines joined, flags removed.
	Args string
	// Original is the instruction as written, continuations joined; it
	// is what "Step N/M : ..." prints.
	Original string
	Heredocs []Heredoc
}

// Heredoc is one here-document of a RUN, COPY or ADD (`<<EOF`).
type Heredoc struct {
	Name    string // the delimiter word, quotes removed
	Content string // the lines up to the delimiter, each with its "\n"
	Expand  bool   // the delimiter was not quoted: variables are expanded
	Chomp   bool   // `<<-`: leading tabs are removed from each line
}

// LineError names the line of the Dockerfile whose instruction could not
// be parsed or failed.
type LineError struct {
	File string // e.g. "Dockerfile"
	Line int
	Err  error
}

func (e *LineError) Error() string {
	f := e.File
	if f == "" {
		f = "Dockerfile"
	}
	return fmt.Sprintf("%s line %d: %v", f, e.Line, e.Err)
}

func (e *LineError) Unwrap() error { return e.Err }

// lineError makes a *LineError for line.
func lineError(line int, format string, a ...any) error {
	return &LineError{Line: line, Err: fmt.Errorf(format, a...)}
}

// isInstruction tells the keywords the builder knows. (A switch, not a
// map: no work at package init, which every role of the binary pays.)
func isInstruction(kw string) bool {
	switch kw {
	case "FROM", "RUN", "CMD", "ENTRYPOINT", "SHELL", "ENV", "ARG", "LABEL", "EXPOSE", "WORKDIR",
		"USER", "VOLUME", "COPY", "ADD", "STOPSIGNAL", "HEALTHCHECK", "ONBUILD", "MAINTAINER":
		return true
	}
	return false
}

// Parse reads a Dockerfile: parser directives at the top, then
// instructions, one a line; a line ending in the escape character goes on
// on the next; lines starting with # are comments (also inside a
// continued instruction); blank lines are skipped; RUN, COPY and ADD may
// take here-documents. An unknown keyword is an error naming its line.
func Parse(r io.Reader) (*Dockerfile, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxDockerfileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read Dockerfile: %w", err)
	}
	if len(data) > MaxDockerfileSize {
		return nil, fmt.Errorf("the Dockerfile is larger than %d bytes (10 MiB)", MaxDockerfileSize)
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // a UTF-8 byte-order mark
	p := &parser{df: &Dockerfile{Escape: '\\'}, lines: splitLines(string(data))}
	if err := p.directives(); err != nil {
		return nil, err
	}
	for p.next < len(p.lines) {
		ins, err := p.instruction()
		if err != nil {
			return nil, err
		}
		if ins != nil {
			p.df.Instructions = append(p.df.Instructions, ins)
		}
	}
	if len(p.df.Instructions) == 0 {
		return nil, errors.New("the Dockerfile has no instructions")
	}
	return p.df, nil
}

// splitLines splits on "\n", dropping a "\r" before it.
func splitLines(s string) []string {
	lines := strings.Split(s, "\n")
	if len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	for i, l := range lines {
		lines[i] = strings.TrimSuffix(l, "\r")
	}
	return lines
}

type parser struct {
	df    *Dockerfile
	lines []string
	next  int // index of the next line to read
}

// directives reads the parser directives: "# key=value" lines at the very
// top. The first line that is not one (a comment, a blank line, an
// instruction) ends them. Known keys: escape, syntax, check (ignored).
func (p *parser) directives() error {
	seen := map[string]bool{}
	for ; p.next < len(p.lines); p.next++ {
		key, value, ok := directive(p.lines[p.next])
		if !ok {
			return nil
		}
		line := p.next + 1
		switch key {
		case "escape", "syntax", "check":
		default:
			return nil // an unknown directive is a comment, and ends them
		}
		if seen[key] {
			return lineError(line, "the %s directive is given twice", key)
		}
		seen[key] = true
		switch key {
		case "escape":
			if value != "\\" && value != "`" {
				return lineError(line, "invalid escape character %q: it must be \\ or `", value)
			}
			p.df.Escape = rune(value[0])
		case "syntax":
			p.df.Syntax = value
		}
	}
	return nil
}

// directive recognises "# key=value" (spaces allowed around each part).
func directive(line string) (key, value string, ok bool) {
	s := strings.TrimSpace(line)
	if !strings.HasPrefix(s, "#") {
		return "", "", false
	}
	k, v, ok := strings.Cut(strings.TrimSpace(s[1:]), "=")
	k = strings.TrimSpace(k)
	if !ok || k == "" {
		return "", "", false
	}
	for i, c := range k {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return "", "", false
		}
	}
	return strings.ToLower(k), strings.TrimSpace(v), true
}

func isComment(line string) bool {
	return strings.HasPrefix(strings.TrimLeft(line, " \t"), "#")
}

// continued reports whether line ends with the escape character
// (trailing spaces and tabs allowed), and returns it without.
func (p *parser) continued(line string) (string, bool) {
	t := strings.TrimRight(line, " \t")
	if strings.HasSuffix(t, string(p.df.Escape)) {
		return t[:len(t)-1], true
	}
	return line, false
}

// instruction reads the next instruction, or returns nil after skipping a
// blank or comment line.
func (p *parser) instruction() (*Instruction, error) {
	first := p.lines[p.next]
	start := p.next + 1
	p.next++
	if strings.TrimSpace(first) == "" || isComment(first) {
		return nil, nil
	}
	text, more := p.continued(strings.TrimLeft(first, " \t"))
	var b strings.Builder
	b.WriteString(text)
	for more && p.next < len(p.lines) {
		l := p.lines[p.next]
		p.next++
		if isComment(l) || strings.TrimSpace(l) == "" {
			continue // comments and blank lines inside a continuation
		}
		l, more = p.continued(l)
		b.WriteString(l)
	}
	full := b.String()
	word, rest := cutWord(strings.TrimSpace(full))
	cmd := strings.ToUpper(word)
	if !isInstruction(cmd) {
		return nil, lineError(start, "unknown instruction %q", word)
	}
	ins := &Instruction{Line: start, Cmd: cmd, Original: strings.TrimSpace(full)}
	ins.Flags, ins.Args = splitFlags(rest)
	if cmd == "RUN" || cmd == "COPY" || cmd == "ADD" {
		if err := p.heredocs(ins); err != nil {
			return nil, err
		}
	}
	ins.EndLine = p.next
	return ins, nil
}

// cutWord splits s at its first space or tab; rest has no leading blanks.
func cutWord(s string) (word, rest string) {
	i := strings.IndexAny(s, " \t")
	if i < 0 {
		return s, ""
	}
	return s[:i], strings.TrimLeft(s[i:], " \t")
}

// splitFlags takes the leading "--name[=value]" words off args.
func splitFlags(args string) (flags []string, rest string) {
	for strings.HasPrefix(args, "--") {
		w, r := cutWord(args)
		if w == "--" {
			break
		}
		flags, args = append(flags, w), r
	}
	return flags, args
}

// heredocs finds the "<<WORD" words of ins and reads each document from
// the lines that follow, up to a line that is WORD alone.
func (p *parser) heredocs(ins *Instruction) error {
	for _, w := range rawWords(ins.Args, p.df.Escape) {
		h, ok := heredocWord(w)
		if !ok {
			continue
		}
		var content strings.Builder
		done := false
		for p.next < len(p.lines) {
			l := p.lines[p.next]
			p.next++
			end := l
			if h.Chomp {
				end = strings.TrimLeft(l, "\t")
			}
			if end == h.Name {
				done = true
				break
			}
			if h.Chomp {
				l = strings.TrimLeft(l, "\t")
			}
			content.WriteString(l + "\n")
		}
		if !done {
			return lineError(ins.Line, "here-document %q is not terminated (no line %q follows)", h.Name, h.Name)
		}
		h.Content = content.String()
		ins.Heredocs = append(ins.Heredocs, h)
	}
	return nil
}

// heredocWord recognises a here-document word: [digits]<<[-]DELIM, DELIM
// possibly quoted ('EOF' or "EOF": no expansion), and no other '<'.
func heredocWord(w string) (Heredoc, bool) {
	i := strings.Index(w, "<<")
	if i < 0 || strings.Trim(w[:i], "0123456789") != "" {
		return Heredoc{}, false
	}
	rest := w[i+2:]
	h := Heredoc{Expand: true}
	if strings.HasPrefix(rest, "-") {
		h.Chomp, rest = true, rest[1:]
	}
	if rest == "" || strings.Contains(rest, "<") {
		return Heredoc{}, false
	}
	if strings.ContainsAny(rest, `'"`) {
		h.Expand = false
		rest = strings.NewReplacer(`'`, "", `"`, "").Replace(rest)
	}
	if rest == "" || strings.ContainsAny(rest, " \t") {
		return Heredoc{}, false
	}
	h.Name = rest
	return h, true
}
