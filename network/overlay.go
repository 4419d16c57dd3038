package network

// Overlay networks: one network for the containers of several hosts
// (docs/overlay-network.md). A daemon started with --cluster-store joins a
// cluster whose state is in etcd (package cluster) and runs the data path
// of package vxlan. The overlay networks live in etcd; the controller
// mirrors them into its own table (followCluster), so that `network ls`,
// name lookups and the DNS server treat them like the local networks, and
// works with the vxlan.Driver in the order a container lives:
//
//	network create -d overlay   createOverlay   Driver.CreateNetwork (etcd)
//	start  Join                 reserveOverlay  Driver.Reserve: an address from etcd's IPAM
//	       Wire                 attachOverlay   Host.Join: eth0 into the network's namespace,
//	                            ensureDNS       its DNS server there,
//	                            connectGateway  Host.ConnectGateway: the way out
//	exit   Leave                leaveOverlays   Host.Leave, Host.DisconnectGateway;
//	                            releaseInCluster  Driver.Release (etcd), later if etcd is away
//	network rm                  removeOverlay   Driver.RemoveNetwork (etcd)
//
// Nothing of it exists, dials or runs without --cluster-store.

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"minidock/api"
	"minidock/bridge"
	"minidock/cluster"
	"minidock/internal/errdefs"
	"minidock/vxlan"
)

// The option of `network create -d overlay -o` that asks for a VNI, as
// Docker's overlay driver named it.
const vniOption = "com.docker.network.driver.overlay.vxlanid_list"

// clusterTimeout bounds each request to etcd: what a network operation
// waits before it says the cluster store does not answer.
const clusterTimeout = 3 * time.Second

// clusterSide is the controller's part of the cluster.
type clusterSide struct {
	drv *vxlan.Driver
	// under the controller's mu:
	dns    map[string]*bridge.DNSServer // by network ID: its DNS server in the network's namespace here
	claims map[string]bool              // "<network ID>/<container ID>": endpoints held or being made here
	// the background loop (clusterLoop), once started
	started bool
	kick    chan struct{} // a reconcile is wanted
	stop    chan struct{}
	done    chan struct{}
}

func claimKey(netID, containerID string) string { return netID + "/" + containerID }

// clusterOptions are the --cluster-store-opt keys minidock knows, with
// classic Docker's names.
type clusterOptions struct {
	ttl    time.Duration // discovery.ttl=SECONDS: the member's lease
	prefix string        // kv.path=/PREFIX/: where the keys live
}

func parseClusterOpts(opts []string) (clusterOptions, error) {
	var o clusterOptions
	for _, kv := range opts {
		k, v, ok := strings.Cut(kv, "=")
		switch {
		case !ok:
			return o, fmt.Errorf("--cluster-store-opt %q: want KEY=VALUE", kv)
		case k == "discovery.ttl":
			secs, err := strconv.Atoi(v)
			if err != nil || secs < 2 {
				return o, fmt.Errorf("--cluster-store-opt %s: want a whole number of seconds, 2 or more", kv)
			}
			o.ttl = time.Duration(secs) * time.Second
		case k == "kv.path":
			o.prefix = "/" + strings.Trim(v, "/") + "/"
		default:
			return o, fmt.Errorf("--cluster-store-opt %q: unknown option %q (minidock knows discovery.ttl and kv.path)", kv, k)
		}
	}
	return o, nil
}

// openCluster checks the cluster flags and makes the overlay driver
// (vxlan.New: no contact with etcd yet; the advertise address must be one
// of this host's). Bad flags stop the daemon; an etcd that does not answer
// does not (startCluster).
func (c *Controller) openCluster() error {
	cfg := c.cfg
	if cfg.ClusterStore == "" {
		if cfg.ClusterAdvertise != "" || len(cfg.ClusterOpts) > 0 {
			return errors.New("--cluster-advertise and --cluster-store-opt need --cluster-store etcd://HOST:PORT")
		}
		return nil
	}
	if cfg.ClusterAdvertise == "" {
		return fmt.Errorf("--cluster-store %s needs --cluster-advertise ADDR|IFACE: this host's address that the other members reach", cfg.ClusterStore)
	}
	addr, err := vxlan.ParseAdvertise(cfg.ClusterAdvertise)
	if err != nil {
		return err
	}
	opts, err := parseClusterOpts(cfg.ClusterOpts)
	if err != nil {
		return err
	}
	name, err := os.Hostname()
	if err != nil {
		return fmt.Errorf("cluster member name: %w", err)
	}
	cs := &clusterSide{dns: map[string]*bridge.DNSServer{}, claims: map[string]bool{},
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	cs.drv, err = vxlan.New(vxlan.DriverConfig{
		StoreURL: cfg.ClusterStore, Prefix: opts.prefix, Timeout: clusterTimeout, TTL: opts.ttl, Log: cfg.Log,
		Host: vxlan.Config{Member: name, Addr: addr,
			NetNSDir: filepath.Join(cfg.ExecRoot, "netns"), StateDir: filepath.Join(cfg.Root, "vxlan")},
		Changed: c.followCluster,
	})
	if err != nil {
		return fmt.Errorf("--cluster-store %s: %w", cfg.ClusterStore, err)
	}
	c.cluster = cs
	return nil
}

// restoreCluster, from Restore (mu held), with the running containers'
// sandboxes in c.sandboxes: their overlay endpoints are claimed again and
// their networks' DNS servers started in the namespaces that survived
// the last daemon; gateway addresses and namespaces of containers that
// ended meanwhile are given back.
func (c *Controller) restoreCluster() {
	cs := c.cluster
	running := map[string]bool{}
	for _, sb := range c.sandboxes {
		for _, ep := range sb.Endpoints {
			if n := c.networks[ep.NetworkID]; n != nil && n.Driver == "overlay" && ep.IP.IsValid() {
				running[sb.ContainerID] = true
				cs.claims[claimKey(n.ID, sb.ContainerID)] = true
				if err := c.ensureDNS(n); err != nil {
					c.cfg.Log.Printf("network %s: %v", n.Name, err)
				}
			}
		}
	}
	host := cs.drv.Host()
	if err := host.PruneGateway(func(id string) bool { return running[id] }); err != nil {
		c.cfg.Log.Printf("overlay gateway: %v", err)
	}
	if err := host.RemoveUnused(); err != nil {
		c.cfg.Log.Printf("overlay namespaces: %v", err)
	}
}

// startCluster joins the cluster once, then leaves the rest to
// clusterLoop: joining when etcd answers, if it did not, and putting this
// host's endpoints in etcd right (reconcileCluster).
func (c *Controller) startCluster() {
	cs := c.cluster
	if cs == nil {
		return
	}
	if c.joinCluster() {
		cs.kick <- struct{}{}
	}
	cs.started = true
	go c.clusterLoop()
}

// joinCluster tries to join (vxlan.Driver.Join) and says how it went.
func (c *Controller) joinCluster() bool {
	drv := c.cluster.drv
	if err := drv.Join(); err != nil {
		c.cfg.Log.Printf("cluster store %s: %v; serving the local networks, joining when it answers", drv.StoreURL(), err)
		return false
	}
	c.cfg.Log.Printf("joined the cluster %s as %s", drv.StoreURL(), drv.Member())
	return true
}

// clusterLoop runs while the daemon does: every 2 s, it tries to join if
// not joined yet, and reconciles when asked (kick) until that succeeds.
func (c *Controller) clusterLoop() {
	cs := c.cluster
	defer close(cs.done)
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	pending, lastErr := false, ""
	for {
		select {
		case <-cs.stop:
			return
		case <-cs.kick:
			pending = true
		case <-tick.C:
		}
		if joined, _ := cs.drv.Joined(); !joined {
			if err := cs.drv.Join(); err != nil {
				if err.Error() != lastErr { // said once, not every 2 s
					c.cfg.Log.Printf("cluster store %s: %v", cs.drv.StoreURL(), err)
					lastErr = err.Error()
				}
				continue
			}
			c.cfg.Log.Printf("joined the cluster %s as %s", cs.drv.StoreURL(), cs.drv.Member())
			pending = true
		}
		if pending {
			if err := c.reconcileCluster(); err != nil {
				c.cfg.Log.Printf("cluster: %v (trying again)", err)
			} else {
				pending = false
			}
		}
	}
}

// reconcileCluster makes this host's endpoints in etcd match the
// containers that run here: one whose container does not run (it ended
// while the daemon was away, or while etcd was) is removed; a running
// container's that is missing is made again with its address.
func (c *Controller) reconcileCluster() error {
	cs := c.cluster
	st := cs.drv.State()
	if st == nil {
		return errors.New("no cluster state yet")
	}
	me := cs.drv.Member()
	type held struct {
		ep   cluster.Endpoint
		name string
	}
	c.mu.Lock()
	claims := maps.Clone(cs.claims)
	want := map[string]held{}
	for _, sb := range c.sandboxes {
		for _, ep := range sb.Endpoints {
			if n := c.networks[ep.NetworkID]; n != nil && n.Driver == "overlay" && ep.IP.IsValid() {
				want[claimKey(n.ID, sb.ContainerID)] = held{clusterEndpoint(sb, ep), n.Name}
			}
		}
	}
	c.mu.Unlock()
	var errs []error
	for netID, eps := range st.Endpoints {
		for id, ep := range eps {
			if ep.Host != me || claims[claimKey(netID, id)] {
				continue
			}
			c.cfg.Log.Printf("overlay endpoint %s (%v) of network %.12s: its container does not run here: removed", ep.Name, ep.Addr, netID)
			if err := cs.drv.Release(netID, id); err != nil {
				errs = append(errs, err)
				continue
			}
			if err := cs.drv.Host().Leave(netID, id); err != nil {
				errs = append(errs, err)
			}
		}
	}
	for key, h := range want {
		if _, ok := st.Endpoints[h.ep.Network][h.ep.ID]; ok || !claims[key] {
			continue
		}
		if _, err := cs.drv.Reserve(h.ep.Network, h.ep); err != nil {
			errs = append(errs, fmt.Errorf("container %s on network %s: its endpoint was missing in the cluster store: %w", h.ep.Name, h.name, err))
		} else {
			c.cfg.Log.Printf("container %s on network %s: its endpoint was missing in the cluster store: made again", h.ep.Name, h.name)
		}
	}
	return errors.Join(errs...)
}

// clusterEndpoint is sandbox sb's endpoint ep as the cluster stores it:
// the container's ID, name, short ID and aliases (the names the DNS
// servers answer to on every host), and its address if it has one.
func clusterEndpoint(sb *Sandbox, ep *Endpoint) cluster.Endpoint {
	ce := cluster.Endpoint{ID: sb.ContainerID, Network: ep.NetworkID, Name: sb.Name,
		Aliases: append([]string{sb.ContainerID[:12]}, ep.Aliases...)}
	switch {
	case ep.IP.IsValid():
		ce.Addr = ep.IP.Addr()
		ce.MAC = bridge.MACFor(ce.Addr).String()
	case ep.WantIP.IsValid():
		ce.Addr = ep.WantIP
	}
	return ce
}

// followCluster is the watch's callback (vxlan.DriverConfig.Changed): the
// overlay networks of the state become the controller's, and those gone
// from it go, each with its event; the table is saved when it changed.
func (c *Controller) followCluster(st *cluster.State, evs []cluster.Event) {
	c.mu.Lock()
	defer c.mu.Unlock()
	changed := false
	for id, cn := range st.Networks {
		if c.networks[id] != nil {
			continue
		}
		n := &Network{ID: cn.ID, Name: cn.Name, Driver: "overlay", Subnet: cn.Subnet, Gateway: cn.Gateway,
			Labels: cn.Labels, Created: cn.Created, VNI: cn.VNI, Port: cn.Port}
		for _, o := range c.networks {
			if o.Name == n.Name {
				c.cfg.Log.Printf("overlay network %s (%.12s) has the name of a local network: use its ID", n.Name, n.ID)
			}
		}
		c.networks[id] = n
		c.cfg.Event(n, "create", "")
		changed = true
	}
	for id, n := range c.networks {
		if _, ok := st.Networks[id]; ok || n.Driver != "overlay" {
			continue
		}
		c.closeDNS(id)
		delete(c.networks, id)
		c.cfg.Event(n, "destroy", "")
		changed = true
	}
	if changed {
		if err := c.save(); err != nil {
			c.cfg.Log.Print(err)
		}
	}
}

// clusterError gives a cluster error the engine's kind (and so its HTTP
// status): etcd not answering is 503, a name, VNI or subnet taken 409, a
// network still used 403, bad input 400.
func clusterError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, cluster.ErrUnavailable):
		return errdefs.Wrap(errdefs.Unavailable, err)
	case errors.Is(err, cluster.ErrNotFound):
		return errdefs.Wrap(errdefs.NotFound, err)
	case errors.Is(err, cluster.ErrConflict):
		return errdefs.Wrap(errdefs.Conflict, err)
	case errors.Is(err, cluster.ErrInUse):
		return errdefs.Wrap(errdefs.Forbidden, err)
	case errors.Is(err, cluster.ErrInvalid):
		return errdefs.Wrap(errdefs.InvalidParameter, err)
	}
	return err
}

// notInCluster is the answer to an overlay request of a daemon without a
// cluster store.
func notInCluster() error {
	return errdefs.Forbiddenf("this daemon is not in a cluster: overlay networks need a daemon started with --cluster-store etcd://HOST:PORT and --cluster-advertise ADDR|IFACE")
}

// createOverlay is `network create -d overlay`: the request is checked
// here (name, subnet, options; a local network's name or subnet), the
// rest by the cluster (vxlan.Driver.CreateNetwork: the other overlay
// networks, every member's routes, the VNI), which stores it for every
// member; the watch brings it into the table before this returns.
func (c *Controller) createOverlay(req api.NetworkCreateRequest) (*Network, error) {
	if c.cluster == nil {
		return nil, notInCluster()
	}
	if req.Name == "" || !networkNameRE().MatchString(req.Name) || len(req.Name) > 64 {
		return nil, errdefs.Invalidf("invalid network name %q: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", req.Name)
	}
	if req.EnableIPv6 != nil && *req.EnableIPv6 {
		return nil, errdefs.Invalidf("IPv6 networks are not supported")
	}
	if req.Internal {
		return nil, errdefs.Invalidf("--internal is not supported for overlay networks")
	}
	cn := cluster.Network{Name: req.Name, Labels: req.Labels}
	for k, v := range req.Options {
		if k != vniOption {
			return nil, errdefs.Invalidf("option %q is not supported by the overlay driver (only %s)", k, vniOption)
		}
		vni, err := strconv.ParseUint(v, 10, 32)
		if err != nil || vni == 0 || vni > cluster.MaxVNI {
			return nil, errdefs.Invalidf("option %s=%q: want one VNI, 1 to %d", k, v, cluster.MaxVNI)
		}
		cn.VNI = uint32(vni)
	}
	var err error
	if cn.Subnet, cn.Gateway, err = requestedSubnet(req.IPAM); err != nil {
		return nil, err
	}
	c.mu.Lock()
	for _, o := range c.networks {
		if o.Name == req.Name {
			c.mu.Unlock()
			return nil, errdefs.Conflictf("network with name %s already exists", req.Name)
		}
	}
	if cn.Subnet.IsValid() {
		if err := c.subnetInUse(cn.Subnet); err != nil {
			c.mu.Unlock()
			return nil, err
		}
	}
	c.mu.Unlock()
	cn, err = c.cluster.drv.CreateNetwork(cn)
	if err != nil {
		return nil, clusterError(err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if n := c.networks[cn.ID]; n != nil {
		return n, nil
	}
	// the watch has not brought it yet (etcd went away meanwhile)
	return &Network{ID: cn.ID, Name: cn.Name, Driver: "overlay", Subnet: cn.Subnet, Gateway: cn.Gateway,
		Labels: cn.Labels, Created: cn.Created, VNI: cn.VNI, Port: cn.Port}, nil
}

// removeOverlay is `network rm` of an overlay network: refused while a
// container of this host is on it, then removed for every member if no
// container anywhere uses it (one etcd transaction).
func (c *Controller) removeOverlay(n *Network) error {
	c.mu.Lock()
	var users []string
	for _, sb := range c.sandboxes {
		if ep := sb.Endpoints[n.Name]; ep != nil && ep.NetworkID == n.ID {
			users = append(users, sb.Name)
		}
	}
	c.mu.Unlock()
	if len(users) > 0 {
		sort.Strings(users)
		return errdefs.Forbiddenf("error while removing network: network %s id %s has active endpoints (%s)", n.Name, n.ID, strings.Join(users, ", "))
	}
	if c.cluster == nil {
		return notInCluster()
	}
	if err := c.cluster.drv.RemoveNetwork(n.ID); err != nil {
		return clusterError(err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.networks[n.ID] != nil { // the watch has not taken it away yet
		delete(c.networks, n.ID)
		c.cfg.Event(n, "destroy", "")
		return c.save()
	}
	return nil
}

// lookup is find, and for a name not known here, the cluster store: an
// overlay network created a moment ago on another host, which the watch
// has not brought yet.
func (c *Controller) lookup(ref string) (*Network, error) {
	c.mu.Lock()
	n, err := c.find(ref)
	c.mu.Unlock()
	if err == nil || !errdefs.Is(err, errdefs.NotFound) || c.cluster == nil {
		return n, err
	}
	if joined, _ := c.cluster.drv.Joined(); !joined {
		return nil, err
	}
	if _, cerr := c.cluster.drv.Network(ref); cerr != nil { // it waits for the watch, which brings it here
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.find(ref)
}

// reserveOverlay, at start (Join), takes each overlay endpoint's address
// from the cluster (Driver.Reserve), outside the controller's lock: etcd
// may take its time, or not answer (then the start fails, 503). An
// endpoint of the container left in etcd by a run that ended while etcd
// was away is removed first.
func (c *Controller) reserveOverlay(sb *Sandbox, eps []*Endpoint) error {
	cs := c.cluster
	if cs == nil {
		return notInCluster()
	}
	for _, ep := range eps {
		c.mu.Lock()
		cs.claims[claimKey(ep.NetworkID, sb.ContainerID)] = true
		c.mu.Unlock()
		ce, err := cs.drv.Reserve(ep.NetworkID, clusterEndpoint(sb, ep))
		if errors.Is(err, cluster.ErrConflict) && c.staleEndpoint(ep.NetworkID, sb.ContainerID) {
			if err = cs.drv.Release(ep.NetworkID, sb.ContainerID); err == nil {
				ce, err = cs.drv.Reserve(ep.NetworkID, clusterEndpoint(sb, ep))
			}
		}
		if err != nil {
			c.mu.Lock()
			delete(cs.claims, claimKey(ep.NetworkID, sb.ContainerID))
			c.mu.Unlock()
			return fmt.Errorf("container %s: %w", sb.Name, clusterError(err))
		}
		c.mu.Lock()
		if n := c.networks[ep.NetworkID]; n != nil {
			ep.IP = netip.PrefixFrom(ce.Addr, n.Subnet.Bits())
		}
		c.mu.Unlock()
		if !ep.IP.IsValid() {
			c.releaseInCluster([]cluster.Endpoint{ce})
			return errdefs.NotFoundf("network %.12s of container %s was removed meanwhile", ep.NetworkID, sb.Name)
		}
	}
	return nil
}

// staleEndpoint reports whether the cluster holds an endpoint of this
// host for container id on network netID (a run that ended while etcd
// was away, not yet reconciled).
func (c *Controller) staleEndpoint(netID, id string) bool {
	st := c.cluster.drv.State()
	if st == nil {
		return false
	}
	ep, ok := st.Endpoints[netID][id]
	return ok && ep.Host == c.cluster.drv.Member()
}

// attachOverlay plugs ep, reserved already, into the namespace at nsPath:
// a veth pair from the network's namespace on this host (Host.Join, which
// makes the namespace, its bridge and VXLAN device for the network's first
// container here), then the network's DNS server there. Callers hold mu.
func (c *Controller) attachOverlay(sb *Sandbox, ep *Endpoint, n *Network, nsPath string) error {
	if c.cluster == nil {
		return notInCluster()
	}
	cn := cluster.Network{ID: n.ID, Name: n.Name, Subnet: n.Subnet, Gateway: n.Gateway, VNI: n.VNI, Port: n.Port}
	if err := c.cluster.drv.Host().Join(cn, clusterEndpoint(sb, ep), nsPath, ep.IfName); err != nil {
		return err
	}
	return c.ensureDNS(n)
}

// ensureDNS starts overlay network n's DNS server if it has none here: on
// its gateway address, port 53, inside the network's namespace on this
// host (where br0 holds the gateway), so only the network's containers
// here reach it. Its answers come from the cluster (dnsLookup). Callers
// hold mu.
func (c *Controller) ensureDNS(n *Network) error {
	cs := c.cluster
	if cs.dns[n.ID] != nil {
		return nil
	}
	var srv *bridge.DNSServer
	err := cs.drv.Host().InSandbox(n.ID, func() (err error) {
		srv, err = bridge.StartDNS(netip.AddrPortFrom(n.Gateway, 53), c.dnsLookup(n), c.upstreams)
		return err
	})
	if err != nil {
		return fmt.Errorf("embedded DNS of network %s on %s:53: %w", n.Name, n.Gateway, err)
	}
	cs.dns[n.ID] = srv
	return nil
}

// closeDNS stops network netID's DNS server here; its socket would keep
// the network's namespace alive. Callers hold mu.
func (c *Controller) closeDNS(netID string) {
	if c.cluster == nil {
		return
	}
	if srv := c.cluster.dns[netID]; srv != nil {
		srv.Close()
		delete(c.cluster.dns, netID)
	}
}

// localUsers counts the running containers here, but container but,
// with an address on network netID. Callers hold mu.
func (c *Controller) localUsers(netID, but string) int {
	users := 0
	for id, sb := range c.sandboxes {
		for _, ep := range sb.Endpoints {
			if id != but && ep.NetworkID == netID && ep.IP.IsValid() {
				users++
			}
		}
	}
	return users
}

// needsGateway: a container whose networks are all overlays (or internal
// bridges) has no way out of its own; it gets the gateway bridge.
func (c *Controller) needsGateway(sb *Sandbox) bool {
	overlay := false
	for _, ep := range sb.Endpoints {
		n := c.networks[ep.NetworkID]
		switch {
		case n == nil:
		case n.Driver == "overlay":
			overlay = true
		case n.Driver == "bridge" && !n.Internal:
			return false
		}
	}
	return overlay && c.cluster != nil
}

// connectGateway gives a container on overlay networks only its way out
// (Host.ConnectGateway): an interface of its own on the gateway bridge,
// under the first free ethN, with the default route. Callers hold mu.
func (c *Controller) connectGateway(sb *Sandbox, nsPath string) error {
	if !c.needsGateway(sb) {
		return nil
	}
	sb.GatewayIf = "" // its name from an earlier run is free
	sb.GatewayIf = sb.nextIfName()
	if _, err := c.cluster.drv.Host().ConnectGateway(sb.ContainerID, nsPath, sb.GatewayIf); err != nil {
		sb.GatewayIf = ""
		return err
	}
	return nil
}

// leaveOverlays, when a container has stopped (Leave) or is disconnected:
// for each of its overlay endpoints in only (all if only is ""), the veth
// pair goes (Host.Leave; the last container of a network here takes the
// network's namespace with it, after its DNS server), its claim is
// dropped; the gateway goes when no overlay endpoint is left. It returns
// the endpoints to remove from the cluster, which the caller does
// without the lock (releaseInCluster). Callers hold mu.
func (c *Controller) leaveOverlays(sb *Sandbox, only string) (release []cluster.Endpoint) {
	cs := c.cluster
	if cs == nil {
		return nil
	}
	left, had := 0, false
	for _, ep := range sb.Endpoints {
		n := c.networks[ep.NetworkID]
		if n == nil || n.Driver != "overlay" {
			continue
		}
		had = true
		if only != "" && ep.NetworkID != only {
			if ep.IP.IsValid() {
				left++
			}
			continue
		}
		key := claimKey(ep.NetworkID, sb.ContainerID)
		if !ep.IP.IsValid() && !cs.claims[key] {
			continue
		}
		delete(cs.claims, key)
		if ep.IP.IsValid() {
			c.cfg.Event(n, "disconnect", sb.ContainerID)
		}
		if c.localUsers(n.ID, sb.ContainerID) == 0 {
			c.closeDNS(n.ID)
		}
		if err := cs.drv.Host().Leave(n.ID, sb.ContainerID); err != nil {
			c.cfg.Log.Print(err)
		}
		release = append(release, cluster.Endpoint{ID: sb.ContainerID, Network: n.ID, Name: sb.Name})
		ep.IP = netip.Prefix{}
	}
	if left == 0 && (had || sb.GatewayIf != "") {
		if err := cs.drv.Host().DisconnectGateway(sb.ContainerID); err != nil {
			c.cfg.Log.Print(err)
		}
		sb.GatewayIf = ""
	}
	return release
}

// releaseInCluster removes endpoints from the cluster (Driver.Release).
// One that etcd does not take now is left to the reconcile, which tries
// until etcd answers: a container's exit does not wait for etcd.
func (c *Controller) releaseInCluster(eps []cluster.Endpoint) {
	for _, ep := range eps {
		if err := c.cluster.drv.Release(ep.Network, ep.ID); err != nil {
			c.cfg.Log.Printf("container %s: %v (removed when the cluster store answers)", ep.Name, err)
			select {
			case c.cluster.kick <- struct{}{}:
			default:
			}
		}
	}
}

// connectOverlay is `network connect` to an overlay network. A running
// container (pid > 0) gets its address from the cluster and its
// interface at once; a stopped one, at its next start.
func (c *Controller) connectOverlay(sb *Sandbox, n *Network, es *api.EndpointSettings, pid int) error {
	if c.cluster == nil {
		return notInCluster()
	}
	if err := sb.checkConnect(n); err != nil {
		return err
	}
	c.mu.Lock()
	ep, err := newEndpoint(n, es, sb.nextIfName())
	c.mu.Unlock()
	if err != nil {
		return err
	}
	if pid > 0 {
		if err := c.reserveOverlay(sb, []*Endpoint{ep}); err != nil {
			return err
		}
		c.mu.Lock()
		err := c.attachOverlay(sb, ep, n, bridge.NetNSPath(pid))
		c.mu.Unlock()
		if err != nil {
			c.mu.Lock()
			delete(c.cluster.claims, claimKey(n.ID, sb.ContainerID))
			c.mu.Unlock()
			c.releaseInCluster([]cluster.Endpoint{{ID: sb.ContainerID, Network: n.ID, Name: sb.Name}})
			return err
		}
	}
	c.mu.Lock()
	c.addEndpoint(sb, n, ep, pid > 0)
	c.mu.Unlock()
	return nil
}

// disconnectOverlay is `network disconnect` from an overlay network. A
// running container's endpoint goes from the cluster first: with etcd
// away it fails (503) and nothing changes.
func (c *Controller) disconnectOverlay(sb *Sandbox, n *Network) error {
	c.mu.Lock()
	ep := sb.Endpoints[n.Name]
	c.mu.Unlock()
	if ep == nil {
		return errdefs.Forbiddenf("container %s is not connected to network %s", sb.Name, n.Name)
	}
	if ep.IP.IsValid() {
		if c.cluster == nil {
			return notInCluster()
		}
		if err := c.cluster.drv.Release(n.ID, sb.ContainerID); err != nil {
			return fmt.Errorf("disconnect %s from network %s: %w", sb.Name, n.Name, clusterError(err))
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.leaveOverlays(sb, n.ID)
	return c.dropEndpoint(sb, n)
}

// gatewayPort is where a published port of a container on overlay
// networks only leads: its address on the gateway bridge. Callers hold
// mu.
func (c *Controller) gatewayPort(sb *Sandbox) (bridge.Network, netip.Addr, bool) {
	if c.cluster == nil || sb.GatewayIf == "" {
		return bridge.Network{}, netip.Addr{}, false
	}
	h := c.cluster.drv.Host()
	addr, ok := h.GatewayAddr(sb.ContainerID)
	return h.GatewayNetwork(), addr, ok
}

// ClusterInfo is what `info` shows of the cluster: the store, this host's
// advertise address, the members, and a warning while not joined.
func (c *Controller) ClusterInfo() (store, advertise string, peers []api.PeerInfo, warning string) {
	if c.cluster == nil {
		return "", "", nil, ""
	}
	drv := c.cluster.drv
	for _, m := range drv.Members() {
		peers = append(peers, api.PeerInfo{Name: m.Name, IP: m.Addr.String()})
	}
	if joined, err := drv.Joined(); !joined {
		warning = fmt.Sprintf("not in the cluster %s: %v", drv.StoreURL(), err)
		if err == nil {
			warning = fmt.Sprintf("not in the cluster %s yet", drv.StoreURL())
		}
	}
	return drv.StoreURL(), c.cfg.ClusterAdvertise, peers, warning
}

// networkPeers are the members that run a container of overlay network
// netID, for its inspect.
func (c *Controller) networkPeers(netID string) []api.PeerInfo {
	if c.cluster == nil {
		return nil
	}
	st := c.cluster.drv.State()
	if st == nil {
		return nil
	}
	seen := map[string]bool{}
	var peers []api.PeerInfo
	for _, ep := range st.Endpoints[netID] {
		if m, ok := st.Members[ep.Host]; ok && !seen[ep.Host] {
			seen[ep.Host] = true
			peers = append(peers, api.PeerInfo{Name: m.Name, IP: m.Addr.String()})
		}
	}
	sort.Slice(peers, func(i, j int) bool { return peers[i].Name < peers[j].Name })
	return peers
}

// publishRoutes tells the cluster this host's routes again after a bridge
// network came or went, so that no overlay network is made over it.
func (c *Controller) publishRoutes() {
	if c.cluster == nil {
		return
	}
	if err := c.cluster.drv.UpdateRoutes(); err != nil {
		c.cfg.Log.Printf("cluster: publish this host's routes: %v", err)
	}
}

// closeCluster, when the daemon stops: the loop ends, the DNS servers
// close. With containers running (busy), the member's lease is left to
// run out (a daemon back before it does takes its record over: the
// others keep reaching its containers); else it leaves at once.
func (c *Controller) closeCluster(busy bool) {
	cs := c.cluster
	if cs == nil {
		return
	}
	if cs.started {
		close(cs.stop)
		<-cs.done
	}
	c.mu.Lock()
	for id := range cs.dns {
		c.closeDNS(id)
	}
	c.mu.Unlock()
	if busy {
		cs.drv.Stop()
		return
	}
	if err := cs.drv.Close(); err != nil {
		c.cfg.Log.Print(err)
	}
}
