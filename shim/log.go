package shim

import (
	"bytes"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"time"
	"unicode/utf8"
)

// LogPath is where the json-file log of container id in dir lives.
func LogPath(dir, id string) string { return filepath.Join(dir, id+"-json.log") }

// jsonLog writes a container's output as Docker's json-file log: one
// LogEntry line per line of output, without garbage (lines split in place,
// JSON encoded by hand into one buffer, one write(2) per read), so that a
// chatty container costs its shim no collection work.
type jsonLog struct {
	f       *os.File
	partial [3][]byte // unfinished last line per stream
	buf     []byte    // lines not yet written
}

var streamNames = [3]string{"stdin", "stdout", "stderr"}

// lines appends the complete lines of p to the log; a line longer than
// 16 KiB is cut, as Docker does. Only an unfinished last line is kept
// (in partial) for the next read.
func (l *jsonLog) lines(stream int, p []byte) {
	const maxLine = 16 << 10
	b, keep := p, l.partial[stream][:0]
	if len(l.partial[stream]) > 0 {
		b = append(l.partial[stream], p...)
		keep = b[:0]
	}
	for len(b) > 0 {
		i := bytes.IndexByte(b[:min(len(b), maxLine)], '\n')
		if i < 0 {
			if len(b) < maxLine {
				break
			}
			i = maxLine - 1
		}
		l.entry(stream, b[:i+1])
		b = b[i+1:]
	}
	// b may lie in keep's array, after its start: copy (memmove) handles
	// the overlap.
	l.partial[stream] = append(keep, b...)
	l.write()
}

// flush logs the unfinished last lines, once the streams have ended.
func (l *jsonLog) flush() {
	for i, b := range l.partial {
		if len(b) > 0 {
			l.entry(i, b)
			l.partial[i] = nil
		}
	}
	l.write()
}

// entry appends one LogEntry line to the buffer, which goes to the file
// when it passes 32 KiB and at the end of each read (write). It encodes
// by hand, byte for byte what json.Marshal(LogEntry{...}) writes
// (log_test.go checks).
func (l *jsonLog) entry(stream int, line []byte) {
	b := append(l.buf, `{"log":`...)
	b = appendJSONString(b, line)
	b = append(b, `,"stream":"`...)
	b = append(b, streamNames[stream]...)
	b = append(b, `","time":"`...)
	b = time.Now().UTC().AppendFormat(b, time.RFC3339Nano)
	l.buf = append(b, "\"}\n"...)
	if len(l.buf) >= 32<<10 {
		l.write()
	}
}

// write writes the buffered lines.
func (l *jsonLog) write() {
	if len(l.buf) > 0 {
		l.f.Write(l.buf)
	}
	l.buf = l.buf[:0]
	if cap(l.buf) > 256<<10 {
		l.buf = nil // a rare huge line: do not keep its buffer
	}
}

// appendJSONString appends s as a JSON string, escaped as encoding/json
// does: control characters, quote, backslash, <, > and & (HTML-safe),
// U+2028 and U+2029, and invalid UTF-8 as U+FFFD.
func appendJSONString(b, s []byte) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// framer writes Docker's multiplexed stream (an 8-byte header: stream,
// 0, 0, 0, big-endian length; api.WriteFrame's format) from a buffer it
// keeps, so that output makes no garbage.
type framer struct{ buf []byte }

func (f *framer) write(w io.Writer, stream byte, p []byte) error {
	b := append(f.buf[:0], stream, 0, 0, 0, 0, 0, 0, 0)
	binary.BigEndian.PutUint32(b[4:], uint32(len(p)))
	b = append(b, p...)
	_, err := w.Write(b)
	if cap(b) <= 64<<10 {
		f.buf = b
	}
	return err
}
