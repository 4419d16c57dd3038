// Package client is minidock's Engine API client and its command line
// (`minidock run`, `minidock ps`, ...). It knows the daemon only through
// package api and HTTP on the daemon's unix socket.
package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"

	"minidock/api"
)

// DefaultHost is the daemon's socket unless -H or MINIDOCK_HOST says.
const DefaultHost = "unix:///run/minidock/minidock.sock"

// Client talks to one daemon.
type Client struct {
	socket string
	http   *http.Client
}

// New makes a client for host, unix:///path.
func New(host string) (*Client, error) {
	p, ok := strings.CutPrefix(host, "unix://")
	if !ok || p == "" {
		return nil, fmt.Errorf("host %q: only unix:///path is supported", host)
	}
	c := &Client{socket: p}
	c.http = &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", p)
		},
	}}
	return c, nil
}

// Error is an error reply of the daemon.
type Error struct {
	Status  int
	Message string
}

func (e *Error) Error() string { return e.Message }

// Do sends a request to /v<api.Version>/path and returns the response,
// turning an error status into *Error.
func (c *Client) Do(ctx context.Context, method, path string, q url.Values, body io.Reader, contentType string) (*http.Response, error) {
	u := "http://minidock/v" + api.Version + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the minidock daemon at unix://%s (is it running?): %w", c.socket, err)
	}
	if resp.StatusCode >= 400 {
		defer resp.Body.Close()
		data, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		var e api.ErrorResponse
		if json.Unmarshal(data, &e) != nil || e.Message == "" {
			e.Message = strings.TrimSpace(string(data))
		}
		return nil, &Error{Status: resp.StatusCode, Message: "Error response from daemon: " + e.Message}
	}
	return resp, nil
}

// JSON sends v (unless nil) as JSON and decodes the reply into out
// (unless nil).
func (c *Client) JSON(ctx context.Context, method, path string, q url.Values, v, out any) error {
	var body io.Reader
	if v != nil {
		data, err := json.Marshal(v)
		if err != nil {
			return err
		}
		body = bytes.NewReader(data)
	}
	resp, err := c.Do(ctx, method, path, q, body, "application/json")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decode reply: %w", method, path, err)
	}
	return nil
}

// Hijack sends a request that upgrades the connection (attach) and
// returns the raw connection with anything already read buffered.
func (c *Client) Hijack(ctx context.Context, path string, q url.Values) (net.Conn, *bufio.Reader, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", c.socket)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot reach the minidock daemon at unix://%s: %w", c.socket, err)
	}
	u := "/v" + api.Version + path + "?" + q.Encode()
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: minidock\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n", u)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("attach: %w", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols && resp.StatusCode != http.StatusOK {
		defer conn.Close()
		var e api.ErrorResponse
		json.NewDecoder(resp.Body).Decode(&e)
		return nil, nil, &Error{Status: resp.StatusCode, Message: "Error response from daemon: " + e.Message}
	}
	return conn, br, nil
}
