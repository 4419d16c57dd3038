package daemon

import (
	"errors"
	"fmt"
	"net/http"

	"minidock/image"
)

// statusError is an error with the HTTP status Docker answers it with.
type statusError struct {
	status int
	msg    string
}

func (e *statusError) Error() string { return e.msg }

func notFound(format string, a ...any) error {
	return &statusError{http.StatusNotFound, fmt.Sprintf(format, a...)}
}

func conflict(format string, a ...any) error {
	return &statusError{http.StatusConflict, fmt.Sprintf(format, a...)}
}

func badRequest(format string, a ...any) error {
	return &statusError{http.StatusBadRequest, fmt.Sprintf(format, a...)}
}

func forbidden(format string, a ...any) error {
	return &statusError{http.StatusForbidden, fmt.Sprintf(format, a...)}
}

func notModified() error { return &statusError{http.StatusNotModified, ""} }

// statusOf picks the HTTP status of an error: its own, or the image
// store's kinds (not found 404, conflict 409), else 500.
func statusOf(err error) int {
	var se *statusError
	switch {
	case errors.As(err, &se):
		return se.status
	case errors.Is(err, image.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, image.ErrConflict):
		return http.StatusConflict
	}
	return http.StatusInternalServerError
}
