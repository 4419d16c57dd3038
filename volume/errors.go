package volume

import (
	"errors"
	"fmt"
	"strings"
)

// The kinds of errors the store returns; test with errors.Is. The engine's
// HTTP layer turns them into 404, 409 and 400.
var (
	ErrNotFound = errors.New("no such volume")
	ErrInUse    = errors.New("volume is in use")
	// ErrInvalid is bad input: a name, an option, a mount specification.
	ErrInvalid = errors.New("invalid argument")
)

// Error is a failed operation on one volume, in Docker's words:
// "remove data: volume is in use - [4f2a...]".
type Error struct {
	Op    string   // get, create, remove, mount, unmount
	Name  string   // the volume
	Users []string // with ErrInUse: the containers using it
	Err   error
}

func (e *Error) Error() string {
	s := e.Op + " " + e.Name + ": " + e.Err.Error()
	if len(e.Users) > 0 {
		s += " - [" + strings.Join(e.Users, ", ") + "]"
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// invalidError is bad input; errors.Is(err, ErrInvalid) holds for it, and
// its message is only its own.
type invalidError struct{ err error }

func (e invalidError) Error() string        { return e.err.Error() }
func (e invalidError) Unwrap() error        { return e.err }
func (e invalidError) Is(target error) bool { return target == ErrInvalid }

func invalidf(format string, a ...any) error {
	return invalidError{fmt.Errorf(format, a...)}
}

// invalid marks err (from package api's parsers) as bad input.
func invalid(err error) error {
	if err == nil {
		return nil
	}
	return invalidError{err}
}
