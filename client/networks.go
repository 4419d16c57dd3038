package client

import (
	"context"
	"encoding/json"
	"net/url"

	"minidock/api"
)

// NetworkCreate is POST /networks/create.
func (c *Client) NetworkCreate(ctx context.Context, req api.NetworkCreateRequest) (api.NetworkCreateResponse, error) {
	var resp api.NetworkCreateResponse
	err := c.call(ctx, request{method: "POST", path: "/networks/create", json: req}, &resp)
	return resp, err
}

// NetworkList is GET /networks[?filters=].
func (c *Client) NetworkList(ctx context.Context, f Filters) ([]api.Network, error) {
	q := url.Values{}
	f.set(q)
	var list []api.Network
	err := c.call(ctx, request{method: "GET", path: "/networks", query: q}, &list)
	return list, err
}

// NetworkInspectRaw is GET /networks/{name} as the daemon wrote it.
func (c *Client) NetworkInspectRaw(ctx context.Context, name string) (json.RawMessage, error) {
	var raw json.RawMessage
	err := c.call(ctx, request{method: "GET", path: networkPath(name)}, &raw)
	return raw, err
}

// NetworkRemove is DELETE /networks/{name}.
func (c *Client) NetworkRemove(ctx context.Context, name string) error {
	return c.call(ctx, request{method: "DELETE", path: networkPath(name)}, nil)
}

// NetworksPrune is POST /networks/prune.
func (c *Client) NetworksPrune(ctx context.Context) (api.NetworksPruneReport, error) {
	var rep api.NetworksPruneReport
	err := c.call(ctx, request{method: "POST", path: "/networks/prune"}, &rep)
	return rep, err
}

// NetworkConnect is POST /networks/{name}/connect.
func (c *Client) NetworkConnect(ctx context.Context, name string, req api.NetworkConnectRequest) error {
	return c.call(ctx, request{method: "POST", path: networkPath(name, "connect"), json: req}, nil)
}

// NetworkDisconnect is POST /networks/{name}/disconnect.
func (c *Client) NetworkDisconnect(ctx context.Context, name string, req api.NetworkDisconnectRequest) error {
	return c.call(ctx, request{method: "POST", path: networkPath(name, "disconnect"), json: req}, nil)
}
