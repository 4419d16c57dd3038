package client

import (
	"context"
	"encoding/json"
	"net/url"

	"minidock/api"
)

// VolumeCreate is POST /volumes/create.
func (c *Client) VolumeCreate(ctx context.Context, req api.VolumeCreateOptions) (api.Volume, error) {
	var v api.Volume
	err := c.call(ctx, request{method: "POST", path: "/volumes/create", json: req}, &v)
	return v, err
}

// VolumeList is GET /volumes[?filters=] (dangling, name, driver, label).
func (c *Client) VolumeList(ctx context.Context, f Filters) (api.VolumeListResponse, error) {
	q := url.Values{}
	f.set(q)
	var resp api.VolumeListResponse
	err := c.call(ctx, request{method: "GET", path: "/volumes", query: q}, &resp)
	return resp, err
}

// VolumeInspectRaw is GET /volumes/{name} as the daemon wrote it.
func (c *Client) VolumeInspectRaw(ctx context.Context, name string) (json.RawMessage, error) {
	var raw json.RawMessage
	err := c.call(ctx, request{method: "GET", path: volumePath(name)}, &raw)
	return raw, err
}

// VolumeRemove is DELETE /volumes/{name}[?force=1]: force makes a missing
// volume no error; a volume in use is never removed (409).
func (c *Client) VolumeRemove(ctx context.Context, name string, force bool) error {
	q := url.Values{}
	boolQuery(q, "force", force)
	return c.call(ctx, request{method: "DELETE", path: volumePath(name), query: q}, nil)
}

// VolumesPrune is POST /volumes/prune[?filters=]: the unused anonymous
// volumes, every unused one with the filter all=true, label=, label!=.
func (c *Client) VolumesPrune(ctx context.Context, f Filters) (api.VolumesPruneReport, error) {
	q := url.Values{}
	f.set(q)
	var rep api.VolumesPruneReport
	err := c.call(ctx, request{method: "POST", path: "/volumes/prune", query: q}, &rep)
	return rep, err
}

func volumePath(name string) string { return "/volumes/" + url.PathEscape(name) }
