package client

import (
	"context"
	"net/url"

	"minidock/api"
)

// ExecCreate is POST /containers/{name}/exec: an exec, not started yet.
func (c *Client) ExecCreate(ctx context.Context, container string, cfg api.ExecConfig) (api.CreateResponse, error) {
	var created api.CreateResponse
	err := c.call(ctx, request{method: "POST", path: containerPath(container, "exec"), json: cfg}, &created)
	return created, err
}

// ExecStartDetached is POST /exec/{id}/start with Detach: the process
// runs on its own.
func (c *Client) ExecStartDetached(ctx context.Context, id string) error {
	return c.call(ctx, request{method: "POST", path: execPath(id, "start"), json: map[string]bool{"Detach": true}}, nil)
}

// ExecAttach is POST /exec/{id}/start, hijacked: it starts the process
// with its stdio on the connection.
func (c *Client) ExecAttach(ctx context.Context, id string, tty bool) (*HijackedConn, error) {
	return c.hijack(ctx, request{method: "POST", path: execPath(id, "start"), json: map[string]bool{"Detach": false, "Tty": tty}})
}

// ExecResize is POST /exec/{id}/resize?h=&w=.
func (c *Client) ExecResize(ctx context.Context, id string, height, width int) error {
	return c.call(ctx, request{method: "POST", path: execPath(id, "resize"), query: sizeQuery(height, width)}, nil)
}

// ExecInspect is GET /exec/{id}/json; ExitCode is set once it ended.
func (c *Client) ExecInspect(ctx context.Context, id string) (api.ExecInspect, error) {
	var ins api.ExecInspect
	err := c.call(ctx, request{method: "GET", path: execPath(id, "json")}, &ins)
	return ins, err
}

func execPath(id, rest string) string { return "/exec/" + url.PathEscape(id) + "/" + rest }
