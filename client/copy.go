package client

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"minidock/api"
)

// ContainerStatPath is HEAD /containers/{name}/archive?path=: what is at
// path in the container; nil, nil when nothing is (while the container
// exists: a HEAD reply has no message to tell the two 404s apart, so the
// container is looked up then).
func (c *Client) ContainerStatPath(ctx context.Context, name, path string) (*api.PathStat, error) {
	resp, err := c.send(ctx, request{method: "HEAD", path: containerPath(name, "archive"), query: url.Values{"path": {path}}})
	if IsNotFound(err) {
		if _, err := c.ContainerInspect(ctx, name); err != nil {
			return nil, err
		}
		return nil, nil
	}
	var e *Error
	if errors.As(err, &e) && e.Message == http.StatusText(e.Status) {
		// the reply to HEAD has no body: the same path asked with GET
		// brings the daemon's message (a symlink loop, say)
		again, err := c.send(ctx, request{method: "GET", path: containerPath(name, "archive"), query: url.Values{"path": {path}}})
		if err != nil {
			return nil, err
		}
		again.Body.Close() // a GET that succeeds where HEAD failed: HEAD's error stands
		return nil, e
	}
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	return decodePathStat(resp)
}

// CopyFromContainer is GET /containers/{name}/archive?path=: a tar of
// path (its entries named from path's base name) and what path is. The
// caller reads and closes the tar.
func (c *Client) CopyFromContainer(ctx context.Context, name, path string) (io.ReadCloser, *api.PathStat, error) {
	resp, err := c.send(ctx, request{method: "GET", path: containerPath(name, "archive"), query: url.Values{"path": {path}}})
	if err != nil {
		return nil, nil, err
	}
	st, err := decodePathStat(resp)
	if err != nil {
		resp.Body.Close()
		return nil, nil, err
	}
	return resp.Body, st, nil
}

// CopyToOptions are the parameters of PUT /containers/{id}/archive.
type CopyToOptions struct {
	// NoOverwriteDirNonDir refuses to replace a directory with a file or
	// the reverse.
	NoOverwriteDirNonDir bool
	// CopyUIDGID keeps the tar's owners instead of root's.
	CopyUIDGID bool
}

// CopyToContainer is PUT /containers/{name}/archive?path=: the tar read
// from content is extracted into the directory dir of the container.
func (c *Client) CopyToContainer(ctx context.Context, name, dir string, content io.Reader, o CopyToOptions) error {
	q := url.Values{"path": {dir}}
	if o.NoOverwriteDirNonDir {
		q.Set("noOverwriteDirNonDir", "true")
	}
	if o.CopyUIDGID {
		q.Set("copyUIDGID", "true")
	}
	return c.call(ctx, request{method: "PUT", path: containerPath(name, "archive"), query: q, body: content, contentType: "application/x-tar"}, nil)
}

// decodePathStat reads the base64 JSON of the path-stat header.
func decodePathStat(resp *http.Response) (*api.PathStat, error) {
	data, err := base64.StdEncoding.DecodeString(resp.Header.Get(api.PathStatHeader))
	var st api.PathStat
	if err == nil {
		err = json.Unmarshal(data, &st)
	}
	if err != nil {
		return nil, fmt.Errorf("bad %s header from the daemon: %v", api.PathStatHeader, err)
	}
	return &st, nil
}
