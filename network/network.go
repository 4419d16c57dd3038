package network

import (
	"crypto/rand"
	"encoding/hex"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"minidock/api"
	"minidock/bridge"
	"minidock/internal/errdefs"
)

// Network is one network. The exported fields are saved in
// <data-root>/network/networks.json; the addresses handed out are in
// <data-root>/network/ipam/<id>.json (package bridge's IPAM).
type Network struct {
	ID       string
	Name     string
	Driver   string // "bridge", "host" or "null"
	Bridge   string // the Linux bridge, for driver bridge
	Subnet   netip.Prefix
	Gateway  netip.Addr
	Internal bool
	Labels   map[string]string
	Created  time.Time
	// An overlay network's VXLAN identifier and UDP port. Overlay
	// networks live in the cluster store; the daemon mirrors them here
	// (followCluster) and keeps the copy in networks.json, so that after a
	// restart with the store away it still knows its containers' networks.
	VNI  uint32 `json:",omitempty"`
	Port uint16 `json:",omitempty"`

	ipam *bridge.IPAM
	dns  *bridge.DNSServer
	// broken says why a saved network could not be set up again (its
	// subnet now overlaps a route, say): it is kept, listed and removable,
	// but nothing can join it.
	broken error
}

// usable is nil when containers can join n.
func (n *Network) usable() error {
	if n.broken != nil {
		return errdefs.Conflictf("network %s cannot be used: %v", n.Name, n.broken)
	}
	return nil
}

// Builtin networks exist in every daemon and cannot be removed.
func (n *Network) Builtin() bool {
	return n.Name == "bridge" || n.Name == "host" || n.Name == "none"
}

// owner is what n's Linux bridge carries as its alias (bridge.SetOwner).
func (n *Network) owner() string { return "minidock network " + n.ID }

// userDefined networks (bridges and overlays) get the embedded DNS
// server, aliases and --ip; the default bridge does not, as in Docker.
func (n *Network) userDefined() bool {
	return n.Driver == "overlay" || n.Driver == "bridge" && n.Name != "bridge"
}

var networkNameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`) })

func newID() string {
	var b [32]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// CreateNetwork is `network create`: an overlay network for the whole
// cluster (createOverlay), or a bridge network (createBridge), after
// which the cluster learns this host's new route.
func (c *Controller) CreateNetwork(req api.NetworkCreateRequest) (*Network, error) {
	if req.Driver == "overlay" {
		return c.createOverlay(req)
	}
	n, err := c.createBridge(req)
	if err == nil {
		c.publishRoutes()
	}
	return n, err
}

// createBridge is a bridge network with its subnet (given, or the first
// free one of the address pools, clear of every network's, overlays'
// too), its Linux bridge br-<id>, its IPAM, its DNS server and its
// firewall rules.
func (c *Controller) createBridge(req api.NetworkCreateRequest) (*Network, error) {
	n, err := newNetwork(req)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, o := range c.networks {
		if o.Name == req.Name {
			return nil, errdefs.Conflictf("network with name %s already exists", req.Name)
		}
		if o.Driver == "bridge" && o.Bridge == n.Bridge {
			return nil, errdefs.Conflictf("bridge %s is used by network %s", n.Bridge, o.Name)
		}
	}
	if _, exists, err := bridge.LinkOwner(n.Bridge); err != nil {
		return nil, err
	} else if exists {
		return nil, errdefs.Conflictf("a link named %s exists on the host already (another daemon's or program's bridge?): a network makes a bridge of its own, name another (com.docker.network.bridge.name)", n.Bridge)
	}
	if n.Subnet.IsValid() {
		if err := bridge.ValidateSubnet(n.Subnet, n.Gateway); err != nil {
			return nil, errdefs.Invalidf("%v", err)
		}
		if err := c.subnetInUse(n.Subnet); err != nil {
			return nil, err
		}
	} else {
		sub, err := c.pickSubnet()
		if err != nil {
			return nil, err
		}
		n.Subnet = sub
	}
	if !n.Gateway.IsValid() {
		n.Gateway = bridge.DefaultGateway(n.Subnet)
	}
	if err := c.openBridge(n); err != nil {
		return nil, err
	}
	undo := func() {
		if n.dns != nil {
			n.dns.Close()
		}
		n.ipam.Remove()
		c.deleteBridge(n)
		delete(c.networks, n.ID)
	}
	if err := c.startDNS(n); err != nil {
		undo()
		return nil, err
	}
	c.networks[n.ID] = n
	if err := c.save(); err != nil {
		undo()
		return nil, err
	}
	if err := c.applyRules(nil); err != nil {
		undo()
		c.save()
		return nil, err
	}
	c.cfg.Event(n, "create", "")
	return n, nil
}

// bridgeNameOption (-o com.docker.network.bridge.name=NAME) names a
// bridge network's Linux bridge; it is the one driver option the bridge
// driver takes: any other is refused, not ignored.
const bridgeNameOption = "com.docker.network.bridge.name"

// newNetwork checks a create request and makes the record it asks for.
func newNetwork(req api.NetworkCreateRequest) (*Network, error) {
	if req.Name == "" || !networkNameRE().MatchString(req.Name) || len(req.Name) > 64 {
		return nil, errdefs.Invalidf("invalid network name %q: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", req.Name)
	}
	switch req.Driver {
	case "", "bridge":
	case "host", "null":
		return nil, errdefs.Forbiddenf("only one instance of %q network is allowed", req.Driver)
	default:
		return nil, errdefs.NotFoundf("plugin %q not found: minidock has the bridge and overlay drivers", req.Driver)
	}
	if req.EnableIPv6 != nil && *req.EnableIPv6 {
		return nil, errdefs.Invalidf("IPv6 networks are not supported")
	}
	n := &Network{ID: newID(), Name: req.Name, Driver: "bridge", Internal: req.Internal, Labels: req.Labels, Created: time.Now().UTC()}
	n.Bridge = "br-" + n.ID[:12]
	for k, v := range req.Options {
		if k != bridgeNameOption {
			return nil, errdefs.Invalidf("option %q is not supported by the bridge driver (only %s)", k, bridgeNameOption)
		}
		if v != "" {
			n.Bridge = v
		}
	}
	var err error
	if n.Subnet, n.Gateway, err = requestedSubnet(req.IPAM); err != nil {
		return nil, err
	}
	return n, nil
}

// requestedSubnet reads a create request's IPAM: the subnet and gateway
// asked for, if any (--subnet, --gateway).
func requestedSubnet(ipam *api.IPAM) (sub netip.Prefix, gw netip.Addr, err error) {
	if ipam == nil {
		return sub, gw, nil
	}
	if ipam.Driver != "" && ipam.Driver != "default" {
		return sub, gw, errdefs.NotFoundf("IPAM driver %q not found: only \"default\"", ipam.Driver)
	}
	if len(ipam.Config) > 1 {
		return sub, gw, errdefs.Invalidf("one IPv4 subnet per network only")
	}
	if len(ipam.Config) == 1 {
		cfg := ipam.Config[0]
		if sub, err = netip.ParsePrefix(cfg.Subnet); err != nil {
			return sub, gw, errdefs.Invalidf("invalid subnet %q: %v", cfg.Subnet, err)
		}
		if cfg.Gateway != "" {
			if gw, err = netip.ParseAddr(cfg.Gateway); err != nil {
				return sub, gw, errdefs.Invalidf("invalid gateway %q: %v", cfg.Gateway, err)
			}
		}
		if cfg.IPRange != "" {
			return sub, gw, errdefs.Invalidf("--ip-range is not supported")
		}
	}
	return sub, gw, nil
}

// RemoveNetwork is `network rm`: refused for the built-in networks and
// while a container holds an address on it.
func (c *Controller) RemoveNetwork(ref string) error {
	n, err := c.lookup(ref)
	if err != nil {
		return err
	}
	if n.Driver == "overlay" {
		return c.removeOverlay(n)
	}
	c.mu.Lock()
	err = c.remove(n)
	c.mu.Unlock()
	if err == nil {
		c.publishRoutes()
	}
	return err
}

// remove deletes n. Callers hold mu.
func (c *Controller) remove(n *Network) error {
	if n.Builtin() {
		return errdefs.Forbiddenf("%s is a pre-defined network and cannot be removed", n.Name)
	}
	var users []string
	for _, sb := range c.sandboxes {
		if ep := sb.Endpoints[n.Name]; ep != nil {
			users = append(users, sb.Name)
		}
	}
	if len(users) > 0 {
		sort.Strings(users)
		return errdefs.Forbiddenf("error while removing network: network %s id %s has active endpoints (%s)", n.Name, n.ID, strings.Join(users, ", "))
	}
	if n.dns != nil {
		n.dns.Close()
		n.dns = nil
	}
	delete(c.networks, n.ID)
	if err := c.deleteBridge(n); err != nil {
		c.networks[n.ID] = n
		c.startDNS(n)
		return err
	}
	if n.ipam != nil {
		n.ipam.Remove()
	} else {
		os.Remove(filepath.Join(c.cfg.Root, "ipam", n.ID+".json"))
	}
	c.cfg.Event(n, "destroy", "")
	if err := c.save(); err != nil {
		return err
	}
	return c.applyRules(nil)
}

// PruneNetworks removes the user-defined networks for which used is false
// (the daemon's: no container, in any state, names them), and returns
// their names.
// Overlay networks are removed for the whole cluster when no container
// anywhere uses them; one used on another host is left.
func (c *Controller) PruneNetworks(used func(networkID string) bool) ([]string, error) {
	c.mu.Lock()
	deleted := []string{}
	var overlays []*Network
	for _, n := range c.networks {
		if n.Builtin() || used(n.ID) {
			continue
		}
		if n.Driver == "overlay" {
			overlays = append(overlays, n)
			continue
		}
		if err := c.remove(n); err != nil {
			c.mu.Unlock()
			return deleted, err
		}
		deleted = append(deleted, n.Name)
	}
	c.mu.Unlock()
	if len(deleted) > 0 {
		c.publishRoutes()
	}
	for _, n := range overlays {
		err := c.removeOverlay(n)
		if errdefs.Is(err, errdefs.Forbidden) {
			continue // in use on another host
		}
		if err != nil {
			return deleted, err
		}
		deleted = append(deleted, n.Name)
	}
	sort.Strings(deleted)
	return deleted, nil
}

// Networks lists the networks that match the filters, by name, in the
// API's shape (without their containers). The filters are name
// (substring), id (prefix), driver, type (builtin or custom) and label.
func (c *Controller) Networks(f api.Filters) ([]api.Network, error) {
	if err := f.Only("name", "id", "driver", "type", "label"); err != nil {
		return nil, errdefs.Wrap(errdefs.InvalidParameter, err)
	}
	for _, v := range f["type"] {
		if v != "builtin" && v != "custom" {
			return nil, errdefs.Invalidf("invalid filter: 'type'='%s'", v)
		}
	}
	c.mu.Lock()
	out := []api.Network{}
	for _, n := range c.networks {
		typ := map[bool]string{true: "builtin", false: "custom"}[n.Builtin()]
		if f.Match("name", func(v string) bool { return strings.Contains(n.Name, v) }) &&
			f.Match("id", func(v string) bool { return strings.HasPrefix(n.ID, v) }) &&
			f.Match("driver", func(v string) bool { return n.Driver == v }) &&
			f.Match("type", func(v string) bool { return typ == v }) &&
			f.MatchLabels(n.Labels) {
			out = append(out, c.describe(n, false))
		}
	}
	c.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// NetworkInspect is `network inspect`: the network and the containers
// that hold an address on it (or run in its mode: host, none).
func (c *Controller) NetworkInspect(ref string) (api.Network, error) {
	n, err := c.lookup(ref)
	if err != nil {
		return api.Network{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.describe(n, true), nil
}

// describe is a network as the API shows it. Callers hold mu.
func (c *Controller) describe(n *Network, withContainers bool) api.Network {
	out := api.Network{Name: n.Name, ID: n.ID, Created: formatTime(n.Created), Scope: "local", Driver: n.Driver,
		Internal: n.Internal, IPAM: api.IPAM{Driver: "default", Config: []api.IPAMConfig{}},
		Containers: map[string]api.NetworkEndpoint{}, Options: map[string]string{}, Labels: n.Labels}
	if out.Labels == nil {
		out.Labels = map[string]string{}
	}
	switch n.Driver {
	case "bridge":
		out.IPAM.Config = append(out.IPAM.Config, api.IPAMConfig{Subnet: n.Subnet.String(), Gateway: n.Gateway.String()})
		out.Options[bridgeNameOption] = n.Bridge
	case "overlay":
		out.Scope = "global"
		out.IPAM.Config = append(out.IPAM.Config, api.IPAMConfig{Subnet: n.Subnet.String(), Gateway: n.Gateway.String()})
		out.Options[vniOption] = strconv.FormatUint(uint64(n.VNI), 10)
		if withContainers {
			out.Peers = c.networkPeers(n.ID)
		}
	}
	if !withContainers {
		return out
	}
	for _, sb := range c.sandboxes {
		if (n.Name == "host" || n.Name == "none") && sb.Mode == n.Name {
			out.Containers[sb.ContainerID] = api.NetworkEndpoint{Name: sb.Name, EndpointID: endpointID(sb.ContainerID, n)}
		}
		for _, ep := range sb.Endpoints {
			if ep.NetworkID == n.ID && ep.IP.IsValid() {
				out.Containers[sb.ContainerID] = api.NetworkEndpoint{Name: sb.Name, EndpointID: endpointID(sb.ContainerID, n),
					MacAddress: bridge.MACFor(ep.IP.Addr()).String(), IPv4Address: ep.IP.String()}
			}
		}
	}
	return out
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return "0001-01-01T00:00:00Z"
	}
	return t.Format(time.RFC3339Nano)
}
