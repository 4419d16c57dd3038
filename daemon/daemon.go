// Package daemon is minidock's engine (`minidock daemon`): an HTTP/1.1
// server on a unix socket speaking the Docker Engine API. It keeps images
// in package image's store, writes an OCI bundle per container, and runs
// each container under its own shim (package shim), which runs the OCI
// runtime. Containers outlive the daemon: on start it reconnects to the
// shims it finds. docs/daemon.md walks through it.
package daemon

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"minidock/bridge"
	"minidock/image"
)

// Config is the daemon's command line.
type Config struct {
	DataRoot     string   // --data-root: images, containers, logs
	ExecRoot     string   // --exec-root: runtime state, shim sockets
	Hosts        []string // -H unix:///path (repeatable)
	Runtime      string   // --runtime: runc-compatible binary; "" = our own
	CgroupParent string   // --cgroup-parent: parent cgroup of every container
	Bridge       string   // --bridge: the default network's Linux bridge
	BIP          string   // --bip: the default bridge's address and prefix
	AddressPools []string // --default-address-pool base=CIDR,size=N (repeatable)
	NftTable     string   // --nft-table: the nftables table (inet) of our rules
	DNS          []string // --dns: upstream resolvers of the embedded DNS; "none": no upstream
}

// Daemon is one running engine.
type Daemon struct {
	cfg    Config
	self   string // this binary, for the shim role
	images *image.Store
	lock   *os.File

	mu         sync.Mutex
	containers map[string]*Container // by ID
	names      map[string]string     // name (no slash) -> ID
	execs      map[string]*Exec      // by exec ID, while the daemon runs

	events events // GET /events

	// networking (network.go): netMu serialises network changes and the
	// firewall; it is taken before mu, never while holding it
	netMu     sync.Mutex
	networks  map[string]*network              // by ID
	ports     map[string][]*bridge.Reservation // held host ports, by container ID
	pools     []addressPool
	upstreams []netip.AddrPort
}

type hostsFlag []string

func (h *hostsFlag) String() string     { return strings.Join(*h, ",") }
func (h *hostsFlag) Set(v string) error { *h = append(*h, v); return nil }

// Main runs `minidock daemon ARGS...` (or `minidockd ARGS...`).
func Main(args []string) int {
	var cfg Config
	var hosts hostsFlag
	fs := flag.NewFlagSet("minidock daemon", flag.ContinueOnError)
	fs.StringVar(&cfg.DataRoot, "data-root", "/var/lib/minidock", "root of persistent state")
	fs.StringVar(&cfg.ExecRoot, "exec-root", "/run/minidock", "root of runtime state and sockets")
	fs.Var(&hosts, "H", "socket to listen on, unix:///path (repeatable)")
	fs.Var(&hosts, "host", "same as -H")
	fs.StringVar(&cfg.Runtime, "runtime", "", "OCI runtime binary (default: minidock's own runtime)")
	fs.StringVar(&cfg.CgroupParent, "cgroup-parent", "/minidock", "parent cgroup of the containers")
	fs.StringVar(&cfg.Bridge, "bridge", "minidock0", "Linux bridge of the default network")
	fs.StringVar(&cfg.BIP, "bip", "", "address and prefix of the default bridge, such as 172.30.0.1/16 (default: a free subnet of the pools)")
	var pools, dns hostsFlag
	fs.Var(&pools, "default-address-pool", "subnets for networks: base=CIDR,size=N (repeatable)")
	fs.StringVar(&cfg.NftTable, "nft-table", bridge.DefaultTable, "nftables table (family inet) of minidock's rules")
	fs.Var(&dns, "dns", "upstream resolver of the embedded DNS server, IP[:PORT] (repeatable; \"none\": answer only container names; default: the host's)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "minidock daemon: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	cfg.Hosts, cfg.AddressPools, cfg.DNS = hosts, pools, dns
	if len(cfg.Hosts) == 0 {
		cfg.Hosts = []string{"unix://" + filepath.Join(cfg.ExecRoot, "minidock.sock")}
	}
	// Processes a detached `runtime exec` starts (exec with a TTY) are
	// re-parented to us, so that we can wait for their exit status.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		fmt.Fprintln(os.Stderr, "minidock daemon: prctl(PR_SET_CHILD_SUBREAPER):", err)
		return 1
	}
	d, err := New(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "minidock daemon:", err)
		return 1
	}
	defer d.Close()
	ctx, stop := signal.NotifyContext(context.Background(), unix.SIGINT, unix.SIGTERM)
	defer stop()
	if err := d.Serve(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "minidock daemon:", err)
		return 1
	}
	return 0
}

// New opens the data root (refusing one another daemon holds), the image
// store, and reconnects to the containers' shims.
func New(cfg Config) (*Daemon, error) {
	for _, dir := range []string{cfg.DataRoot, cfg.ExecRoot, filepath.Join(cfg.ExecRoot, "shim")} {
		if err := os.MkdirAll(dir, 0o711); err != nil {
			return nil, fmt.Errorf("create %s: %w", dir, err)
		}
	}
	if !strings.HasPrefix(cfg.CgroupParent, "/") {
		return nil, fmt.Errorf("--cgroup-parent %q: must be an absolute cgroup path", cfg.CgroupParent)
	}
	if cfg.Runtime != "" {
		p, err := exec.LookPath(cfg.Runtime)
		if err != nil {
			return nil, fmt.Errorf("--runtime %s: %w", cfg.Runtime, err)
		}
		cfg.Runtime = p
	}
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find own binary: %w", err)
	}
	d := &Daemon{cfg: cfg, self: self, containers: map[string]*Container{}, names: map[string]string{}, execs: map[string]*Exec{},
		ports: map[string][]*bridge.Reservation{}}
	if err := d.networkConfig(); err != nil {
		return nil, err
	}
	lockPath := filepath.Join(cfg.DataRoot, "minidock.lock")
	d.lock, err = os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := unix.Flock(int(d.lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		d.lock.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("data root %s is in use by another daemon (lock %s held)", cfg.DataRoot, lockPath)
		}
		return nil, fmt.Errorf("lock %s: %w", lockPath, err)
	}
	d.lock.Truncate(0)
	d.lock.WriteString(strconv.Itoa(os.Getpid()) + "\n")
	d.images, err = image.Open(cfg.DataRoot)
	if err != nil {
		d.lock.Close()
		return nil, err
	}
	if err := d.initNetworks(); err != nil {
		d.lock.Close()
		return nil, err
	}
	stopped, err := d.restore()
	if err != nil {
		d.lock.Close()
		return nil, err
	}
	if err := d.finishNetworks(); err != nil {
		d.lock.Close()
		return nil, err
	}
	go d.autoStart(stopped) // restart policies, as the daemon comes up
	return d, nil
}

// networkConfig checks the networking flags: address pools, upstream
// resolvers (the host's, from /etc/resolv.conf, by default).
func (d *Daemon) networkConfig() error {
	if d.cfg.Bridge == "" {
		d.cfg.Bridge = "minidock0"
	}
	if d.cfg.NftTable == "" {
		d.cfg.NftTable = bridge.DefaultTable
	}
	d.pools = defaultPools
	if len(d.cfg.AddressPools) > 0 {
		d.pools = nil
		for _, s := range d.cfg.AddressPools {
			p, err := parseAddressPool(s)
			if err != nil {
				return err
			}
			d.pools = append(d.pools, p)
		}
	}
	servers := d.cfg.DNS
	if len(servers) == 0 {
		data, _ := os.ReadFile("/etc/resolv.conf")
		for _, line := range strings.Split(string(data), "\n") {
			if f := strings.Fields(line); len(f) == 2 && f[0] == "nameserver" {
				servers = append(servers, f[1])
			}
		}
	}
	for _, s := range servers {
		if s == "none" {
			if len(servers) > 1 {
				return fmt.Errorf("--dns none: no other --dns may be given")
			}
			return nil
		}
		ap, err := netip.ParseAddrPort(s)
		if err != nil {
			ip, err2 := netip.ParseAddr(s)
			if err2 != nil || !ip.Is4() {
				return fmt.Errorf("--dns %q: want an IPv4 address, with an optional :port", s)
			}
			ap = netip.AddrPortFrom(ip, 53)
		}
		d.upstreams = append(d.upstreams, ap)
	}
	return nil
}

// Close releases the data root and, when no container runs, the network
// the daemon made. Running containers keep running under their shims; the
// next daemon reconnects to them.
func (d *Daemon) Close() {
	if d.networks != nil {
		d.closeNetworks()
	}
	if d.lock != nil {
		d.lock.Close()
	}
}

// Serve listens on every host and serves until ctx ends.
func (d *Daemon) Serve(ctx context.Context) error {
	srv := &http.Server{Handler: d.Handler(), ReadHeaderTimeout: 30 * time.Second}
	var lns []net.Listener
	for _, h := range d.cfg.Hosts {
		ln, err := listenUnix(h)
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			return err
		}
		lns = append(lns, ln)
	}
	errc := make(chan error, len(lns))
	for _, ln := range lns {
		go func(ln net.Listener) { errc <- srv.Serve(ln) }(ln)
	}
	select {
	case <-ctx.Done():
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			srv.Close()
			return err
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	srv.Shutdown(sctx)
	srv.Close() // hijacked and streaming connections end here
	return nil
}

// listenUnix listens on unix://PATH, mode 0660, group minidock when that
// group exists. A socket file left by a dead daemon is replaced (we hold
// the data root's lock).
func listenUnix(host string) (net.Listener, error) {
	path, ok := strings.CutPrefix(host, "unix://")
	if !ok || path == "" {
		return nil, fmt.Errorf("host %q: only unix:///path is supported", host)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	if c, err := net.Dial("unix", path); err == nil {
		c.Close()
		return nil, fmt.Errorf("listen on %s: another daemon answers on this socket", path)
	}
	os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	gid := 0
	if g, err := user.LookupGroup("minidock"); err == nil {
		gid, _ = strconv.Atoi(g.Gid)
	}
	if err := os.Chown(path, 0, gid); err != nil {
		ln.Close()
		return nil, fmt.Errorf("chown %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		ln.Close()
		return nil, fmt.Errorf("chmod %s: %w", path, err)
	}
	return ln, nil
}
