package daemon

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"minidock/api"
	"minidock/internal/atomicfile"
	"minidock/internal/errdefs"
	"minidock/internal/trace"
	"minidock/network"
	"minidock/shim"
	"minidock/volume"
)

// Container is one container as the daemon keeps it; the exported fields
// are its config.v2.json in <data-root>/containers/<id>/.
type Container struct {
	ID       string
	Name     string // without Docker's leading slash
	Created  time.Time
	Image    string // the image ID
	ImageRef string // the image as the user named it
	// Config is the request's config merged with the image's at create
	// (command, environment, working directory, user, exposed ports, stop
	// signal): nothing reads the image config again.
	Config     api.ContainerConfig
	HostConfig api.HostConfig
	// UserNamespace is the id mapping of a container made under
	// --userns-remap (userns.go); nil: none.
	UserNamespace *IDMapping `json:",omitempty"`
	// CgroupPath is the container's cgroupsPath, fixed at create:
	// <cgroup-parent>/<id>. The OCI config and the shim take it from here.
	CgroupPath string
	State      State
	Networks   map[string]*network.Endpoint // bridge networks, by network name
	Ports      []network.PublishedPort      // while it runs
	// Mounts are its volumes, binds and tmpfs mounts, planned and set up
	// at create (daemon/volumes.go); each start binds them in again.
	Mounts    []volume.Mount `json:",omitempty"`
	GatewayIf string         `json:",omitempty"` // its interface on the overlay gateway bridge, while it runs
	// RestartCount counts the restarts its restart policy made since the
	// user last started it; ManuallyStopped is set by stop, kill and rm,
	// so that the policy lets it be (Docker's HasBeenManuallyStopped).
	RestartCount    int
	ManuallyStopped bool
	// Removing is saved before a removal deletes anything: a daemon that
	// dies meanwhile finishes the removal when it comes back.
	Removing bool `json:",omitempty"`
	// RemoveVolumes, saved with Removing: the removal takes the
	// container's anonymous volumes too (rm -v, AutoRemove).
	RemoveVolumes bool `json:",omitempty"`
	// Trace: every start of the container, and its end, is traced into
	// its trace file (trace.go).
	Trace bool `json:",omitempty"`

	paths   paths
	tr      *trace.Tracer // its trace file, once opened (trace.go)
	trOnce  sync.Once
	op      sync.Mutex    // serialises start, stop, remove, and what mounts the rootfs
	changed chan struct{} // closed and replaced on every state change
	exits   int           // exits seen since the daemon started
	removed bool
	// the restart policy's backoff, and a counter that drops a restart
	// scheduled before a later stop or start
	restartDelay time.Duration
	restartSeq   int
	// while a start runs: whether its shim is listening, and how many
	// attach requests still have to connect to it
	shimUp    bool
	attaching int
	// a client's step stream for the next start (step.go)
	step *stepStream
	// process is the OCI process of the current run (the bundle's), on
	// which execs are modelled
	process *specs.Process
}

// State is the saved part of a container's state.
type State struct {
	Status string // created, running, exited
	// Starting is saved before a start launches the shim, and cleared
	// when the process runs (or the start has failed): a daemon that dies
	// in between finds the shim, if any, and settles it (restore.go).
	Starting   bool `json:",omitempty"`
	Paused     bool // running, but frozen
	OOMKilled  bool // the OOM killer hit its cgroup during the last run
	Pid        int
	ExitCode   int
	Error      string
	StartedAt  time.Time
	FinishedAt time.Time
	Restarting bool `json:"-"` // waiting for its restart policy's backoff
}

// status is the Status Docker shows: a running container that is frozen
// is "paused"; one waiting for its restart policy is "restarting".
func (s State) status() string {
	if s.Status == "running" && s.Paused {
		return "paused"
	}
	if s.Restarting {
		return "restarting"
	}
	return s.Status
}

// paths are the files of a container, derived once from its ID.
type paths struct {
	dir    string // <data-root>/containers/<id>
	config string // config.v2.json
	bundle string // the OCI bundle: config.json (its rootfs is the image store's merged dir)
	log    string // the json-file log the shim writes
	socket string // <exec-root>/shim/<id>.sock
}

func (d *Daemon) pathsOf(id string) paths {
	dir := filepath.Join(d.cfg.DataRoot, "containers", id)
	return paths{dir: dir, config: filepath.Join(dir, "config.v2.json"), bundle: filepath.Join(dir, "bundle"),
		log: shim.LogPath(dir, id), socket: filepath.Join(d.cfg.ExecRoot, "shim", id+".sock")}
}

// shim is the client of c's shim.
func (c *Container) shim() shim.Client { return shim.Client{Socket: c.paths.socket} }

func (c *Container) hostname() string {
	if c.Config.Hostname != "" {
		return c.Config.Hostname
	}
	return c.ID[:12]
}

// argv is the container's command line; it is fixed at create.
func (c *Container) argv() []string {
	return append(append([]string{}, c.Config.Entrypoint...), c.Config.Cmd...)
}

// save writes config.v2.json atomically: a reader, or a daemon that
// dies meanwhile, finds the old record or the new one. It does not wait
// for the disk: the state it records (starting, running, exited) is about
// processes, which no machine crash leaves running anyway. Callers hold
// d.mu.
func (c *Container) save() error {
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Replace(c.paths.config, data, 0o600)
}

// saveDurably is save, and the record is on the disk when it returns
// (fsync of the file and its directory): for what must outlive a machine
// crash, the container's existence, name and networks. Callers hold d.mu.
func (c *Container) saveDurably() error {
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(c.paths.config, data, 0o600)
}

// notify wakes everyone waiting on c's state. Callers hold d.mu.
func (c *Container) notify() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// sandbox is c's networking for the network controller: a copy of the
// record's fields. Callers hold d.mu.
func (c *Container) sandbox() *network.Sandbox {
	sb := &network.Sandbox{ContainerID: c.ID, Name: c.Name, Hostname: c.Config.Hostname, Mode: network.Mode(&c.HostConfig),
		Endpoints: map[string]*network.Endpoint{}, Ports: append([]network.PublishedPort(nil), c.Ports...),
		PortBindings: c.HostConfig.PortBindings, PublishAll: c.HostConfig.PublishAllPorts,
		ExposedPorts: c.Config.ExposedPorts, ExtraHosts: c.HostConfig.ExtraHosts, EtcDir: c.paths.dir,
		DNS: c.HostConfig.DNS, DNSSearch: c.HostConfig.DNSSearch, DNSOptions: c.HostConfig.DNSOptions,
		GatewayIf: c.GatewayIf}
	for name, ep := range c.Networks {
		cp := *ep
		sb.Endpoints[name] = &cp
	}
	return sb
}

// setSandbox copies back what the controller set in sb: addresses,
// ports, the mode (a disconnect can change it). Callers hold d.mu.
func (c *Container) setSandbox(sb *network.Sandbox) {
	if sb.Mode != network.Mode(&c.HostConfig) {
		c.HostConfig.NetworkMode = sb.Mode
	}
	if len(sb.Endpoints) > 0 || c.Networks != nil {
		c.Networks = sb.Endpoints
	}
	c.Ports = sb.Ports
	c.GatewayIf = sb.GatewayIf
}

// lookup finds a container by full ID, name, or unique ID prefix.
func (d *Daemon) lookup(ref string) (*Container, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	ref = strings.TrimPrefix(ref, "/")
	if c, ok := d.containers[ref]; ok {
		return c, nil
	}
	if id, ok := d.names[ref]; ok {
		return d.containers[id], nil
	}
	var found *Container
	if ref != "" {
		for id, c := range d.containers {
			if strings.HasPrefix(id, ref) {
				if found != nil {
					return nil, errdefs.Invalidf("multiple IDs found with provided prefix: %s", ref)
				}
				found = c
			}
		}
	}
	if found == nil {
		return nil, errdefs.NotFoundf("No such container: %s", ref)
	}
	return found, nil
}

// stillThere is the 404 for a container removed while its caller waited
// for c.op.
func (d *Daemon) stillThere(c *Container) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if c.removed {
		return errdefs.NotFoundf("No such container: %s", c.ID)
	}
	return nil
}

var nameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$`) })

var (
	adjectives = []string{"brave", "calm", "eager", "fond", "jolly", "keen", "lucid", "quiet", "sharp", "witty"}
	scientists = []string{"curie", "darwin", "euler", "gauss", "hopper", "lovelace", "noether", "pascal", "ritchie", "turing"}
)

// newName picks a free name like Docker's "eager_turing". Callers hold d.mu.
func (d *Daemon) newName(id string) string {
	b := id[0]
	for i := 0; ; i++ {
		n := adjectives[(int(b)+i)%len(adjectives)] + "_" + scientists[(int(id[1])+i/len(adjectives))%len(scientists)]
		if i >= len(adjectives)*len(scientists) {
			n += "_" + id[:6]
		}
		if _, used := d.names[n]; !used {
			return n
		}
	}
}

func newID() string {
	var b [32]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// nameInUse is Docker's 409 for a taken name.
func nameInUse(name, id string) error {
	return errdefs.Conflictf(`Conflict. The container name "/%s" is already in use by container "%s". You have to remove (or rename) that container to be able to reuse that name.`, name, id)
}
