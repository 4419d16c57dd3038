package vxlan

// Several hosts on one machine. The underlay is a network namespace with a
// bridge ul0 (10.99.0.1/24) and one etcd (Debian's etcd-server) listening
// on 10.99.0.1:2379. Each "host" is a network namespace with its own veth
// eth0 into ul0 (10.99.0.11, .12, ...) and its own process: this test
// binary started again inside the host's namespace (hostMain), which runs
// a Driver as a daemon would and takes orders from the test on its stdin.
// "Containers" are network namespaces made by the test; the test sends
// traffic from inside them. All namespaces are anonymous, held by file
// descriptors of the test process, so a killed test leaves none.

import (
	"bufio"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"minidock/bridge"
	"minidock/cluster"
	"minidock/cluster/etcdtest"
	"minidock/internal/testutil"
)

const (
	underlayBridge = "ul0"
	testTTL        = 2 * time.Second
	testTable      = "mdvxtest"
)

var underlayGateway = netip.MustParseAddr("10.99.0.1")

func TestMain(m *testing.M) {
	if spec := os.Getenv("VXLAN_TEST_HOST"); spec != "" {
		os.Exit(hostMain(spec))
	}
	os.Exit(m.Run())
}

// netNS is an anonymous network namespace held open by its fd.
type netNS struct {
	h    netns.NsHandle
	path string // /proc/<pid>/fd/<fd>: what other processes open too
}

// newNetNS makes an empty network namespace with lo up.
func newNetNS(t testing.TB) *netNS {
	t.Helper()
	ch := make(chan netns.NsHandle)
	errc := make(chan error)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		h, err := netns.New()
		if err != nil {
			errc <- err
			return
		}
		ch <- h
	}()
	var n *netNS
	select {
	case h := <-ch:
		n = &netNS{h: h, path: fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), int(h))}
	case err := <-errc:
		t.Fatalf("new network namespace: %v", err)
	}
	t.Cleanup(func() { n.h.Close() })
	if err := bridge.LoopbackUp(n.path, nil); err != nil {
		t.Fatal(err)
	}
	return n
}

// do runs fn on a thread inside n.
func (n *netNS) do(fn func() error) error { return inNetNS(n.path, fn) }

// testCluster is the underlay, etcd and the hosts.
type testCluster struct {
	t      testing.TB
	dir    string
	ul     *netNS
	etcd   *etcdtest.Server
	prefix string
	hosts  []*testHost
}

// newTestCluster builds the underlay and etcd, and starts one host per
// name. At the end it stops everything and checks that nothing is left:
// on the hosts (hostClean) and on the real host (links, mounts).
func newTestCluster(t testing.TB, names ...string) *testCluster {
	t.Helper()
	testutil.RequireRoot(t)
	linksBefore := linkNames(t)
	c := &testCluster{t: t, dir: t.TempDir(), prefix: fmt.Sprintf("/vxlantest-%d/", os.Getpid())}
	c.ul = newNetNS(t)
	if err := c.ul.do(func() error {
		return bridge.EnsureBridge(underlayBridge, netip.PrefixFrom(underlayGateway, 24).String())
	}); err != nil {
		t.Fatal(err)
	}
	c.etcd = etcdtest.Start(t, etcdtest.Options{Host: underlayGateway.String(), ClientPort: 2379, PeerPort: 2380,
		StartIn: func(start func() error) error { return c.ul.do(start) }})
	t.Cleanup(func() {
		for _, h := range c.hosts {
			h.kill()
			// a test that stopped half-way leaves namespaces pinned
			sbs, _ := os.ReadDir(filepath.Join(h.dir, "netns"))
			for _, sb := range sbs {
				if !t.Failed() {
					t.Errorf("leak: %s: network namespace %s left", h.name, sb.Name())
				}
				removeSandbox(filepath.Join(h.dir, "netns", sb.Name()))
			}
		}
		c.etcd.Stop() // etcdtest's own cleanup removes its data
		after := linkNames(t)
		for name := range after {
			if !linksBefore[name] {
				t.Errorf("leak: link %s left on the real host", name)
			}
		}
		mounts, _ := os.ReadFile("/proc/self/mountinfo")
		for _, l := range strings.Split(string(mounts), "\n") {
			if strings.Contains(l, c.dir) {
				t.Errorf("leak: mount left: %s", l)
			}
		}
	})
	for i, name := range names {
		c.addHost(name, netip.AddrFrom4([4]byte{10, 99, 0, byte(11 + i)}))
	}
	return c
}

// linkNames are the links of the real host's namespace.
func linkNames(t testing.TB) map[string]bool {
	ls, err := netlink.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]bool{}
	for _, l := range ls {
		m[l.Attrs().Name] = true
	}
	return m
}

// testHost is one host: its namespace and its process.
type testHost struct {
	c    *testCluster
	name string
	ns   *netNS
	addr netip.Addr
	dir  string

	mu      sync.Mutex
	cmd     *exec.Cmd
	in      *json.Encoder
	replies chan response
	exited  chan struct{}
}

// addHost makes the host's namespace, plugs its eth0 into ul0, runs
// setup (if any) inside it, and starts its process.
func (c *testCluster) addHost(name string, addr netip.Addr, setup ...func() error) *testHost {
	c.t.Helper()
	h := &testHost{c: c, name: name, ns: newNetNS(c.t), addr: addr, dir: filepath.Join(c.dir, name)}
	if err := c.ul.do(func() error {
		return bridge.Attach(bridge.Endpoint{Bridge: underlayBridge, HostIf: "ul-" + name, NetNS: h.ns.path,
			IfName: "eth0", Address: netip.PrefixFrom(addr, 24)})
	}); err != nil {
		c.t.Fatal(err)
	}
	for _, f := range setup {
		if err := h.ns.do(f); err != nil {
			c.t.Fatal(err)
		}
	}
	c.hosts = append(c.hosts, h)
	h.start(c.t)
	return h
}

// hostSpec is what a host process is told in $VXLAN_TEST_HOST.
type hostSpec struct {
	Member string
	Addr   netip.Addr
	Etcd   string
	Prefix string
	Dir    string
	TTL    time.Duration
}

// request and response are one order to a host process and its answer.
type request struct {
	Op       string // create, remove, networks, attach, detach, lookup, close
	Network  cluster.Network
	Ref      string // a network's ID or name
	Endpoint cluster.Endpoint
	NetNS    string
	Name     string
}

type response struct {
	Err      string
	Network  cluster.Network
	Networks []cluster.Network
	Endpoint cluster.Endpoint
	Gateway  netip.Addr
	Addrs    []netip.Addr
}

// start runs the host's process inside its namespace (a child inherits
// the namespace of the thread that forks it) and waits for "ready".
func (h *testHost) start(t testing.TB) {
	t.Helper()
	spec, _ := json.Marshal(hostSpec{Member: h.name, Addr: h.addr, Etcd: "etcd://" + h.c.etcd.Endpoint(),
		Prefix: h.c.prefix, Dir: h.dir, TTL: testTTL})
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "VXLAN_TEST_HOST="+string(spec))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	logf, err := os.OpenFile(filepath.Join(h.c.dir, h.name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = logf
	if err := h.ns.do(cmd.Start); err != nil {
		t.Fatalf("start %s: %v", h.name, err)
	}
	logf.Close()
	h.mu.Lock()
	h.cmd, h.in, h.replies, h.exited = cmd, json.NewEncoder(stdin), make(chan response), make(chan struct{})
	h.mu.Unlock()
	go func(replies chan response, exited chan struct{}) {
		dec := json.NewDecoder(stdout)
		for {
			var r response
			if err := dec.Decode(&r); err != nil {
				break
			}
			replies <- r
		}
		cmd.Wait()
		close(exited)
	}(h.replies, h.exited)
	if r := h.call(t, request{Op: "ready"}); r.Err != "" {
		t.Fatalf("%s did not start: %s\n%s\netcd:\n%s", h.name, r.Err, h.log(), h.c.etcd.Log())
	}
}

// log is what the host's process wrote to stderr.
func (h *testHost) log() string {
	data, _ := os.ReadFile(filepath.Join(h.c.dir, h.name+".log"))
	return string(data)
}

// call sends one order and waits for its answer (the process answers
// "ready" once, unasked, when it has started).
func (h *testHost) call(t testing.TB, req request) response {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	if req.Op != "ready" {
		if err := h.in.Encode(req); err != nil {
			t.Fatalf("%s: send %s: %v", h.name, req.Op, err)
		}
	}
	select {
	case r := <-h.replies:
		return r
	case <-h.exited:
		return response{Err: "the host process exited:\n" + h.log()}
	case <-time.After(60 * time.Second):
		t.Fatalf("%s: no answer to %s\n%s", h.name, req.Op, h.log())
	}
	return response{}
}

// must is call that fails the test on an error answer.
func (h *testHost) must(t testing.TB, req request) response {
	t.Helper()
	r := h.call(t, req)
	if r.Err != "" {
		t.Fatalf("%s: %s: %s", h.name, req.Op, r.Err)
	}
	return r
}

// kill ends the host's process with SIGKILL, as a crash would.
func (h *testHost) kill() {
	h.mu.Lock()
	cmd, exited := h.cmd, h.exited
	h.mu.Unlock()
	if cmd != nil {
		cmd.Process.Kill()
		<-exited
	}
}

// stop leaves the cluster cleanly (Driver.Close) and waits for the exit.
func (h *testHost) stop(t testing.TB) {
	t.Helper()
	h.must(t, request{Op: "close"})
	<-h.exited
}

// sandbox is where the host pins network netID's namespace.
func (h *testHost) sandbox(netID string) string { return filepath.Join(h.dir, "netns", "ov-"+netID) }

// vxlan0 opens a netlink socket in network netID's namespace on h and
// finds its vxlan0; the caller closes the handle.
func (h *testHost) vxlan0(t testing.TB, netID string) (*netlink.Handle, netlink.Link) {
	t.Helper()
	hd, err := sandboxHandle(h.sandbox(netID))
	if err != nil {
		t.Fatal(err)
	}
	vx, err := hd.LinkByName(sandboxVXLAN)
	if err != nil {
		hd.Close()
		t.Fatal(err)
	}
	return hd, vx
}

// vxlanTxBytes is what network netID's vxlan0 on h has sent so far.
func (h *testHost) vxlanTxBytes(t testing.TB, netID string) uint64 {
	t.Helper()
	hd, vx := h.vxlan0(t, netID)
	hd.Close()
	return vx.Attrs().Statistics.TxBytes
}

// checkClean fails the test if the host has anything of ours left: a link
// but lo and eth0, a pinned namespace, the gateway's allocations, an nft
// table, or a socket on the VXLAN port.
func (h *testHost) checkClean(t testing.TB) {
	t.Helper()
	err := h.ns.do(func() error {
		ls, err := netlink.LinkList()
		if err != nil {
			return err
		}
		for _, l := range ls {
			if n := l.Attrs().Name; n != "lo" && n != "eth0" {
				t.Errorf("leak: %s: link %s (%s) left", h.name, n, l.Type())
			}
		}
		out, err := exec.Command("nft", "list", "tables").CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "" {
			t.Errorf("leak: %s: nft tables left: %s %v", h.name, out, err)
		}
		udp, err := os.ReadFile("/proc/thread-self/net/udp")
		if err != nil {
			return err
		}
		if strings.Contains(string(udp), fmt.Sprintf(":%04X ", cluster.DefaultPort)) {
			t.Errorf("leak: %s: a UDP socket on port %d is left:\n%s", h.name, cluster.DefaultPort, udp)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"netns", "state"} {
		ents, _ := os.ReadDir(filepath.Join(h.dir, d))
		for _, e := range ents {
			t.Errorf("leak: %s: %s/%s left", h.name, d, e.Name())
		}
	}
}

// etcdKeys lists the test's keys in etcd (etcdctl, in the underlay).
func (c *testCluster) etcdKeys(t testing.TB) []string {
	t.Helper()
	var out []byte
	err := c.ul.do(func() error {
		cmd := exec.Command("etcdctl", "--endpoints", c.etcd.Endpoint(), "get", "--prefix", "--keys-only", c.prefix)
		cmd.Env = append(os.Environ(), "ETCDCTL_API=3")
		var err error
		out, err = cmd.CombinedOutput()
		return err
	})
	if err != nil {
		t.Fatalf("etcdctl: %v: %s", err, out)
	}
	return strings.Fields(string(out))
}

// container is a network namespace on a host, attached to a network.
type container struct {
	name string
	ns   *netNS
	host *testHost
	net  cluster.Network
	ep   cluster.Endpoint
	gw   netip.Addr // its address on the gateway bridge
}

// run makes a container on host h attached to network ref (eth0) and to
// the gateway bridge (eth1).
func (c *testCluster) run(t testing.TB, h *testHost, ref, name string) *container {
	t.Helper()
	ns := newNetNS(t)
	r := h.must(t, request{Op: "attach", Ref: ref, Endpoint: cluster.Endpoint{ID: name, Name: name, Aliases: []string{name + "-alias"}}, NetNS: ns.path})
	return &container{name: name, ns: ns, host: h, net: r.Network, ep: r.Endpoint, gw: r.Gateway}
}

// remove detaches the container from its network and the gateway bridge.
func (ct *container) remove(t testing.TB) {
	t.Helper()
	ct.host.must(t, request{Op: "detach", Ref: ct.net.ID, Endpoint: ct.ep})
}

// hostMain is a host's process: a Driver, as the daemon would run it,
// and a loop that carries out the test's orders, one JSON object a line.
func hostMain(specJSON string) int {
	var spec hostSpec
	if err := json.Unmarshal([]byte(specJSON), &spec); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	out := json.NewEncoder(os.Stdout)
	d, err := Start(DriverConfig{StoreURL: spec.Etcd, Prefix: spec.Prefix, TTL: spec.TTL, Timeout: 2 * time.Second,
		Host: Config{Member: spec.Member, Addr: spec.Addr,
			NetNSDir: filepath.Join(spec.Dir, "netns"), StateDir: filepath.Join(spec.Dir, "state")}})
	if err != nil {
		out.Encode(response{Err: err.Error()})
		return 1
	}
	out.Encode(response{})
	in := json.NewDecoder(os.Stdin)
	for {
		var req request
		if err := in.Decode(&req); err != nil {
			return 0 // the test is gone
		}
		r, done := serveOrder(d, req)
		out.Encode(r)
		if done {
			return 0
		}
	}
}

// serveOrder carries out one order on d.
func serveOrder(d *Driver, req request) (r response, done bool) {
	fail := func(err error) (response, bool) { return response{Err: err.Error()}, false }
	switch req.Op {
	case "create":
		n, err := d.CreateNetwork(req.Network)
		if err != nil {
			return fail(err)
		}
		r.Network = n
	case "remove":
		if err := d.RemoveNetwork(req.Ref); err != nil {
			return fail(err)
		}
	case "networks":
		ns, err := d.Networks()
		if err != nil {
			return fail(err)
		}
		r.Networks = ns
	case "attach":
		// as the engine would: the overlay as eth0, the way out as eth1
		// with the firewall's masquerade
		n, err := d.Network(req.Ref)
		if err != nil {
			return fail(err)
		}
		ep, err := d.Attach(n.ID, req.Endpoint, req.NetNS, "eth0")
		if err != nil {
			return fail(err)
		}
		gw, err := d.Host().ConnectGateway(ep.ID, req.NetNS, "eth1")
		if err == nil {
			err = bridge.Ruleset{Table: testTable, Networks: []bridge.Network{d.Host().GatewayNetwork()}}.Apply()
		}
		if err != nil {
			d.Detach(n.ID, ep.ID)
			return fail(err)
		}
		r.Network, r.Endpoint, r.Gateway = n, ep, gw
	case "detach":
		if err := d.Detach(req.Ref, req.Endpoint.ID); err != nil {
			return fail(err)
		}
		if err := d.Host().DisconnectGateway(req.Endpoint.ID); err != nil {
			return fail(err)
		}
		if _, err := netlink.LinkByName(d.Host().GatewayNetwork().Bridge); err != nil {
			if err := bridge.DeleteTable(testTable); err != nil {
				return fail(err)
			}
		}
	case "lookup":
		r.Addrs = d.Lookup(req.Ref, req.Name)
	case "close":
		if err := d.Close(); err != nil {
			return fail(err)
		}
		return r, true
	default:
		return fail(fmt.Errorf("unknown order %q", req.Op))
	}
	return r, false
}

// serve listens on addr inside n and hands each connection to handle,
// which runs on a goroutine of its own and closes it.
func serve(t testing.TB, n *netNS, addr netip.AddrPort, handle func(net.Conn)) {
	t.Helper()
	var l net.Listener
	if err := n.do(func() (err error) { l, err = net.Listen("tcp4", addr.String()); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go handle(c)
		}
	}()
}

// serveSum listens on addr inside n; for each connection it reads until
// the client's half-close and answers the SHA-256 of what it read.
func serveSum(t testing.TB, n *netNS, addr netip.AddrPort) {
	t.Helper()
	serve(t, n, addr, func(c net.Conn) {
		defer c.Close()
		c.SetDeadline(time.Now().Add(60 * time.Second))
		sum := sha256.New()
		io.Copy(sum, c)
		fmt.Fprintf(c, "%x\n", sum.Sum(nil))
	})
}

// dialFrom connects to addr from inside n.
func dialFrom(n *netNS, addr netip.AddrPort, timeout time.Duration) (net.Conn, error) {
	var c net.Conn
	err := n.do(func() (err error) {
		c, err = net.DialTimeout("tcp4", addr.String(), timeout)
		return err
	})
	return c, err
}

// transfer sends size random bytes from inside n to a serveSum at addr
// and checks the checksum that comes back.
func transfer(n *netNS, addr netip.AddrPort, size int) error {
	c, err := dialFrom(n, addr, 3*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	sum := sha256.New()
	if _, err := io.CopyN(io.MultiWriter(c, sum), rand.Reader, int64(size)); err != nil {
		return fmt.Errorf("send to %v: %w", addr, err)
	}
	c.(*net.TCPConn).CloseWrite()
	reply, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return fmt.Errorf("checksum from %v: %w", addr, err)
	}
	if want := hex.EncodeToString(sum.Sum(nil)); strings.TrimSpace(reply) != want {
		return fmt.Errorf("%v received other bytes: checksum %s, sent %s", addr, strings.TrimSpace(reply), want)
	}
	return nil
}

// probe says whether a TCP connection to addr can be opened from n
// within a second: the same check for "must reach" and "must not".
func probe(n *netNS, addr netip.AddrPort) error {
	c, err := dialFrom(n, addr, time.Second)
	if err == nil {
		c.Close()
	}
	return err
}

// fdb is what network netID's namespace on h holds for remote MACs:
// vxlan0's forwarding entries (MAC → VTEP) and neighbour entries
// (IP → MAC), each as "mac>vtep" and "ip>mac", sorted.
func (h *testHost) fdb(t testing.TB, netID string) (fwd, neigh []string) {
	t.Helper()
	hd, vx := h.vxlan0(t, netID)
	defer hd.Close()
	bes, err := hd.NeighList(vx.Attrs().Index, unix.AF_BRIDGE)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range bes {
		if e.Flags&netlink.NTF_SELF != 0 {
			fwd = append(fwd, fmt.Sprintf("%s>%s", e.HardwareAddr, e.IP))
		}
	}
	ies, err := hd.NeighList(vx.Attrs().Index, unix.AF_INET)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ies {
		neigh = append(neigh, fmt.Sprintf("%s>%s", e.IP, e.HardwareAddr))
	}
	sort.Strings(fwd)
	sort.Strings(neigh)
	return fwd, neigh
}
