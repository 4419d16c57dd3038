package daemon

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"minidock/api"
	"minidock/internal/errdefs"
	"minidock/volume"
)

const zeroTime = "0001-01-01T00:00:00Z"

func formatTime(t time.Time) string {
	if t.IsZero() {
		return zeroTime
	}
	return t.Format(time.RFC3339Nano)
}

// ContainerInspect is GET /containers/{id}/json.
func (d *Daemon) ContainerInspect(ctx context.Context, name string) (*api.ContainerJSON, error) {
	c, err := d.lookup(name)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	argv := c.argv()
	cfg, hc := c.Config, c.HostConfig
	out := &api.ContainerJSON{
		ID: c.ID, Created: formatTime(c.Created), Path: argv[0], Args: argv[1:],
		State: &api.ContainerState{
			Status: c.State.status(), Running: c.State.Status == "running", Paused: c.State.Paused, Restarting: c.State.Restarting,
			OOMKilled: c.State.OOMKilled, Pid: c.State.Pid, ExitCode: c.State.ExitCode, Error: c.State.Error,
			StartedAt: formatTime(c.State.StartedAt), FinishedAt: formatTime(c.State.FinishedAt),
		},
		Image: c.Image, Name: "/" + c.Name, LogPath: c.paths.log,
		HostsPath: filepath.Join(c.paths.dir, "hosts"), HostnamePath: filepath.Join(c.paths.dir, "hostname"),
		ResolvConfPath: filepath.Join(c.paths.dir, "resolv.conf"),
		Driver:         "overlay2", Platform: "linux", Config: &cfg, HostConfig: &hc, RestartCount: c.RestartCount,
		NetworkSettings: d.network.Settings(c.sandbox(), c.runningPid()), Mounts: volume.MountPoints(c.Mounts),
	}
	out.Config.Image = c.ImageRef
	return out, nil
}

// runningPid is the init's pid while c runs, else 0. Callers hold d.mu.
func (c *Container) runningPid() int {
	if c.State.Status == "running" {
		return c.State.Pid
	}
	return 0
}

// ListOptions are GET /containers/json's: All (or only running ones),
// Limit (the last created, in every state; <= 0: no limit) and Filters
// (id, name, status, label).
type ListOptions struct {
	All     bool
	Limit   int
	Filters api.Filters
}

// Containers is GET /containers/json, newest first.
func (d *Daemon) Containers(ctx context.Context, o ListOptions) ([]api.ContainerSummary, error) {
	if err := o.Filters.Only("id", "name", "status", "label"); err != nil {
		return nil, errdefs.Wrap(errdefs.InvalidParameter, err)
	}
	// a limit lists the last created containers in every state, as Docker's
	all := o.All || len(o.Filters["status"]) > 0 || o.Limit > 0
	now := time.Now()
	out := []api.ContainerSummary{}
	d.mu.Lock()
	defer d.mu.Unlock()
	var list []*Container
	for _, c := range d.containers {
		if (all || c.State.Status == "running") && c.matches(o.Filters) {
			list = append(list, c)
		}
	}
	// newest first, to the nanosecond (Created is in seconds)
	sort.Slice(list, func(i, j int) bool { return list[i].Created.After(list[j].Created) })
	if o.Limit > 0 && len(list) > o.Limit {
		list = list[:o.Limit]
	}
	for _, c := range list {
		labels := c.Config.Labels
		if labels == nil {
			labels = map[string]string{}
		}
		sb := c.sandbox()
		out = append(out, api.ContainerSummary{
			ID: c.ID, Names: []string{"/" + c.Name}, Image: c.ImageRef, ImageID: c.Image,
			Command: strings.Join(c.argv(), " "), Created: c.Created.Unix(), State: c.State.status(),
			Status: statusText(c.State, now), Ports: sb.SummaryPorts(), Labels: labels, Mounts: volume.MountPoints(c.Mounts),
			NetworkSettings: &api.SummaryNetworkSettings{Networks: d.network.Settings(sb, c.runningPid()).Networks},
		})
		out[len(out)-1].HostConfig.NetworkMode = c.HostConfig.NetworkMode
	}
	return out, nil
}

func (c *Container) matches(f api.Filters) bool {
	return f.Match("id", func(v string) bool { return strings.HasPrefix(c.ID, v) }) &&
		f.Match("name", func(v string) bool { return strings.Contains(c.Name, strings.TrimPrefix(v, "/")) }) &&
		f.Match("status", func(v string) bool { return c.State.status() == v }) &&
		f.MatchLabels(c.Config.Labels)
}

// statusText is the STATUS column of docker ps.
func statusText(s State, now time.Time) string {
	switch {
	case s.Restarting:
		return fmt.Sprintf("Restarting (%d) %s ago", s.ExitCode, humanDuration(now.Sub(s.FinishedAt)))
	case s.Status == "running":
		if s.Paused {
			return "Up " + humanDuration(now.Sub(s.StartedAt)) + " (Paused)"
		}
		return "Up " + humanDuration(now.Sub(s.StartedAt))
	case s.Status == "exited":
		return fmt.Sprintf("Exited (%d) %s ago", s.ExitCode, humanDuration(now.Sub(s.FinishedAt)))
	}
	return "Created"
}

func humanDuration(d time.Duration) string {
	switch s := int(d.Seconds()); {
	case s < 1:
		return "Less than a second"
	case s == 1:
		return "1 second"
	case s < 60:
		return fmt.Sprintf("%d seconds", s)
	case s < 3600:
		return plural(s/60, "minute")
	case s < 48*3600:
		return plural(s/3600, "hour")
	default:
		return plural(s/86400, "day")
	}
}

func plural(n int, unit string) string {
	if n == 1 {
		if unit == "hour" {
			return "About an hour"
		}
		return "About a " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}
