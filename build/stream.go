package build

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"minidock/api"
)

// stream writes a build's messages (api.BuildMessage) to the client,
// one JSON object a line. Its methods are safe for concurrent use (a
// RUN's stdout and stderr arrive together). Quiet leaves only the final
// ID and errors.
type stream struct {
	mu    sync.Mutex
	w     io.Writer
	quiet bool
}

func (s *stream) send(m api.BuildMessage) {
	b, _ := json.Marshal(m)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.w.Write(append(b, '\r', '\n'))
}

// printf writes a progress line: {"stream":"..."}.
func (s *stream) printf(format string, a ...any) {
	if !s.quiet {
		s.send(api.BuildMessage{Stream: fmt.Sprintf(format, a...)})
	}
}

// final writes a line even in quiet mode.
func (s *stream) final(text string) { s.send(api.BuildMessage{Stream: text}) }

// aux writes {"aux":{"ID":"sha256:..."}}: the image built.
func (s *stream) aux(id string) { s.send(api.BuildMessage{Aux: &api.BuildAux{ID: id}}) }

// fail writes the error that ends the build, with a RUN's exit code.
func (s *stream) fail(err error) {
	d := &api.BuildError{Message: err.Error()}
	var ee *ExitError
	if errors.As(err, &ee) {
		d.Code = ee.Code
	}
	s.send(api.BuildMessage{ErrorDetail: d, Error: d.Message})
}

// output is where a RUN's process writes: each write one stream message.
func (s *stream) output() io.Writer { return streamWriter{s} }

type streamWriter struct{ s *stream }

func (w streamWriter) Write(p []byte) (int, error) {
	if !w.s.quiet {
		w.s.send(api.BuildMessage{Stream: strings.ToValidUTF8(string(p), "\uFFFD")})
	}
	return len(p), nil
}

// raw is where the engine writes messages that are JSON lines already
// (a pull's progress).
func (s *stream) raw() io.Writer { return rawWriter{s} }

type rawWriter struct{ s *stream }

func (w rawWriter) Write(p []byte) (int, error) {
	if w.s.quiet {
		return len(p), nil
	}
	w.s.mu.Lock()
	defer w.s.mu.Unlock()
	return w.s.w.Write(p)
}
