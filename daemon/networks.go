package daemon

import (
	"context"

	"minidock/api"
	"minidock/network"
)

// The /networks operations: the network controller's, with the
// containers' side (their endpoints are in their records) kept in step.

// CreateNetwork is `network create`.
func (d *Daemon) CreateNetwork(ctx context.Context, req api.NetworkCreateRequest) (string, error) {
	n, err := d.network.CreateNetwork(req)
	if err != nil {
		return "", err
	}
	return n.ID, nil
}

// RemoveNetwork is `network rm`.
func (d *Daemon) RemoveNetwork(ctx context.Context, ref string) error {
	return d.network.RemoveNetwork(ref)
}

// Networks is `network ls`.
func (d *Daemon) Networks(ctx context.Context, f api.Filters) ([]api.Network, error) {
	return d.network.Networks(f)
}

// NetworkInspect is `network inspect`.
func (d *Daemon) NetworkInspect(ctx context.Context, ref string) (api.Network, error) {
	return d.network.NetworkInspect(ref)
}

// PruneNetworks is `network prune`: the user-defined networks no
// container (in any state) is on.
func (d *Daemon) PruneNetworks(ctx context.Context) (*api.NetworksPruneReport, error) {
	used := map[string]bool{}
	d.mu.Lock()
	for _, c := range d.containers {
		for _, ep := range c.Networks {
			used[ep.NetworkID] = true
		}
	}
	d.mu.Unlock()
	deleted, err := d.network.PruneNetworks(func(id string) bool { return used[id] })
	return &api.NetworksPruneReport{NetworksDeleted: deleted}, err
}

// ConnectNetwork is `network connect`: the container gets an endpoint on
// the network (eth1, ...); a running one is wired at once.
func (d *Daemon) ConnectNetwork(ctx context.Context, ref, container string, es *api.EndpointSettings) error {
	return d.changeEndpoints(container, func(c *Container, sb *network.Sandbox) error {
		return d.network.Connect(sb, ref, es, c.runningPidLocked(d))
	})
}

// DisconnectNetwork is `network disconnect`.
func (d *Daemon) DisconnectNetwork(ctx context.Context, ref, container string) error {
	return d.changeEndpoints(container, func(c *Container, sb *network.Sandbox) error {
		return d.network.Disconnect(sb, ref)
	})
}

// changeEndpoints runs change on the container's sandbox with no start
// or stop meanwhile (c.op), then saves what it changed.
func (d *Daemon) changeEndpoints(container string, change func(*Container, *network.Sandbox) error) error {
	c, err := d.lookup(container)
	if err != nil {
		return err
	}
	c.op.Lock()
	defer c.op.Unlock()
	if err := d.stillThere(c); err != nil {
		return err
	}
	d.mu.Lock()
	sb := c.sandbox()
	d.mu.Unlock()
	if err := change(c, sb); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	c.setSandbox(sb)
	return c.saveDurably()
}

// runningPidLocked is runningPid for callers that do not hold d.mu.
func (c *Container) runningPidLocked(d *Daemon) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return c.runningPid()
}
