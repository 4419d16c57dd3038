package client

import (
	"context"
	"encoding/json"
	"io"
	"net/url"

	"minidock/api"
)

// ImageList is GET /images/json[?all=1]: the images, with all the
// intermediate ones too (a build's steps, hidden otherwise).
func (c *Client) ImageList(ctx context.Context, all bool) ([]api.ImageSummary, error) {
	q := url.Values{}
	boolQuery(q, "all", all)
	var list []api.ImageSummary
	err := c.call(ctx, request{method: "GET", path: "/images/json", query: q}, &list)
	return list, err
}

// ImageInspectRaw is GET /images/{name}/json as the daemon wrote it.
func (c *Client) ImageInspectRaw(ctx context.Context, name string) (json.RawMessage, error) {
	var raw json.RawMessage
	err := c.call(ctx, request{method: "GET", path: imagePath(name, "json")}, &raw)
	return raw, err
}

// ImageHistory is GET /images/{name}/history, newest layer first.
func (c *Client) ImageHistory(ctx context.Context, name string) ([]api.ImageHistoryItem, error) {
	var hist []api.ImageHistoryItem
	err := c.call(ctx, request{method: "GET", path: imagePath(name, "history")}, &hist)
	return hist, err
}

// ImageRemove is DELETE /images/{name}[?force=1]: what was untagged and
// deleted.
func (c *Client) ImageRemove(ctx context.Context, name string, force bool) ([]api.ImageDeleteItem, error) {
	q := url.Values{}
	boolQuery(q, "force", force)
	var items []api.ImageDeleteItem
	err := c.call(ctx, request{method: "DELETE", path: imagePath(name), query: q}, &items)
	return items, err
}

// ImageTag is POST /images/{name}/tag?repo=&tag=.
func (c *Client) ImageTag(ctx context.Context, name, repo, tag string) error {
	return c.call(ctx, request{method: "POST", path: imagePath(name, "tag"), query: url.Values{"repo": {repo}, "tag": {tag}}}, nil)
}

// ImagesPrune is POST /images/prune: dangling images only, or with all
// every image no container uses.
func (c *Client) ImagesPrune(ctx context.Context, all bool) (api.ImagesPruneReport, error) {
	q := url.Values{}
	if all {
		Filters{"dangling": {"false"}}.set(q)
	}
	var rep api.ImagesPruneReport
	err := c.call(ctx, request{method: "POST", path: "/images/prune", query: q}, &rep)
	return rep, err
}

// ImageSave is GET /images/get?names=...: a docker-save tar, which the
// caller reads and closes.
func (c *Client) ImageSave(ctx context.Context, names []string) (io.ReadCloser, error) {
	resp, err := c.send(ctx, request{method: "GET", path: "/images/get", query: url.Values{"names": names}})
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// ImageLoad is POST /images/load with a docker-save or OCI archive:
// progress messages ("Loaded image: ...").
func (c *Client) ImageLoad(ctx context.Context, archive io.Reader) (*Messages, error) {
	return openStream[api.JSONMessage](ctx, c, request{method: "POST", path: "/images/load", body: archive, contentType: "application/x-tar"})
}

// ImageImportOptions are the parameters of an import.
type ImageImportOptions struct {
	Repo, Tag string   // the new image's name, if any
	Changes   []string // Dockerfile instructions applied to its config
}

// ImageImport is POST /images/create?fromSrc=- with a rootfs tarball:
// progress messages, the last with the new image's ID.
func (c *Client) ImageImport(ctx context.Context, rootfs io.Reader, o ImageImportOptions) (*Messages, error) {
	q := url.Values{"fromSrc": {"-"}, "changes": o.Changes}
	if o.Repo != "" {
		q.Set("repo", o.Repo)
		q.Set("tag", o.Tag)
	}
	return openStream[api.JSONMessage](ctx, c, request{method: "POST", path: "/images/create", query: q, body: rootfs, contentType: "application/x-tar"})
}
