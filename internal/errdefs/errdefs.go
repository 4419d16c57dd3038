// Package errdefs gives the engine's errors a kind (not found, conflict,
// invalid parameter, ...) without tying the engine to HTTP: the engine
// (package daemon) and its networking (package network) return them, and
// the Engine API layer (daemon/server) turns each kind into Docker's
// status code. moby's errdefs package plays the same part.
package errdefs

import (
	"errors"
	"fmt"
)

// Kind is what went wrong, as a client needs to know it.
type Kind int

const (
	Unknown          Kind = iota // anything else: 500
	NotFound                     // no such container, image, network, exec: 404
	Conflict                     // the object's state forbids it (name in use, running): 409
	InvalidParameter             // bad input: 400
	Forbidden                    // refused by policy (pre-defined network, overlap): 403
	NotModified                  // nothing to do (start of a running container): 304
	NotImplemented               // an endpoint this engine lacks: 501
	TooLarge                     // a request body over the limit: 413
	Unauthorized                 // credentials a registry refused: 401
	Unavailable                  // a service the engine needs does not answer (the cluster store): 503
)

// Error is an error of a kind.
type Error struct {
	Kind Kind
	Err  error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// KindOf is the kind of the first Error in err's chain; Unknown if none.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Unknown
}

// Is reports whether err is of kind k.
func Is(err error, k Kind) bool { return KindOf(err) == k }

func newf(k Kind, format string, a ...any) error {
	return &Error{Kind: k, Err: fmt.Errorf(format, a...)}
}

// Wrap gives err kind k, keeping its message and chain.
func Wrap(k Kind, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Kind: k, Err: err}
}

func NotFoundf(format string, a ...any) error       { return newf(NotFound, format, a...) }
func Conflictf(format string, a ...any) error       { return newf(Conflict, format, a...) }
func Invalidf(format string, a ...any) error        { return newf(InvalidParameter, format, a...) }
func Forbiddenf(format string, a ...any) error      { return newf(Forbidden, format, a...) }
func NotImplementedf(format string, a ...any) error { return newf(NotImplemented, format, a...) }

// ErrNotModified is the 304 of a start, stop or kill with nothing to do.
var ErrNotModified = &Error{Kind: NotModified, Err: errors.New("not modified")}
