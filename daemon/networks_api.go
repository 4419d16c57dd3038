package daemon

import (
	"net/http"
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
)

// The /networks endpoints of the Engine API.

var networkNameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`) })

// networkJSON is a network as the API shows it. Callers hold netMu.
func (d *Daemon) networkJSON(n *network, withContainers bool) api.Network {
	out := api.Network{Name: n.Name, ID: n.ID, Created: formatTime(n.Created), Scope: "local", Driver: n.Driver,
		Internal: n.Internal, IPAM: api.IPAM{Driver: "default", Config: []api.IPAMConfig{}},
		Containers: map[string]api.NetworkEndpoint{}, Options: map[string]string{}, Labels: n.Labels}
	if out.Labels == nil {
		out.Labels = map[string]string{}
	}
	if n.Driver == "bridge" {
		out.IPAM.Config = append(out.IPAM.Config, api.IPAMConfig{Subnet: n.Subnet.String(), Gateway: n.Gateway.String()})
		out.Options["com.docker.network.bridge.name"] = n.Bridge
	}
	if !withContainers {
		return out
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, c := range d.containers {
		if c.State.Status != "running" {
			continue
		}
		mode := netMode(&c.HostConfig)
		if (n.Name == "host" || n.Name == "none") && mode == n.Name {
			out.Containers[c.ID] = api.NetworkEndpoint{Name: c.Name, EndpointID: endpointID(c, n)}
		}
		for _, ep := range c.Networks {
			if ep.NetworkID == n.ID && ep.IP.IsValid() {
				out.Containers[c.ID] = api.NetworkEndpoint{Name: c.Name, EndpointID: endpointID(c, n),
					MacAddress: bridge.MACFor(ep.IP.Addr()).String(), IPv4Address: ep.IP.String()}
			}
		}
	}
	return out
}

// networkList is GET /networks, with filters name, id, driver, type
// (builtin or custom) and label.
func (d *Daemon) networkList(w http.ResponseWriter, r *http.Request) {
	filters, err := parseFilters(r.URL.Query().Get("filters"))
	if err != nil {
		writeError(w, err)
		return
	}
	for k, vs := range filters {
		switch k {
		case "name", "id", "driver", "label":
		case "type":
			for _, v := range vs {
				if v != "builtin" && v != "custom" {
					writeError(w, badRequest("invalid filter: 'type'='%s'", v))
					return
				}
			}
		default:
			writeError(w, badRequest("invalid filter '%s'", k))
			return
		}
	}
	d.netMu.Lock()
	out := []api.Network{}
	for _, n := range d.networks {
		typ := map[bool]string{true: "builtin", false: "custom"}[n.builtin()]
		if anyMatch(filters["name"], func(v string) bool { return strings.Contains(n.Name, v) }) &&
			anyMatch(filters["id"], func(v string) bool { return strings.HasPrefix(n.ID, v) }) &&
			anyMatch(filters["driver"], func(v string) bool { return n.Driver == v }) &&
			anyMatch(filters["type"], func(v string) bool { return typ == v }) &&
			allLabels(n.Labels, filters["label"]) {
			out = append(out, d.networkJSON(n, false))
		}
	}
	d.netMu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	writeJSON(w, http.StatusOK, out)
}

// anyMatch is true when vals is empty or one of them is ok.
func anyMatch(vals []string, ok func(string) bool) bool {
	for _, v := range vals {
		if ok(v) {
			return true
		}
	}
	return len(vals) == 0
}

func (d *Daemon) networkInspect(w http.ResponseWriter, r *http.Request) {
	d.netMu.Lock()
	defer d.netMu.Unlock()
	n, err := d.findNetwork(r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, d.networkJSON(n, true))
}

// networkCreate is POST /networks/create: a bridge network with its
// subnet (given, or the first free one of the address pools), its Linux
// bridge br-<id>, its IPAM, its DNS server and its firewall rules.
func (d *Daemon) networkCreate(w http.ResponseWriter, r *http.Request) {
	var req api.NetworkCreateRequest
	if err := decodeJSON(w, r, &req); err != nil {
		writeError(w, err)
		return
	}
	n, err := d.createNetwork(req)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, api.NetworkCreateResponse{ID: n.ID})
}

func (d *Daemon) createNetwork(req api.NetworkCreateRequest) (*network, error) {
	if req.Name == "" || !networkNameRE().MatchString(req.Name) || len(req.Name) > 64 {
		return nil, badRequest("invalid network name %q: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", req.Name)
	}
	switch req.Driver {
	case "", "bridge":
	case "host", "null":
		return nil, forbidden("only one instance of %q network is allowed", req.Driver)
	default:
		return nil, notFound("plugin %q not found: minidock has the bridge driver only", req.Driver)
	}
	if req.EnableIPv6 != nil && *req.EnableIPv6 {
		return nil, badRequest("IPv6 networks are not supported")
	}
	n := &network{ID: newID(), Name: req.Name, Driver: "bridge", Internal: req.Internal, Labels: req.Labels, Created: time.Now().UTC()}
	n.Bridge = "br-" + n.ID[:12]
	if b := req.Options["com.docker.network.bridge.name"]; b != "" {
		n.Bridge = b
	}
	if req.IPAM != nil {
		if req.IPAM.Driver != "" && req.IPAM.Driver != "default" {
			return nil, notFound("IPAM driver %q not found: only \"default\"", req.IPAM.Driver)
		}
		if len(req.IPAM.Config) > 1 {
			return nil, badRequest("one IPv4 subnet per network only")
		}
		if len(req.IPAM.Config) == 1 {
			cfg := req.IPAM.Config[0]
			sub, err := netip.ParsePrefix(cfg.Subnet)
			if err != nil {
				return nil, badRequest("invalid subnet %q: %v", cfg.Subnet, err)
			}
			n.Subnet = sub
			if cfg.Gateway != "" {
				if n.Gateway, err = netip.ParseAddr(cfg.Gateway); err != nil {
					return nil, badRequest("invalid gateway %q: %v", cfg.Gateway, err)
				}
			}
			if cfg.IPRange != "" {
				return nil, badRequest("--ip-range is not supported")
			}
		}
	}

	d.netMu.Lock()
	defer d.netMu.Unlock()
	for _, o := range d.networks {
		if o.Name == req.Name {
			return nil, conflict("network with name %s already exists", req.Name)
		}
		if o.Driver == "bridge" && o.Bridge == n.Bridge {
			return nil, conflict("bridge %s is used by network %s", n.Bridge, o.Name)
		}
	}
	if n.Subnet.IsValid() {
		if err := bridge.ValidateSubnet(n.Subnet, n.Gateway); err != nil {
			return nil, badRequest("%v", err)
		}
		if err := d.subnetInUse(n.Subnet); err != nil {
			return nil, err
		}
	} else {
		sub, err := d.pickSubnet()
		if err != nil {
			return nil, err
		}
		n.Subnet = sub
	}
	if !n.Gateway.IsValid() {
		n.Gateway = bridge.DefaultGateway(n.Subnet)
	}
	if err := d.openBridge(n); err != nil {
		return nil, err
	}
	undo := func() {
		if n.dns != nil {
			n.dns.Close()
		}
		n.ipam.Remove()
		bridge.DeleteBridge(n.Bridge)
		d.setNetwork(n.ID, nil)
	}
	if err := d.startDNS(n); err != nil {
		undo()
		return nil, err
	}
	d.setNetwork(n.ID, n)
	if err := d.saveNetworks(); err != nil {
		undo()
		return nil, err
	}
	if err := d.applyRules(); err != nil {
		undo()
		d.saveNetworks()
		return nil, err
	}
	d.emitNetwork(n, "create", "")
	return n, nil
}

// networkRemove is DELETE /networks/{id}: refused for the built-in
// networks and while a running container is on it.
func (d *Daemon) networkRemove(w http.ResponseWriter, r *http.Request) {
	d.netMu.Lock()
	defer d.netMu.Unlock()
	n, err := d.findNetwork(r.PathValue("id"))
	if err == nil {
		err = d.removeNetwork(n)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// removeNetwork deletes n. Callers hold netMu.
func (d *Daemon) removeNetwork(n *network) error {
	if n.builtin() {
		return forbidden("%s is a pre-defined network and cannot be removed", n.Name)
	}
	d.mu.Lock()
	var users []string
	for _, c := range d.containers {
		if ep := c.Networks[n.Name]; ep != nil && c.State.Status == "running" {
			users = append(users, c.Name)
		}
	}
	d.mu.Unlock()
	if len(users) > 0 {
		sort.Strings(users)
		return forbidden("error while removing network: network %s id %s has active endpoints (%s)", n.Name, n.ID, strings.Join(users, ", "))
	}
	if n.dns != nil {
		n.dns.Close()
		n.dns = nil
	}
	d.setNetwork(n.ID, nil)
	if err := bridge.DeleteBridge(n.Bridge); err != nil {
		d.setNetwork(n.ID, n)
		d.startDNS(n)
		return err
	}
	if n.ipam != nil {
		n.ipam.Remove()
	} else {
		os.Remove(filepath.Join(d.networkDir(), "ipam", n.ID+".json"))
	}
	d.emitNetwork(n, "destroy", "")
	if err := d.saveNetworks(); err != nil {
		return err
	}
	return d.applyRules()
}

// networkPrune is POST /networks/prune: user-defined networks no
// container (in any state) is on.
func (d *Daemon) networkPrune(w http.ResponseWriter, r *http.Request) {
	d.netMu.Lock()
	defer d.netMu.Unlock()
	used := map[string]bool{}
	d.mu.Lock()
	for _, c := range d.containers {
		for _, ep := range c.Networks {
			used[ep.NetworkID] = true
		}
	}
	d.mu.Unlock()
	report := api.NetworksPruneReport{NetworksDeleted: []string{}}
	for _, n := range d.networks {
		if n.builtin() || used[n.ID] {
			continue
		}
		if err := d.removeNetwork(n); err != nil {
			writeError(w, err)
			return
		}
		report.NetworksDeleted = append(report.NetworksDeleted, n.Name)
	}
	sort.Strings(report.NetworksDeleted)
	writeJSON(w, http.StatusOK, report)
}

// endpointRequest decodes a connect or disconnect body into req, finds
// the container it names (*container, once decoded) and locks it (no
// start or stop meanwhile) and the networks; nil when it has answered an
// error. The caller unlocks c.op and netMu.
func (d *Daemon) endpointRequest(w http.ResponseWriter, r *http.Request, req any, container *string) *Container {
	if err := decodeJSON(w, r, req); err != nil {
		writeError(w, err)
		return nil
	}
	c, err := d.lookup(*container)
	if err != nil {
		writeError(w, err)
		return nil
	}
	c.op.Lock()
	d.netMu.Lock()
	return c
}

// networkConnect is POST /networks/{id}/connect: the container gets an
// endpoint on the network (eth1, ...); a running one is wired at once.
func (d *Daemon) networkConnect(w http.ResponseWriter, r *http.Request) {
	var req api.NetworkConnectRequest
	c := d.endpointRequest(w, r, &req, &req.Container)
	if c == nil {
		return
	}
	defer c.op.Unlock()
	defer d.netMu.Unlock()
	if err := d.connect(c, r.PathValue("id"), req.EndpointConfig); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// connect adds an endpoint on network ref to c. Callers hold c.op and netMu.
func (d *Daemon) connect(c *Container, ref string, es *api.EndpointSettings) error {
	n, err := d.findNetwork(ref)
	if err != nil {
		return err
	}
	mode := netMode(&c.HostConfig)
	if n.Driver != "bridge" {
		return forbidden("container cannot be connected to the %s network", n.Name)
	}
	if err := n.usable(); err != nil {
		return err
	}
	if mode == "host" || mode == "none" || strings.HasPrefix(mode, "container:") {
		return forbidden("container %s has network mode %s: it cannot be connected to other networks", c.Name, mode)
	}
	d.mu.Lock()
	_, dup := c.Networks[n.Name]
	used := map[string]bool{}
	for _, ep := range c.Networks {
		used[ep.IfName] = true
	}
	running, pid := c.State.Status == "running", c.State.Pid
	d.mu.Unlock()
	if dup {
		return forbidden("endpoint with name %s already exists in network %s", c.Name, n.Name)
	}
	ifName := ""
	for i := 0; ifName == ""; i++ {
		if name := "eth" + strconv.Itoa(i); !used[name] {
			ifName = name
		}
	}
	ep, err := newEndpoint(n, es, ifName)
	if err != nil {
		return err
	}
	if running {
		ip, err := n.ipam.Allocate(c.ID, ep.WantIP)
		if err != nil {
			return err
		}
		ep.IP = netip.PrefixFrom(ip, n.Subnet.Bits())
		if err := d.attach(c, ep, bridge.NetNSPath(pid), false); err != nil {
			n.ipam.Release(ip)
			return err
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if c.Networks == nil {
		c.Networks = map[string]*Endpoint{}
	}
	c.Networks[n.Name] = ep
	if running {
		d.emitNetwork(n, "connect", c.ID)
	}
	return d.save(c)
}

// networkDisconnect is POST /networks/{id}/disconnect.
func (d *Daemon) networkDisconnect(w http.ResponseWriter, r *http.Request) {
	var req api.NetworkDisconnectRequest
	c := d.endpointRequest(w, r, &req, &req.Container)
	if c == nil {
		return
	}
	defer c.op.Unlock()
	defer d.netMu.Unlock()
	n, err := d.findNetwork(r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	d.mu.Lock()
	ep := c.Networks[n.Name]
	d.mu.Unlock()
	if ep == nil {
		writeError(w, forbidden("container %s is not connected to network %s", c.Name, n.Name))
		return
	}
	if ep.IP.IsValid() {
		if err := bridge.Detach(vethName(c, n)); err != nil {
			writeError(w, err)
			return
		}
		if n.ipam != nil {
			n.ipam.Release(ep.IP.Addr())
		}
	}
	d.mu.Lock()
	delete(c.Networks, n.Name)
	if len(c.Networks) == 0 {
		c.HostConfig.NetworkMode = "none" // as Docker: no network left
	} else if c.HostConfig.NetworkMode == n.Name {
		for name := range c.Networks {
			c.HostConfig.NetworkMode = name
			break
		}
	}
	err = d.save(c)
	if ep.IP.IsValid() {
		d.emitNetwork(n, "disconnect", c.ID)
	}
	published := len(c.Ports) > 0
	d.mu.Unlock()
	if err != nil {
		writeError(w, err)
		return
	}
	if published {
		d.applyRules()
	}
	w.WriteHeader(http.StatusOK)
}
