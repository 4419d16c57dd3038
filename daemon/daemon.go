// Package daemon is minidock's engine: containers, images, networks,
// events and their persistence, as plain Go methods on a Daemon. The
// Engine API (package daemon/server) only decodes a request, calls one of
// them and encodes the answer, as moby's router calls its backend; a
// builder or a test calls them the same way, without HTTP.
//
// Each container runs under its own shim (package shim), the only
// supervisor of its processes, which drives the OCI runtime; the daemon
// reaches the runtime only through the bundle and the shim. Containers and
// their execs outlive the daemon: a new one reconciles its records with
// the shims it finds (restore.go). docs/daemon.md walks through it.
//
// The operations, by file: create.go CreateContainer; start.go
// StartContainer; stop.go StopContainer, KillContainer, RestartContainer;
// exit.go (the end of a run); remove.go RemoveContainer; wait.go
// ContainerWait; attach.go ContainerAttach, ResizeContainer; logs.go
// ContainerLogs; exec.go ExecCreate, ExecStart, ExecInspect, ExecResize;
// pause.go, top.go, stats.go, rename.go; inspect.go ContainerInspect,
// Containers; archive.go, commit.go, images.go, networks.go, volumes.go
// (the volumes, and a container's mounts at each step), prune.go,
// events.go, system.go.
package daemon

import (
	"errors"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"minidock/cgroup"
	"minidock/image"
	"minidock/network"
	"minidock/registry"
	"minidock/shim"
	"minidock/volume"
)

// Config is what a daemon is started with (its command line).
type Config struct {
	DataRoot     string // --data-root: images, containers, logs, networks
	ExecRoot     string // --exec-root: runtime state, shim sockets
	Runtime      string // --runtime: a runc-compatible binary; "" = minidock's own, in the shim's process
	CgroupParent string // --cgroup-parent: parent cgroup of every container
	// Trace is --trace (or MINIDOCK_TRACE=1): every container is traced
	// into its trace file, never into its stdio (trace.go).
	Trace bool
	// Binary is the minidock binary the shims run as (default: this
	// process's own; a test that runs the engine in its own process
	// names the real one).
	Binary string

	// MaxUnpackSize is --max-unpack-size: the most one layer, and one
	// image load or import in all, may expand to (holes included);
	// 0: archive.DefaultMaxLayerSize. The free space is watched too.
	MaxUnpackSize int64
	// UsernsRemap is --userns-remap: "", "default" or USER[:GROUP] (userns.go).
	UsernsRemap string

	Network network.Config // --bridge, --bip, --default-address-pool, --nft-table, --dns, --cluster-*
	Log     *log.Logger    // where the daemon says what it does (default: stderr)

	Registry RegistryConfig // --insecure-registry, --registry-certs-dir
}

// Daemon is one running engine.
type Daemon struct {
	cfg     Config
	log     *log.Logger
	images  *image.Store
	volumes *volume.Store // <data-root>/volumes (daemon/volumes.go)
	network *network.Controller
	shims   *shim.Launcher
	lock    *os.File // flock on <data-root>/minidock.lock

	remap    *remapping       // --userns-remap, or nil (userns.go)
	registry *registry.Client // pulls, pushes, logins (registry.go)

	// mu guards the maps and every container's fields. It is never held
	// while calling into a shim, the image store or the network
	// controller, except for quick reads of the controller.
	mu         sync.Mutex
	containers map[string]*Container // by ID
	names      map[string]string     // name (no slash) -> ID
	execs      map[string]*Exec      // by exec ID

	events events // GET /events

	hostWarnings func() []string // minidock check's warnings, for /info (system.go)
}

// New opens the data root (refusing one another daemon holds), the image
// store, the volumes and the networks, then reconciles the saved containers with the
// shims that run (restore).
func New(cfg Config) (*Daemon, error) {
	if !strings.HasPrefix(cfg.CgroupParent, "/") {
		return nil, fmt.Errorf("--cgroup-parent %q: must be an absolute cgroup path", cfg.CgroupParent)
	}
	reg, err := newRegistryClient(cfg.Registry)
	if err != nil {
		return nil, err
	}
	if cfg.Runtime != "" {
		p, err := exec.LookPath(cfg.Runtime)
		if err != nil {
			return nil, fmt.Errorf("--runtime %s: %w", cfg.Runtime, err)
		}
		cfg.Runtime = p
	}
	if cfg.Binary == "" {
		self, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("find own binary: %w", err)
		}
		cfg.Binary = self
	}
	if cfg.Log == nil {
		cfg.Log = log.New(os.Stderr, "minidock daemon: ", log.LstdFlags)
	}
	for _, dir := range []string{cfg.DataRoot, cfg.ExecRoot, filepath.Join(cfg.ExecRoot, "shim")} {
		if err := os.MkdirAll(dir, 0o711); err != nil {
			return nil, fmt.Errorf("create %s: %w", dir, err)
		}
	}
	d := &Daemon{cfg: cfg, log: cfg.Log, containers: map[string]*Container{}, names: map[string]string{}, execs: map[string]*Exec{}}
	if d.remap, err = setupRemap(cfg.UsernsRemap); err != nil { // userns.go
		return nil, err
	}
	if d.remap != nil {
		// the containers' root, an unprivileged uid, must reach its rootfs
		// and the files bound into it below the data root
		if err := makeReachable(cfg.DataRoot); err != nil {
			return nil, err
		}
		d.log.Printf("--userns-remap %s: containers' ids are %v (uids), %v (gids) on the host", d.remap.user, d.remap.UIDs, d.remap.GIDs)
	}
	d.registry = reg
	if err := d.lockDataRoot(); err != nil {
		return nil, err
	}
	if d.images, err = image.Open(cfg.DataRoot); err != nil {
		d.lock.Close()
		return nil, err
	}
	d.images.Unpack.MaxLayerSize = cfg.MaxUnpackSize
	d.removeBuildLeftovers()
	if d.volumes, err = volume.Open(filepath.Join(cfg.DataRoot, "volumes")); err != nil {
		d.lock.Close()
		return nil, err
	}
	d.volumes.Notify(func(action, name string) { d.emitVolume(action, name, nil) })
	ncfg := cfg.Network
	ncfg.Root = filepath.Join(cfg.DataRoot, "network")
	ncfg.ExecRoot = cfg.ExecRoot
	ncfg.Log = d.log
	ncfg.Event = d.emitNetwork
	if d.network, err = network.Open(ncfg); err != nil {
		d.lock.Close()
		return nil, err
	}
	d.checkHost() // after network.Open, which turns ip_forward on
	stopped, err := d.restore()
	if err != nil {
		d.lock.Close()
		return nil, err
	}
	d.removeStaleTraces()
	d.shims = &shim.Launcher{Binary: cfg.Binary, RuntimeRoot: d.runtimeRoot()}
	if err := d.shims.Prepare(); err != nil {
		d.log.Printf("start a spare shim: %v", err)
	}
	go d.autoStart(stopped) // restart policies, as the daemon comes up
	return d, nil
}

// lockDataRoot takes <data-root>/minidock.lock: one daemon per data root.
func (d *Daemon) lockDataRoot() error {
	p := filepath.Join(d.cfg.DataRoot, "minidock.lock")
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open lock file: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return fmt.Errorf("data root %s is in use by another daemon (lock %s held)", d.cfg.DataRoot, p)
		}
		return fmt.Errorf("lock %s: %w", p, err)
	}
	f.Truncate(0)
	f.WriteString(strconv.Itoa(os.Getpid()) + "\n")
	d.lock = f
	return nil
}

// Close releases the data root and, when no container runs, the network
// state the daemon made. Running containers keep running under their
// shims; the next daemon takes them up.
func (d *Daemon) Close() {
	d.mu.Lock()
	running := 0
	for _, c := range d.containers {
		if c.State.Status == "running" {
			running++
		}
	}
	d.mu.Unlock()
	d.shims.Close()
	d.network.Close(running > 0)
	d.lock.Close()
	d.log.Printf("stopped; %d containers keep running under their shims", running)
}

// Describe is a line about the daemon's set-up, for its log.
func (d *Daemon) Describe() string {
	rt := "minidock (in the shim's process)"
	if d.cfg.Runtime != "" {
		rt = d.cfg.Runtime + " (command line)"
	}
	mode := "unknown"
	if m, err := cgroup.DetectMode(); err == nil {
		mode = m.String()
	}
	return fmt.Sprintf("data root %s, exec root %s, runtime %s, cgroups %s under %s",
		d.cfg.DataRoot, d.cfg.ExecRoot, rt, mode, d.cfg.CgroupParent)
}

func (d *Daemon) runtimeRoot() string { return filepath.Join(d.cfg.ExecRoot, "runtime") }
