package registry

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"unicode/utf8"
)

// The refusals a caller may need to tell apart from other failures (the
// daemon answers them with Docker's statuses): errors.Is(err, ErrNotFound).
var (
	// ErrNotFound: no such repository, tag or manifest on the registry
	// (or none this user may see), or no such image to push.
	ErrNotFound = errors.New("not found")
	// ErrUnauthorized: the registry or its token server refused the
	// credentials, or denied the operation.
	ErrUnauthorized = errors.New("unauthorized")
)

// refusal is an error of one of those kinds, with its own message.
type refusal struct {
	kind error
	err  error
}

func (r *refusal) Error() string   { return r.err.Error() }
func (r *refusal) Unwrap() []error { return []error{r.kind, r.err} }

// refused gives err a kind (ErrNotFound, ErrUnauthorized).
func refused(kind, err error) error { return &refusal{kind: kind, err: err} }

// Error is a registry's error answer: the request, the status, and the
// registry's own codes and messages ({"errors":[{"code","message"}]}).
type Error struct {
	Method, URL string
	Status      int
	StatusText  string
	Errors      []APIError
	Body        string // the start of a body that was not an error JSON
}

// APIError is one entry of the distribution API's error body.
type APIError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: %s", e.Method, e.URL, e.StatusText)
	for _, a := range e.Errors {
		code := strings.ToLower(strings.ReplaceAll(a.Code, "_", " "))
		if a.Message != "" && !strings.EqualFold(a.Message, code) {
			fmt.Fprintf(&b, ": %s: %s", code, a.Message)
		} else {
			fmt.Fprintf(&b, ": %s", code)
		}
	}
	if len(e.Errors) == 0 && e.Body != "" {
		fmt.Fprintf(&b, ": %q", e.Body)
	}
	return b.String()
}

// Code is the first error code the registry gave ("MANIFEST_UNKNOWN").
func (e *Error) Code() string {
	if len(e.Errors) > 0 {
		return e.Errors[0].Code
	}
	return ""
}

// Message is the registry's own words: its messages, or the body.
func (e *Error) Message() string {
	var msgs []string
	for _, a := range e.Errors {
		if a.Message != "" {
			msgs = append(msgs, a.Message)
		} else {
			msgs = append(msgs, strings.ToLower(strings.ReplaceAll(a.Code, "_", " ")))
		}
	}
	if len(msgs) == 0 {
		if e.Body != "" {
			return e.Body
		}
		return e.StatusText
	}
	return strings.Join(msgs, "; ")
}

// errorFrom reads an unexpected response into an *Error (closing it).
func errorFrom(resp *http.Response) *Error {
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	u := ""
	if resp.Request != nil && resp.Request.URL != nil {
		u = redact(resp.Request.URL.String())
	}
	method := ""
	if resp.Request != nil {
		method = resp.Request.Method
	}
	return &Error{Method: method, URL: u, Status: resp.StatusCode, StatusText: resp.Status, Errors: parseErrors(body), Body: snippet(body)}
}

// parseErrors reads {"errors":[...]} (registries) or {"details"|"error"}
// (some token servers).
func parseErrors(body []byte) []APIError {
	var v struct {
		Errors  []APIError `json:"errors"`
		Details string     `json:"details"`
		Error   string     `json:"error"`
	}
	if json.Unmarshal(body, &v) != nil {
		return nil
	}
	if len(v.Errors) > 0 {
		return v.Errors
	}
	if v.Details != "" {
		return []APIError{{Code: "UNAUTHORIZED", Message: v.Details}}
	}
	if v.Error != "" {
		return []APIError{{Code: "ERROR", Message: v.Error}}
	}
	return nil
}

// snippet is the start of a body, printable, for an error message.
func snippet(b []byte) string {
	const max = 200
	if len(b) > max {
		b = b[:max]
	}
	s := strings.TrimSpace(string(b))
	if !utf8.ValidString(s) {
		return fmt.Sprintf("%d bytes of binary data", len(b))
	}
	return s
}
