// Package client is minidock's typed Engine API client: one method per
// endpoint (ContainerCreate, ContainerStart, ImageList, NetworkCreate,
// ...), taking and returning the api package's types. It knows the daemon
// only through package api and HTTP. The command line built on it is
// package client/cli.
//
// Every method goes through one of four calls on a request: call (reply
// decoded as JSON, or discarded), send (the raw reply, for bodies read as
// they come: logs, export, save), openStream (a reply of JSON values one
// after another, read with Stream.Next: events, stats, load and import
// progress) and hijack (attach and exec start, where the connection
// becomes the container's stdio).
package client

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"minidock/api"
	"minidock/internal/trace"
)

// DefaultHost is the daemon's socket unless -H or MINIDOCK_HOST says.
const DefaultHost = "unix:///run/minidock/minidock.sock"

// Config says how to reach a daemon.
type Config struct {
	// Host is unix:///path/to/socket or tcp://host:port.
	Host string
	// TLS, with a tcp:// host, wraps every connection in TLS: for mutual
	// TLS give it the client's certificate and the CA that signed the
	// daemon's.
	TLS *tls.Config
}

// Client talks to one daemon.
type Client struct {
	host  string // as given, for messages
	dial  func(ctx context.Context) (net.Conn, error)
	http  *http.Client
	trace *trace.Tracer // SetTrace: every request is an event
}

// SetTrace makes every request of c an event of t (`run --trace`), and
// has the containers c creates traced by the daemon (create?trace=1).
func (c *Client) SetTrace(t *trace.Tracer) { c.trace = t }

// traced writes the event of a request sent at start (ns since the
// epoch) that got status (or err).
func (c *Client) traced(start int64, r request, status int, err error) {
	if c.trace == nil {
		return
	}
	c.trace.Helper()
	target := r.path
	if len(r.query) > 0 {
		target += "?" + r.query.Encode()
	}
	res := trace.Result(err)
	if err == nil {
		res = fmt.Sprintf("%d %s", status, http.StatusText(status))
	}
	c.trace.CallSince(start, "http", r.method, target, res, requestWhy(r))
}

// requestWhy says what a request of the path of a `run` is for.
func requestWhy(r request) string {
	switch {
	case strings.HasSuffix(r.path, "/containers/create"):
		return "make the container: config merged with the image's, rootfs prepared; nothing runs"
	case strings.HasSuffix(r.path, "/attach"):
		return "attach to its stdio before the start, so no output is lost"
	case strings.HasSuffix(r.path, "/wait"):
		return "be told of its exit (or removal)"
	case strings.HasSuffix(r.path, "/start"):
		return "run it: rootfs, network, bundle, shim, runtime, init"
	case strings.HasSuffix(r.path, "/trace"):
		return "fetch the trace the daemon, shim, runtime and init wrote"
	case r.method == "DELETE":
		return "remove it"
	}
	return ""
}

// New makes a client for the daemon cfg names. It does not connect: the
// first call does.
func New(cfg Config) (*Client, error) {
	network, addr, err := parseHost(cfg.Host)
	if err != nil {
		return nil, err
	}
	if cfg.TLS != nil && network != "tcp" {
		return nil, fmt.Errorf("host %q: TLS needs a tcp:// host", cfg.Host)
	}
	c := &Client{host: cfg.Host}
	c.dial = func(ctx context.Context) (net.Conn, error) {
		var d net.Dialer
		conn, err := d.DialContext(ctx, network, addr)
		if err != nil || cfg.TLS == nil {
			return conn, err
		}
		tc := tls.Client(conn, tlsFor(cfg.TLS, addr))
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, fmt.Errorf("TLS handshake with %s: %w", addr, err)
		}
		return tc, nil
	}
	c.http = &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) { return c.dial(ctx) },
	}}
	return c, nil
}

// parseHost splits unix:///path or tcp://host:port into a network and an
// address for net.Dial.
func parseHost(host string) (network, addr string, err error) {
	scheme, rest, ok := strings.Cut(host, "://")
	switch {
	case ok && scheme == "unix" && rest != "":
		return "unix", rest, nil
	case ok && scheme == "tcp" && rest != "":
		if _, _, err := net.SplitHostPort(rest); err != nil {
			return "", "", fmt.Errorf("host %q: tcp://HOST:PORT: %w", host, err)
		}
		return "tcp", rest, nil
	}
	return "", "", fmt.Errorf("host %q: want unix:///path or tcp://host:port", host)
}

// tlsFor fills ServerName from addr when the configuration has none.
func tlsFor(cfg *tls.Config, addr string) *tls.Config {
	if cfg.ServerName != "" {
		return cfg
	}
	cfg = cfg.Clone()
	cfg.ServerName, _, _ = net.SplitHostPort(addr)
	return cfg
}

// Error is an error reply of the daemon.
type Error struct {
	Status  int
	Message string
}

func (e *Error) Error() string { return "Error response from daemon: " + e.Message }

// IsNotFound reports whether err is the daemon's 404.
func IsNotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == http.StatusNotFound
}

// request is one call of the Engine API. path is below /v<api.Version>;
// the body is JSON (a non-nil json, marshalled) or raw (body, with
// contentType).
type request struct {
	method, path string
	query        url.Values
	json         any
	body         io.Reader
	contentType  string
	header       http.Header
}

// newHTTP makes the http.Request for r.
func (c *Client) newHTTP(ctx context.Context, r request) (*http.Request, error) {
	body, contentType := r.body, r.contentType
	if r.json != nil {
		data, err := json.Marshal(r.json)
		if err != nil {
			return nil, fmt.Errorf("%s %s: encode body: %w", r.method, r.path, err)
		}
		body, contentType = bytes.NewReader(data), "application/json"
	}
	u := "http://minidock/v" + api.Version + r.path
	if len(r.query) > 0 {
		u += "?" + r.query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u, body)
	if err != nil {
		return nil, err
	}
	for k, vs := range r.header {
		req.Header[k] = vs
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	return req, nil
}

// send makes the request and returns the reply, whose body the caller
// closes; an error status becomes *Error.
func (c *Client) send(ctx context.Context, r request) (*http.Response, error) {
	c.trace.Helper() // the event names the caller: ContainerCreate, ...
	req, err := c.newHTTP(ctx, r)
	if err != nil {
		return nil, err
	}
	start := time.Now().UnixNano()
	resp, err := c.http.Do(req)
	if err != nil {
		c.traced(start, r, 0, err)
		return nil, c.unreachable(err)
	}
	c.traced(start, r, resp.StatusCode, nil)
	if resp.StatusCode >= 400 {
		defer resp.Body.Close()
		return nil, replyError(resp)
	}
	return resp, nil
}

// replyError reads an error reply: {"message": ...}, or its text.
func replyError(resp *http.Response) error {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var e api.ErrorResponse
	if json.Unmarshal(data, &e) != nil || e.Message == "" {
		e.Message = strings.TrimSpace(string(data))
	}
	if e.Message == "" {
		e.Message = http.StatusText(resp.StatusCode)
	}
	return &Error{Status: resp.StatusCode, Message: e.Message}
}

// call makes the request and decodes the JSON reply into out, or
// discards the reply when out is nil.
func (c *Client) call(ctx context.Context, r request, out any) error {
	c.trace.Helper()
	resp, err := c.send(ctx, r)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decode reply: %w", r.method, r.path, err)
	}
	return nil
}

// HijackedConn is a connection the daemon handed over to a container's
// (or an exec's) stdio: reads give its output (framed unless it has a
// TTY, see api.Demux), writes go to its stdin, CloseWrite ends its stdin.
type HijackedConn struct {
	net.Conn
	// what the daemon sent after its reply, already read from Conn
	r *bufio.Reader
}

func (h *HijackedConn) Read(p []byte) (int, error) { return h.r.Read(p) }

// CloseWrite half-closes the connection: the end of stdin.
func (h *HijackedConn) CloseWrite() error {
	if cw, ok := h.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// hijack sends a request that upgrades the connection (Connection:
// Upgrade, Upgrade: tcp) and returns the connection once the daemon
// answered 101 (or 200, as old daemons do).
func (c *Client) hijack(ctx context.Context, r request) (*HijackedConn, error) {
	c.trace.Helper()
	req, err := c.newHTTP(ctx, r)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "tcp")
	start := time.Now().UnixNano()
	conn, err := c.dial(ctx)
	if err != nil {
		return nil, c.unreachable(err)
	}
	if err := req.Write(conn); err != nil {
		conn.Close()
		return nil, fmt.Errorf("%s %s: %w", r.method, r.path, err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("%s %s: %w", r.method, r.path, err)
	}
	c.traced(start, r, resp.StatusCode, nil)
	if resp.StatusCode != http.StatusSwitchingProtocols && resp.StatusCode != http.StatusOK {
		defer conn.Close()
		return nil, replyError(resp)
	}
	return &HijackedConn{Conn: conn, r: br}, nil
}

// Stream is a reply made of JSON values one after another (events, stats,
// the progress messages of load, import, and later pull, push and build).
type Stream[T any] struct {
	body io.ReadCloser
	dec  *json.Decoder
}

// openStream makes the request and returns its reply as a Stream.
func openStream[T any](ctx context.Context, c *Client, r request) (*Stream[T], error) {
	c.trace.Helper()
	resp, err := c.send(ctx, r)
	if err != nil {
		return nil, err
	}
	return &Stream[T]{body: resp.Body, dec: json.NewDecoder(resp.Body)}, nil
}

// Next returns the next value, io.EOF after the last.
func (s *Stream[T]) Next() (T, error) {
	var v T
	err := s.dec.Decode(&v)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("read reply: %w", err)
	}
	return v, err
}

// Close ends the stream (and the request, when it is still going).
func (s *Stream[T]) Close() error { return s.body.Close() }

// Messages is a stream of progress messages.
type Messages = Stream[api.JSONMessage]

// EachMessage calls f for every message of s until its end, and closes
// it. A message carrying an error ends the stream with that error, as
// docker does for a pull or a build that fails half-way.
func EachMessage(s *Messages, f func(api.JSONMessage)) error {
	defer s.Close()
	for {
		m, err := s.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if m.Error != "" {
			return errors.New(m.Error)
		}
		if m.ErrorDetail != nil && m.ErrorDetail.Message != "" {
			return errors.New(m.ErrorDetail.Message)
		}
		f(m)
	}
}

// Filters is the filters parameter of the list and prune endpoints:
// {"label":["a=b"], "status":["exited"]}.
type Filters map[string][]string

// ParseFilters reads KEY=VALUE flags (ps -f, network ls -f, events -f).
func ParseFilters(flags []string) (Filters, error) {
	f := Filters{}
	for _, kv := range flags {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("bad format of filter %q (expected name=value)", kv)
		}
		f[k] = append(f[k], v)
	}
	return f, nil
}

// set puts the filters into q, unless there are none.
func (f Filters) set(q url.Values) {
	if len(f) == 0 {
		return
	}
	data, _ := json.Marshal(map[string][]string(f))
	q.Set("filters", string(data))
}

// containerPath is /containers/{name}/{rest...}.
func containerPath(name string, rest ...string) string {
	p := "/containers/" + url.PathEscape(name)
	for _, r := range rest {
		p += "/" + r
	}
	return p
}

// imagePath is /images/{name}/{rest...}; names keep their slashes, as
// the docker CLI sends them (busybox, library/busybox:1, host:5000/x).
func imagePath(name string, rest ...string) string {
	p := "/images/" + name
	for _, r := range rest {
		p += "/" + r
	}
	return p
}

// networkPath is /networks/{name}/{rest...}.
func networkPath(name string, rest ...string) string {
	p := "/networks/" + url.PathEscape(name)
	for _, r := range rest {
		p += "/" + r
	}
	return p
}

// boolQuery sets q[k]=1 when v.
func boolQuery(q url.Values, k string, v bool) {
	if v {
		q.Set(k, "1")
	}
}
