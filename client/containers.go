package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strconv"

	"minidock/api"
	"minidock/internal/trace"
)

// ContainerListOptions are the parameters of GET /containers/json.
type ContainerListOptions struct {
	All     bool
	Limit   int // the N last created, all states included; -1: no limit
	Filters Filters
}

// ContainerList is GET /containers/json.
func (c *Client) ContainerList(ctx context.Context, o ContainerListOptions) ([]api.ContainerSummary, error) {
	q := url.Values{}
	boolQuery(q, "all", o.All)
	if o.Limit >= 0 {
		q.Set("limit", strconv.Itoa(o.Limit))
	}
	o.Filters.set(q)
	var list []api.ContainerSummary
	err := c.call(ctx, request{method: "GET", path: "/containers/json", query: q}, &list)
	return list, err
}

// ContainerCreate is POST /containers/create[?name=].
func (c *Client) ContainerCreate(ctx context.Context, name string, cfg *api.ContainerCreateRequest) (api.CreateResponse, error) {
	q := url.Values{}
	if name != "" {
		q.Set("name", name)
	}
	if c.trace != nil {
		q.Set("trace", "1") // minidock's own: docs/trace.md
	}
	var created api.CreateResponse
	err := c.call(ctx, request{method: "POST", path: "/containers/create", query: q, json: cfg}, &created)
	return created, err
}

// ContainerTrace is GET /containers/{id}/trace (minidock's own): the
// events the daemon, the shim, the runtime and the init wrote for a
// traced container. Of a container removed since, give the full id.
func (c *Client) ContainerTrace(ctx context.Context, id string) ([]trace.Event, error) {
	resp, err := c.send(ctx, request{method: "GET", path: containerPath(id, "trace")})
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return trace.ReadEvents(resp.Body)
}

// ContainerInspect is GET /containers/{name}/json.
func (c *Client) ContainerInspect(ctx context.Context, name string) (api.ContainerJSON, error) {
	var info api.ContainerJSON
	err := c.call(ctx, request{method: "GET", path: containerPath(name, "json")}, &info)
	return info, err
}

// ContainerInspectRaw is ContainerInspect as the daemon wrote it, every
// field kept (for inspect and --format).
func (c *Client) ContainerInspectRaw(ctx context.Context, name string) (json.RawMessage, error) {
	var raw json.RawMessage
	err := c.call(ctx, request{method: "GET", path: containerPath(name, "json")}, &raw)
	return raw, err
}

// ContainerStart is POST /containers/{name}/start.
func (c *Client) ContainerStart(ctx context.Context, name string) error {
	return c.call(ctx, request{method: "POST", path: containerPath(name, "start")}, nil)
}

// ContainerStop is POST /containers/{name}/stop[?t=]: SIGTERM (or the
// container's stop signal), SIGKILL after timeout seconds (nil: the
// daemon's default).
func (c *Client) ContainerStop(ctx context.Context, name string, timeout *int) error {
	return c.call(ctx, request{method: "POST", path: containerPath(name, "stop"), query: timeoutQuery(timeout)}, nil)
}

// ContainerRestart is POST /containers/{name}/restart[?t=].
func (c *Client) ContainerRestart(ctx context.Context, name string, timeout *int) error {
	return c.call(ctx, request{method: "POST", path: containerPath(name, "restart"), query: timeoutQuery(timeout)}, nil)
}

func timeoutQuery(timeout *int) url.Values {
	q := url.Values{}
	if timeout != nil {
		q.Set("t", strconv.Itoa(*timeout))
	}
	return q
}

// ContainerKill is POST /containers/{name}/kill?signal= (a name, KILL, or
// a number; "" is SIGKILL).
func (c *Client) ContainerKill(ctx context.Context, name, signal string) error {
	q := url.Values{}
	if signal != "" {
		q.Set("signal", signal)
	}
	return c.call(ctx, request{method: "POST", path: containerPath(name, "kill"), query: q}, nil)
}

// ContainerRemove is DELETE /containers/{name}[?force=1][&v=1]: force
// kills a running container first, volumes removes its anonymous volumes.
func (c *Client) ContainerRemove(ctx context.Context, name string, force, volumes bool) error {
	q := url.Values{}
	boolQuery(q, "force", force)
	boolQuery(q, "v", volumes)
	return c.call(ctx, request{method: "DELETE", path: containerPath(name), query: q}, nil)
}

// ContainerPause is POST /containers/{name}/pause.
func (c *Client) ContainerPause(ctx context.Context, name string) error {
	return c.call(ctx, request{method: "POST", path: containerPath(name, "pause")}, nil)
}

// ContainerUnpause is POST /containers/{name}/unpause.
func (c *Client) ContainerUnpause(ctx context.Context, name string) error {
	return c.call(ctx, request{method: "POST", path: containerPath(name, "unpause")}, nil)
}

// ContainerRename is POST /containers/{name}/rename?name=.
func (c *Client) ContainerRename(ctx context.Context, name, newName string) error {
	return c.call(ctx, request{method: "POST", path: containerPath(name, "rename"), query: url.Values{"name": {newName}}}, nil)
}

// ContainerTop is GET /containers/{name}/top.
func (c *Client) ContainerTop(ctx context.Context, name string) (api.ContainerTopResponse, error) {
	var top api.ContainerTopResponse
	err := c.call(ctx, request{method: "GET", path: containerPath(name, "top")}, &top)
	return top, err
}

// ContainerExplain is GET /containers/{name}/explain, minidock's own:
// what the kernel built for the container.
func (c *Client) ContainerExplain(ctx context.Context, name string) (api.Explanation, error) {
	var ex api.Explanation
	err := c.call(ctx, request{method: "GET", path: containerPath(name, "explain")}, &ex)
	return ex, err
}

// ContainerStats is GET /containers/{name}/stats?stream=0: one sample.
func (c *Client) ContainerStats(ctx context.Context, name string) (api.StatsJSON, error) {
	var s api.StatsJSON
	err := c.call(ctx, request{method: "GET", path: containerPath(name, "stats"), query: url.Values{"stream": {"0"}}}, &s)
	return s, err
}

// ContainerStatsStream is GET /containers/{name}/stats?stream=1: a sample
// a second until the container stops or the stream is closed.
func (c *Client) ContainerStatsStream(ctx context.Context, name string) (*Stream[api.StatsJSON], error) {
	return openStream[api.StatsJSON](ctx, c, request{method: "GET", path: containerPath(name, "stats"), query: url.Values{"stream": {"1"}}})
}

// ContainerChanges is GET /containers/{name}/changes.
func (c *Client) ContainerChanges(ctx context.Context, name string) ([]api.ContainerChange, error) {
	var changes []api.ContainerChange
	err := c.call(ctx, request{method: "GET", path: containerPath(name, "changes")}, &changes)
	return changes, err
}

// ContainerExport is GET /containers/{name}/export: its filesystem as a
// tar, which the caller reads and closes.
func (c *Client) ContainerExport(ctx context.Context, name string) (io.ReadCloser, error) {
	resp, err := c.send(ctx, request{method: "GET", path: containerPath(name, "export")})
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// ContainersPrune is POST /containers/prune.
func (c *Client) ContainersPrune(ctx context.Context) (api.ContainersPruneReport, error) {
	var rep api.ContainersPruneReport
	err := c.call(ctx, request{method: "POST", path: "/containers/prune"}, &rep)
	return rep, err
}

// LogsOptions are the parameters of GET /containers/{id}/logs.
type LogsOptions struct {
	Follow, Timestamps bool
	Tail               string // "all" or a number of lines
}

// ContainerLogs is GET /containers/{name}/logs with stdout and stderr:
// framed (api.Demux) unless the container has a TTY. The caller closes it.
func (c *Client) ContainerLogs(ctx context.Context, name string, o LogsOptions) (io.ReadCloser, error) {
	q := url.Values{"stdout": {"1"}, "stderr": {"1"}}
	if o.Tail != "" {
		q.Set("tail", o.Tail)
	}
	boolQuery(q, "follow", o.Follow)
	boolQuery(q, "timestamps", o.Timestamps)
	resp, err := c.send(ctx, request{method: "GET", path: containerPath(name, "logs"), query: q})
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// AttachOptions say which of a container's streams to attach.
type AttachOptions struct {
	Stdin, Stdout, Stderr bool
}

// ContainerAttach is POST /containers/{name}/attach?stream=1, hijacked:
// the connection carries the container's output from now on, and what
// is written to it goes to its stdin (with Stdin).
func (c *Client) ContainerAttach(ctx context.Context, name string, o AttachOptions) (*HijackedConn, error) {
	q := url.Values{"stream": {"1"}}
	boolQuery(q, "stdin", o.Stdin)
	boolQuery(q, "stdout", o.Stdout)
	boolQuery(q, "stderr", o.Stderr)
	return c.hijack(ctx, request{method: "POST", path: containerPath(name, "attach"), query: q})
}

// ContainerStep is POST /containers/{name}/step, minidock's own: a
// hijacked stream on which the container's next start, made in step
// mode, sends the runtime's prompts and reads the answers, a line each,
// until the container's process calls execve or the start fails
// (docs/step.md). Open it before the start.
func (c *Client) ContainerStep(ctx context.Context, name string) (*HijackedConn, error) {
	return c.hijack(ctx, request{method: "POST", path: containerPath(name, "step")})
}

// ContainerResize is POST /containers/{name}/resize?h=&w=: the size of
// its terminal.
func (c *Client) ContainerResize(ctx context.Context, name string, height, width int) error {
	return c.call(ctx, request{method: "POST", path: containerPath(name, "resize"), query: sizeQuery(height, width)}, nil)
}

func sizeQuery(height, width int) url.Values {
	return url.Values{"h": {strconv.Itoa(height)}, "w": {strconv.Itoa(width)}}
}

// Waiter is a wait under way: the daemon has answered, the exit is to
// come (see ContainerWait).
type Waiter struct {
	body io.ReadCloser
	id   string
}

// Result blocks until the container reaches the condition, and returns
// its exit status.
func (w *Waiter) Result() (api.WaitResponse, error) {
	defer w.body.Close()
	var r api.WaitResponse
	if err := json.NewDecoder(w.body).Decode(&r); err != nil {
		return r, fmt.Errorf("wait for %s: %w", w.id, err)
	}
	if r.Error != nil && r.Error.Message != "" {
		return r, fmt.Errorf("wait for %s: %s", w.id, r.Error.Message)
	}
	return r, nil
}

// Close gives up the wait.
func (w *Waiter) Close() error { return w.body.Close() }

// ContainerWait is POST /containers/{name}/wait?condition=: "" or
// "not-running", "next-exit", "removed". It returns as soon as the daemon
// has sent its headers, so that the caller can start the container
// knowing its exit will be seen (docker run does so); Result gives the
// exit.
func (c *Client) ContainerWait(ctx context.Context, name, condition string) (*Waiter, error) {
	q := url.Values{}
	if condition != "" {
		q.Set("condition", condition)
	}
	resp, err := c.send(ctx, request{method: "POST", path: containerPath(name, "wait"), query: q})
	if err != nil {
		return nil, err
	}
	return &Waiter{body: resp.Body, id: name}, nil
}

// CommitOptions are the parameters of POST /commit.
type CommitOptions struct {
	Container, Repo, Tag, Comment, Author string
	Changes                               []string // Dockerfile instructions
}

// ContainerCommit is POST /commit: an image of the container's changes.
func (c *Client) ContainerCommit(ctx context.Context, o CommitOptions) (api.IDResponse, error) {
	q := url.Values{"container": {o.Container}, "comment": {o.Comment}, "author": {o.Author}, "changes": o.Changes}
	if o.Repo != "" {
		q.Set("repo", o.Repo)
		q.Set("tag", o.Tag)
	}
	var id api.IDResponse
	err := c.call(ctx, request{method: "POST", path: "/commit", query: q}, &id)
	return id, err
}
