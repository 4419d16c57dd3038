package tests

// Several hosts on one machine, each with its own minidock daemon, joined
// by overlay networks (docs/overlay-network.md).
//
// The underlay is a network namespace with a bridge ul0 (10.98.0.1/24) and
// one etcd (Debian's etcd-server) listening on 10.98.0.1:2379. Each "host"
// is a process that only holds namespaces of its own (unshare --net
// --mount --uts ... sleep): a network namespace with an eth0 into ul0
// (10.98.0.11, .12, ...), a mount namespace and its host name (the
// daemon's member name in the cluster). Its daemon runs inside them
// (nsenter), with its own data root, exec root, socket, cgroup parent and
// nft table, and --cluster-store, --cluster-advertise. The daemon's
// mounts (its containers' root filesystems, the overlay networks' pinned
// namespaces) live in the host's mount namespace, which outlives a daemon
// that is killed and started again, as a real host's does. The test
// drives the daemons through the CLI and reads the hosts' kernel state
// through /proc/<holder>/. At the end every host must be as it was: only
// lo and eth0, no mount, no nft table, no process, no cgroup; etcd holds
// no key; the real host has no new link.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"minidock/api"
	"minidock/cluster/etcdtest"
	"minidock/internal/testutil"
)

const (
	ovUnderlay = "10.98.0.1" // ul0's address; etcd listens there
	ovEtcd     = "etcd://" + ovUnderlay + ":2379"
	ovTTL      = 3 // seconds: each member's lease (--cluster-store-opt discovery.ttl)
)

// sumServer is a busybox loop that records, in /tmp/sums, the SHA-256 of
// the bytes of every TCP connection it takes on port 7000. (busybox nc
// ends when its stdin ends: a FIFO opened read-write never does.)
var sumServer = []string{"sh", "-c",
	"mkfifo /tmp/hold; exec 3<>/tmp/hold; while :; do nc -l -p 7000 <&3 | sha256sum | cut -d' ' -f1 >> /tmp/sums; done"}

// nsHolder is a process that holds namespaces and does nothing else.
type nsHolder struct {
	cmd  *exec.Cmd
	pid  int
	done chan struct{}
}

// startHolder runs script in new namespaces (unshare flags), then sleeps
// in them until killed.
func startHolder(tb testing.TB, script string, flags ...string) *nsHolder {
	tb.Helper()
	args := append(flags, "--", "sh", "-c", script+" && echo ready && exec sleep infinity")
	cmd := exec.Command("unshare", args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		tb.Fatalf("unshare: %v", err)
	}
	h := &nsHolder{cmd: cmd, pid: cmd.Process.Pid, done: make(chan struct{})}
	line, _ := bufio.NewReader(out).ReadString('\n')
	go func() { io.Copy(io.Discard, out); cmd.Wait(); close(h.done) }()
	if strings.TrimSpace(line) != "ready" {
		h.kill()
		tb.Fatalf("unshare %s: %s", strings.Join(flags, " "), stderr.String())
	}
	return h
}

func (h *nsHolder) kill() {
	h.cmd.Process.Kill()
	<-h.done
}

// ns is the path of one of the holder's namespaces: "net", "mnt", ...
func (h *nsHolder) ns(kind string) string { return fmt.Sprintf("/proc/%d/ns/%s", h.pid, kind) }

// run runs a command in the holder's network namespace (and mount
// namespace, with mnt) and returns its output; the test fails if it does.
func (h *nsHolder) run(tb testing.TB, args ...string) string {
	tb.Helper()
	out, err := exec.Command("nsenter", append([]string{"--target", strconv.Itoa(h.pid), "--net", "--"}, args...)...).CombinedOutput()
	if err != nil {
		tb.Fatalf("in namespace of %d: %s: %v: %s", h.pid, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// inNetNS runs fn on a thread that has joined the network namespace at
// path; the thread is never used again (it ends with its goroutine).
func inNetNS(path string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		f, err := os.Open(path)
		if err != nil {
			errc <- err
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", path, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// ovCluster is the underlay, etcd and the hosts.
type ovCluster struct {
	tb    testing.TB
	ul    *nsHolder
	etcd  *etcdtest.Server
	dir   string // the hosts' data roots and logs
	tar   string // a busybox image, for `import`
	hosts []*ovHost
}

// newOVCluster builds the underlay and etcd and starts one host (and its
// daemon) per name. At the end it removes every container and overlay
// network through the daemons, stops them, and checks that nothing is
// left: on each host, in etcd, on the real host.
func newOVCluster(tb testing.TB, names ...string) *ovCluster {
	tb.Helper()
	testutil.RequireRoot(tb)
	// the first TempDir registers the cleanup that deletes every one:
	// made before c.cleanup is registered, it runs after it (a data
	// root deleted under running daemons leaves their records without
	// directories, and rm -f fails)
	c := &ovCluster{tb: tb, dir: tb.TempDir()}
	linksBefore := hostLinks()
	c.ul = startHolder(tb, "ip link set lo up && ip link add ul0 type bridge && ip addr add "+ovUnderlay+"/24 dev ul0 && ip link set ul0 up", "--net")
	tb.Cleanup(func() {
		c.ul.kill()
		for name := range hostLinks() {
			if !linksBefore[name] {
				tb.Errorf("leak: link %s left on the real host", name)
			}
		}
	})
	c.etcd = etcdtest.Start(tb, etcdtest.Options{Host: ovUnderlay, ClientPort: 2379, PeerPort: 2380,
		StartIn: func(start func() error) error { return inNetNS(c.ul.ns("net"), start) }})
	tb.Cleanup(c.cleanup) // before etcdtest's: cleanups run last-in first-out
	c.tar = ovImageTar(tb)
	for i, name := range names {
		c.addHost(name, c.hostAddr(i))
	}
	return c
}

// hostAddr is the i-th host's address on the underlay: 10.98.0.11, ...
func (c *ovCluster) hostAddr(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, 98, 0, byte(11 + i)})
}

// ovImageTar is a tarball of testutil's busybox root filesystem.
func ovImageTar(tb testing.TB) string {
	dir := tb.TempDir()
	testutil.MakeBusyboxRootfs(tb, filepath.Join(dir, "rootfs"))
	tar := filepath.Join(dir, "busybox.tar")
	if out, err := exec.Command("tar", "-C", filepath.Join(dir, "rootfs"), "-cf", tar, ".").CombinedOutput(); err != nil {
		tb.Fatalf("tar: %v: %s", err, out)
	}
	return tar
}

// ovHost is one host: its namespaces and its daemon.
type ovHost struct {
	c         *ovCluster
	name      string
	addr      netip.Addr
	advertise string // --cluster-advertise: the address, or "eth0"
	ns        *nsHolder

	dataRoot, execRoot, sock, cgroupParent, nftTable, logPath string
	daemon                                                    *exec.Cmd
	exited                                                    chan struct{}
}

// addHost makes the host's namespaces with eth0 in the underlay, starts
// its daemon and imports busybox.
func (c *ovCluster) addHost(name string, addr netip.Addr) *ovHost {
	tb := c.tb
	tb.Helper()
	tag := fmt.Sprintf("%d-%s", os.Getpid(), name)
	h := &ovHost{c: c, name: name, addr: addr, advertise: addr.String(),
		dataRoot: filepath.Join(c.dir, name, "data"), execRoot: "/run/minidock-ovtest-" + tag, cgroupParent: "/minidock-ovtest-" + tag,
		nftTable: "minidock_ovtest_" + strings.ReplaceAll(name, "-", "_"), logPath: filepath.Join(c.dir, name, "daemon.log")}
	if err := os.MkdirAll(h.dataRoot, 0o700); err != nil {
		tb.Fatal(err)
	}
	h.sock = filepath.Join(h.execRoot, "d.sock")
	if len(c.hosts)%2 == 1 {
		h.advertise = "eth0" // the other form of --cluster-advertise
	}
	h.ns = startHolder(tb, "hostname "+name+" && ip link set lo up", "--net", "--mount", "--uts")
	veth := "ul-" + name
	c.ul.run(tb, "ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", strconv.Itoa(h.ns.pid))
	c.ul.run(tb, "ip", "link", "set", veth, "master", "ul0", "up")
	h.ns.run(tb, "ip", "addr", "add", addr.String()+"/24", "dev", "eth0")
	h.ns.run(tb, "ip", "link", "set", "eth0", "up")
	c.hosts = append(c.hosts, h)
	h.start(tb)
	h.mustCLI(tb, "import", c.tar, "busybox")
	return h
}

// start runs the host's daemon inside its namespaces and waits until it
// answers.
func (h *ovHost) start(tb testing.TB) {
	tb.Helper()
	logf, err := os.OpenFile(h.logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		tb.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command("nsenter", "--target", strconv.Itoa(h.ns.pid), "--net", "--mount", "--uts", "--",
		binary, "daemon", "--data-root", h.dataRoot, "--exec-root", h.execRoot, "-H", "unix://"+h.sock,
		"--cgroup-parent", h.cgroupParent, "--nft-table", h.nftTable, "--dns", "none",
		"--cluster-store", ovEtcd, "--cluster-advertise", h.advertise,
		"--cluster-store-opt", fmt.Sprintf("discovery.ttl=%d", ovTTL))
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), "GORACE=log_path="+filepath.Join(filepath.Dir(h.logPath), "race"))
	if err := cmd.Start(); err != nil { // nsenter execs the daemon: same pid
		tb.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	h.daemon, h.exited = cmd, exited
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if _, code := h.cli("version"); code == 0 {
			return
		}
		select {
		case <-exited:
			tb.Fatalf("%s: the daemon exited:\n%s", h.name, h.log())
		case <-time.After(20 * time.Millisecond):
		}
	}
	tb.Fatalf("%s: the daemon does not answer:\n%s", h.name, h.log())
}

func (h *ovHost) log() string {
	data, _ := os.ReadFile(h.logPath)
	return string(data)
}

// kill ends the daemon with SIGKILL, as a crash would; its containers
// keep running under their shims.
func (h *ovHost) kill() {
	if h.daemon != nil {
		h.daemon.Process.Kill()
		<-h.exited
		h.daemon = nil
	}
}

// stop ends the daemon with SIGTERM and waits for it.
func (h *ovHost) stop(tb testing.TB) {
	if h.daemon == nil {
		return
	}
	h.daemon.Process.Signal(syscall.SIGTERM)
	select {
	case <-h.exited:
	case <-time.After(15 * time.Second):
		h.daemon.Process.Kill()
		<-h.exited
		tb.Errorf("%s: the daemon ignored SIGTERM for 15 s", h.name)
	}
	h.daemon = nil
}

// cli runs the client against the host's daemon: output, exit code.
func (h *ovHost) cli(args ...string) (string, int) {
	out, err := exec.Command(binary, append([]string{"-H", "unix://" + h.sock}, args...)...).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode()
	} else if err != nil {
		return err.Error(), -1
	}
	return string(out), 0
}

// mustCLI is cli that fails the test unless the client exits 0.
func (h *ovHost) mustCLI(tb testing.TB, args ...string) string {
	tb.Helper()
	out, code := h.cli(args...)
	if code != 0 {
		tb.Fatalf("%s: minidock %s: exit %d: %s", h.name, strings.Join(args, " "), code, out)
	}
	return out
}

// networkInspect is `network inspect` on this host.
func (h *ovHost) networkInspect(tb testing.TB, name string) api.Network {
	tb.Helper()
	var ns []api.Network
	if err := json.Unmarshal([]byte(h.mustCLI(tb, "network", "inspect", name)), &ns); err != nil || len(ns) != 1 {
		tb.Fatalf("%s: network inspect %s: %v", h.name, name, err)
	}
	return ns[0]
}

// networks lists the networks this host's daemon shows, as "name/driver/scope".
func (h *ovHost) networks(tb testing.TB) []string {
	tb.Helper()
	var out []string
	for _, l := range strings.Split(h.mustCLI(tb, "network", "ls"), "\n")[1:] {
		if f := strings.Fields(l); len(f) >= 4 { // NETWORK ID, NAME, DRIVER, SCOPE, SUBNET
			out = append(out, f[1]+"/"+f[2]+"/"+f[3])
		}
	}
	sort.Strings(out)
	return out
}

// ovContainer is a container on a host.
type ovContainer struct {
	h    *ovHost
	name string
	id   string
	pid  int               // its init, on the real host
	ips  map[string]string // its address on each network, by network name
}

// run starts a sum server (sumServer) called name on network, with the
// run flags in extra.
func (h *ovHost) run(tb testing.TB, name, network string, extra ...string) *ovContainer {
	tb.Helper()
	args := append([]string{"run", "-d", "--name", name, "--network", network}, extra...)
	h.mustCLI(tb, append(append(args, "busybox"), sumServer...)...)
	return h.container(tb, name)
}

// container reads what the test needs of a container (inspect).
func (h *ovHost) container(tb testing.TB, name string) *ovContainer {
	tb.Helper()
	var cs []api.ContainerJSON
	if err := json.Unmarshal([]byte(h.mustCLI(tb, "inspect", name)), &cs); err != nil || len(cs) != 1 {
		tb.Fatalf("%s: inspect %s: %v", h.name, name, err)
	}
	ct := &ovContainer{h: h, name: name, id: cs[0].ID, pid: cs[0].State.Pid, ips: map[string]string{}}
	for net, es := range cs[0].NetworkSettings.Networks {
		ct.ips[net] = es.IPAddress
	}
	return ct
}

// sendTo sends 4 MiB of random bytes from container ct to target:7000
// with busybox nc (target: a name, resolved by the container's resolver,
// or an address) and checks that server, the container behind target,
// recorded the same SHA-256 (read through /proc/<its pid>/root: its
// daemon need not be up).
func (ct *ovContainer) sendTo(target string, server *ovContainer) error {
	out, code := ct.h.cli("exec", ct.name, "sh", "-c",
		"head -c 4194304 /dev/urandom > /tmp/out && sha256sum < /tmp/out | cut -d' ' -f1 && nc -w 3 "+target+" 7000 < /tmp/out")
	if code != 0 {
		return fmt.Errorf("%s (%s) -> %s: exit %d: %s", ct.name, ct.h.name, target, code, out)
	}
	sum := strings.TrimSpace(out)
	deadline := time.Now().Add(10 * time.Second)
	for {
		sums, _ := os.ReadFile(fmt.Sprintf("/proc/%d/root/tmp/sums", server.pid))
		if strings.Contains(string(sums), sum) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s (%s) -> %s: %s never recorded checksum %s (it has %q)", ct.name, ct.h.name, target, server.name, sum, sums)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// probe says whether container ct can open a TCP connection to
// target:7000 within 2 s (busybox nc): the same check for "must reach"
// and "must not".
func (ct *ovContainer) probe(target string) error {
	out, code := ct.h.cli("exec", ct.name, "sh", "-c", "nc -w 2 "+target+" 7000 </dev/null")
	if code != 0 {
		return fmt.Errorf("exit %d: %s", code, strings.TrimSpace(out))
	}
	return nil
}

// sandbox opens a netlink socket in overlay network netID's namespace on
// the host (pinned in the host's mount namespace, reached through
// /proc/<holder>/root); nil if there is none.
func (h *ovHost) sandbox(tb testing.TB, netID string) *netlink.Handle {
	tb.Helper()
	p := fmt.Sprintf("/proc/%d/root%s/netns/ov-%s", h.ns.pid, h.execRoot, netID)
	ns, err := netns.GetFromPath(p)
	if err != nil {
		return nil
	}
	defer ns.Close()
	hd, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		tb.Fatal(err)
	}
	return hd
}

// forwarding lists vxlan0's forwarding entries for remote containers in
// network netID's namespace on h, "MAC>VTEP" each, sorted.
func (h *ovHost) forwarding(tb testing.TB, netID string) []string {
	tb.Helper()
	hd := h.sandbox(tb, netID)
	if hd == nil {
		return nil
	}
	defer hd.Close()
	vx, err := hd.LinkByName("vxlan0")
	if err != nil {
		tb.Fatalf("%s: vxlan0 of network %.12s: %v", h.name, netID, err)
	}
	es, err := hd.NeighList(vx.Attrs().Index, unix.AF_BRIDGE)
	if err != nil {
		tb.Fatal(err)
	}
	var out []string
	for _, e := range es {
		if e.Flags&netlink.NTF_SELF != 0 && e.IP != nil {
			out = append(out, fmt.Sprintf("%s>%s", e.HardwareAddr, e.IP))
		}
	}
	sort.Strings(out)
	return out
}

// vxlanTx is what vxlan0 of network netID on h has sent so far.
func (h *ovHost) vxlanTx(tb testing.TB, netID string) uint64 {
	tb.Helper()
	hd := h.sandbox(tb, netID)
	if hd == nil {
		tb.Fatalf("%s: no namespace for network %.12s", h.name, netID)
	}
	defer hd.Close()
	vx, err := hd.LinkByName("vxlan0")
	if err != nil {
		tb.Fatal(err)
	}
	return vx.Attrs().Statistics.TxBytes
}

// etcdKeys lists the keys in etcd (etcdctl, in the underlay).
func (c *ovCluster) etcdKeys(tb testing.TB) []string {
	tb.Helper()
	out, err := exec.Command("nsenter", "--target", strconv.Itoa(c.ul.pid), "--net", "--",
		"env", "ETCDCTL_API=3", "etcdctl", "--endpoints", ovUnderlay+":2379", "get", "--prefix", "--keys-only", "/").CombinedOutput()
	if err != nil {
		tb.Fatalf("etcdctl: %v: %s", err, out)
	}
	return strings.Fields(string(out))
}

// cleanup removes, through the daemons, every container and overlay
// network; stops the daemons; checks every host and etcd.
func (c *ovCluster) cleanup() {
	tb := c.tb
	for _, h := range c.hosts {
		if h.daemon == nil {
			h.start(tb) // killed by the test: needed to remove its containers
		}
		out, _ := h.cli("ps", "-aq")
		if ids := strings.Fields(out); len(ids) > 0 {
			if out, code := h.cli(append([]string{"rm", "-f"}, ids...)...); code != 0 {
				tb.Errorf("%s: rm -f: %s", h.name, out)
			}
		}
	}
	if len(c.hosts) > 0 {
		h := c.hosts[0]
		out, _ := h.cli("network", "ls", "--filter", "driver=overlay", "-q")
		for _, id := range strings.Fields(out) {
			if out, code := h.cli("network", "rm", id); code != 0 {
				tb.Errorf("%s: network rm %s: %s", h.name, id, out)
			}
		}
	}
	for _, h := range c.hosts {
		h.stop(tb)
		h.checkClean(tb)
		h.ns.kill()
		os.RemoveAll(h.execRoot)
		if tb.Failed() {
			tb.Logf("%s's daemon log:\n%s", h.name, h.log())
		}
	}
	if keys := c.etcdKeys(tb); len(keys) > 0 {
		tb.Errorf("leak: keys left in etcd: %v", keys)
	}
}

// checkClean, once the daemon has stopped with no container: the host has
// nothing of it left (links but lo and eth0, mounts, nft tables,
// processes, cgroups, pinned namespaces, gateway allocations).
func (h *ovHost) checkClean(tb testing.TB) {
	tb.Helper()
	var left []string
	deadline := time.Now().Add(3 * time.Second) // a dead namespace's veth goes asynchronously
	for {
		left = left[:0]
		err := inNetNS(h.ns.ns("net"), func() error {
			links, err := netlink.LinkList()
			for _, l := range links {
				if n := l.Attrs().Name; n != "lo" && n != "eth0" {
					left = append(left, fmt.Sprintf("%s (%s)", n, l.Type()))
				}
			}
			return err
		})
		if err != nil {
			tb.Fatal(err)
		}
		if len(left) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, l := range left {
		tb.Errorf("leak: %s: link %s", h.name, l)
	}
	if out := strings.TrimSpace(h.ns.run(tb, "nft", "list", "tables")); out != "" {
		tb.Errorf("leak: %s: nft tables: %s", h.name, out)
	}
	mounts, _ := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", h.ns.pid))
	for _, l := range strings.Split(string(mounts), "\n") {
		if f := strings.Fields(l); len(f) > 4 && (strings.HasPrefix(f[4], h.execRoot) || strings.HasPrefix(f[4], h.dataRoot)) {
			tb.Errorf("leak: %s: mount %s", h.name, f[4])
		}
	}
	for _, dir := range []string{filepath.Join(h.execRoot, "netns"), filepath.Join(h.dataRoot, "network", "vxlan")} {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			tb.Errorf("leak: %s: %s left in %s", h.name, e.Name(), dir)
		}
	}
	waitNoProcesses(h.execRoot, 3*time.Second)
	for _, pid := range processesMentioning(h.execRoot) {
		tb.Errorf("leak: %s: process %d: %s", h.name, pid, cmdline(pid))
		syscall.Kill(pid, syscall.SIGKILL)
	}
	for _, dir := range cgroupDirs(strings.TrimPrefix(h.cgroupParent, "/")) {
		if filepath.Base(dir) != filepath.Base(h.cgroupParent) {
			continue
		}
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			if e.IsDir() {
				tb.Errorf("leak: %s: cgroup %s/%s", h.name, dir, e.Name())
				os.Remove(filepath.Join(dir, e.Name()))
			}
		}
		os.Remove(dir)
	}
}
