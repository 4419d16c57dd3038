package client

import (
	"context"
	"net/url"

	"minidock/api"
)

// Version is GET /version.
func (c *Client) Version(ctx context.Context) (api.VersionResponse, error) {
	var v api.VersionResponse
	err := c.call(ctx, request{method: "GET", path: "/version"}, &v)
	return v, err
}

// Info is GET /info.
func (c *Client) Info(ctx context.Context) (api.Info, error) {
	var info api.Info
	err := c.call(ctx, request{method: "GET", path: "/info"}, &info)
	return info, err
}

// EventsOptions are the parameters of GET /events.
type EventsOptions struct {
	Since, Until string // unix seconds or RFC 3339
	Filters      Filters
}

// Events is GET /events: the daemon's events as they happen (from Since,
// until Until, or until the stream is closed).
func (c *Client) Events(ctx context.Context, o EventsOptions) (*Stream[api.EventMessage], error) {
	q := url.Values{}
	if o.Since != "" {
		q.Set("since", o.Since)
	}
	if o.Until != "" {
		q.Set("until", o.Until)
	}
	o.Filters.set(q)
	return openStream[api.EventMessage](ctx, c, request{method: "GET", path: "/events", query: q})
}
