package daemon

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"minidock/api"
	"minidock/shim"
)

// Container is one container as the daemon keeps it; the exported fields
// are its config.v2.json in <data-root>/containers/<id>/.
type Container struct {
	ID         string
	Name       string // without Docker's leading slash
	Created    time.Time
	Image      string // the image ID
	ImageRef   string // the image as the user named it
	Config     api.ContainerConfig
	HostConfig api.HostConfig
	State      State
	Networks   map[string]*Endpoint // bridge networks, by network name (netcontainer.go)
	Ports      []PublishedPort      // while it runs
	// RestartCount counts the restarts its restart policy made since the
	// user last started it; ManuallyStopped is set by stop, kill and rm,
	// so that the policy lets it be (Docker's HasBeenManuallyStopped).
	RestartCount    int
	ManuallyStopped bool

	op      sync.Mutex    // serialises start, stop and remove
	changed chan struct{} // closed and replaced on every state change
	exits   int           // exits seen since the daemon started
	removed bool
	// the restart policy's backoff, and a counter that drops a restart
	// scheduled before a later stop or start
	restartDelay time.Duration
	restartSeq   int
	// while a start runs: the shim's socket once the container is
	// created, and how many attach requests still have to connect to it
	shimSocket string
	attaching  int
	oom        *oomWatch // while it runs: watches its memory cgroup
}

// State is the saved part of a container's state.
type State struct {
	Status     string // created, running, exited
	Paused     bool   // running, but frozen
	OOMKilled  bool   // the OOM killer hit its cgroup during the last run
	Pid        int
	ExitCode   int
	Error      string
	StartedAt  time.Time
	FinishedAt time.Time
	Restarting bool `json:"-"` // waiting for its restart policy's backoff
}

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

func (d *Daemon) containerDir(id string) string {
	return filepath.Join(d.cfg.DataRoot, "containers", id)
}

func (d *Daemon) shimSocket(id string) string {
	return filepath.Join(d.cfg.ExecRoot, "shim", id+".sock")
}

// save writes config.v2.json atomically. Callers hold d.mu.
func (d *Daemon) save(c *Container) error {
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	p := filepath.Join(d.containerDir(c.ID), "config.v2.json")
	tmp := p + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("save container %s: %w", c.ID, err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	f.Close()
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("save container %s: %w", c.ID, err)
	}
	return nil
}

// notify wakes everyone waiting on c's state. Callers hold d.mu.
func (c *Container) notify() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// restore loads every saved container and reconnects to the shims of
// those that were running; those whose shim has gone get their recorded
// exit status (and their restart policy, through exited). It returns the
// containers found stopped, for autoStart.
func (d *Daemon) restore() ([]*Container, error) {
	dir := filepath.Join(d.cfg.DataRoot, "containers")
	ents, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", dir, err)
	}
	var stopped []*Container
	for _, e := range ents {
		data, err := os.ReadFile(filepath.Join(dir, e.Name(), "config.v2.json"))
		if os.IsNotExist(err) {
			continue // a rootfs whose create did not finish
		}
		var c Container
		if err == nil {
			err = json.Unmarshal(data, &c)
		}
		if err != nil || c.ID != e.Name() {
			fmt.Fprintf(os.Stderr, "minidock daemon: skip container %s: bad config.v2.json (%v)\n", e.Name(), err)
			continue
		}
		c.changed = make(chan struct{})
		d.containers[c.ID] = &c
		d.names[c.Name] = c.ID
		if c.State.Status == "running" {
			d.reconnect(&c)
		} else {
			stopped = append(stopped, &c)
		}
	}
	return stopped, nil
}

// reconnect takes up a container that was running when the last daemon
// stopped. Before the API serves: one whose shim has written exit.json
// (or is gone) is recorded as exited now; otherwise the shim is watched.
func (d *Daemon) reconnect(c *Container) {
	if _, err := os.Stat(filepath.Join(d.containerDir(c.ID), shim.ExitFile)); err == nil {
		d.exited(c)
		return
	}
	c.oom = d.watchOOM(c)
	conn, err := dialShim(d.shimSocket(c.ID), shim.Request{Wait: true})
	if err != nil {
		d.exited(c)
		return
	}
	go d.watch(c, conn)
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
					return nil, badRequest("multiple IDs found with provided prefix: %s", ref)
				}
				found = c
			}
		}
	}
	if found == nil {
		return nil, notFound("No such container: %s", ref)
	}
	return found, nil
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

func (d *Daemon) containerCreate(w http.ResponseWriter, r *http.Request) {
	var req api.ContainerCreateRequest
	if err := decodeJSON(w, r, &req); err != nil {
		writeError(w, err)
		return
	}
	name := strings.TrimPrefix(r.URL.Query().Get("name"), "/")
	if name != "" && !nameRE().MatchString(name) {
		writeError(w, badRequest("Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", name))
		return
	}
	if req.Image == "" {
		writeError(w, badRequest("no image given: Config.Image is empty"))
		return
	}
	img, err := d.resolveImage(req.Image)
	if err != nil {
		writeError(w, err)
		return
	}
	hc := api.HostConfig{}
	if req.HostConfig != nil {
		hc = *req.HostConfig
	}
	if err := checkRestartPolicy(&hc); err != nil {
		writeError(w, err)
		return
	}
	if hc.Memory < 0 || hc.NanoCPUs < 0 || hc.CPUShares < 0 {
		writeError(w, badRequest("Memory, NanoCpus and CpuShares must not be negative"))
		return
	}
	if hc.Memory > 0 && hc.Memory < 6<<20 {
		writeError(w, badRequest("Minimum memory limit allowed is 6MB"))
		return
	}
	cfg := req.ContainerConfig
	// The command is fixed now, from the image where the request has none.
	argv := command(&cfg, img.Config.Config)
	if len(argv) == 0 {
		writeError(w, badRequest("no command specified"))
		return
	}
	if cfg.Entrypoint == nil {
		cfg.Entrypoint = img.Config.Config.Entrypoint
		if cfg.Cmd == nil {
			cfg.Cmd = img.Config.Config.Cmd
		}
	}
	cfg.Env = mergeEnv(img.Config.Config.Env, cfg.Env)
	if cfg.WorkingDir == "" {
		cfg.WorkingDir = img.Config.Config.WorkingDir
	}
	if cfg.User == "" {
		cfg.User = img.Config.Config.User
	}
	c := &Container{
		ID: newID(), Created: time.Now().UTC(), Image: img.ID.String(), ImageRef: req.Image,
		Config: cfg, HostConfig: hc, State: State{Status: "created"}, changed: make(chan struct{}),
	}
	d.netMu.Lock()
	warnings, err := d.planNetworks(c, req.NetworkingConfig, img.Config.Config)
	d.netMu.Unlock()
	if err != nil {
		writeError(w, err)
		return
	}
	if warnings == nil {
		warnings = []string{}
	}
	d.mu.Lock()
	if name == "" {
		name = d.newName(c.ID)
	}
	if id, used := d.names[name]; used {
		d.mu.Unlock()
		writeError(w, conflict(`Conflict. The container name "/%s" is already in use by container "%s". You have to remove (or rename) that container to be able to reuse that name.`, name, id))
		return
	}
	c.Name = name
	d.names[name] = c.ID // reserved while the rootfs is made
	d.mu.Unlock()

	err = d.createFiles(c)
	d.mu.Lock()
	defer d.mu.Unlock()
	if err != nil {
		delete(d.names, name)
		writeError(w, err)
		return
	}
	d.containers[c.ID] = c
	d.emit(c, "create", nil)
	writeJSON(w, http.StatusCreated, api.CreateResponse{ID: c.ID, Warnings: warnings})
}

// createFiles makes the container's rootfs and its config.v2.json; on
// failure it leaves nothing.
func (d *Daemon) createFiles(c *Container) error {
	if _, err := d.images.PrepareRootfs(c.ID, c.Image); err != nil {
		return fmt.Errorf("create container: %w", err)
	}
	if err := d.save(c); err != nil {
		d.images.RemoveRootfs(c.ID)
		os.RemoveAll(d.containerDir(c.ID))
		return err
	}
	return nil
}

const zeroTime = "0001-01-01T00:00:00Z"

func formatTime(t time.Time) string {
	if t.IsZero() {
		return zeroTime
	}
	return t.Format(time.RFC3339Nano)
}

func (d *Daemon) containerInspect(w http.ResponseWriter, r *http.Request) {
	c, err := d.lookup(r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	d.mu.Lock()
	argv := c.argv()
	cfg, hc := c.Config, c.HostConfig
	out := api.ContainerJSON{
		ID: c.ID, Created: formatTime(c.Created), Path: argv[0], Args: argv[1:],
		State: &api.ContainerState{
			Status: c.State.status(), Running: c.State.Status == "running", Paused: c.State.Paused, Restarting: c.State.Restarting, OOMKilled: c.State.OOMKilled, Pid: c.State.Pid,
			ExitCode: c.State.ExitCode, Error: c.State.Error,
			StartedAt: formatTime(c.State.StartedAt), FinishedAt: formatTime(c.State.FinishedAt),
		},
		Image: c.Image, Name: "/" + c.Name, LogPath: filepath.Join(d.containerDir(c.ID), c.ID+"-json.log"),
		HostsPath: filepath.Join(d.containerDir(c.ID), "hosts"), HostnamePath: filepath.Join(d.containerDir(c.ID), "hostname"),
		ResolvConfPath: filepath.Join(d.containerDir(c.ID), "resolv.conf"),
		Driver:         "overlay2", Platform: "linux", Config: &cfg, HostConfig: &hc, RestartCount: c.RestartCount,
		NetworkSettings: d.networkSettings(c), Mounts: []any{},
	}
	out.Config.Image = c.ImageRef
	d.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
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
		return "About a" + map[bool]string{true: "n", false: ""}[unit == "hour"] + " " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}

// containerList is GET /containers/json: running ones, or all; filters
// by id, name, status and label.
func (d *Daemon) containerList(w http.ResponseWriter, r *http.Request) {
	filters, err := parseFilters(r.URL.Query().Get("filters"))
	if err != nil {
		writeError(w, err)
		return
	}
	for k := range filters {
		switch k {
		case "id", "name", "status", "label":
		default:
			writeError(w, badRequest("invalid filter '%s'", k))
			return
		}
	}
	limit := -1
	if l := r.URL.Query().Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil {
			writeError(w, badRequest("invalid limit %q", l))
			return
		}
		limit = n
	}
	// a limit lists the last created containers in every state, as Docker's
	all := boolParam(r, "all") || len(filters["status"]) > 0 || limit > 0
	now := time.Now()
	out := []api.ContainerSummary{}
	d.mu.Lock()
	var list []*Container
	for _, c := range d.containers {
		if (all || c.State.Status == "running") && matches(c, filters) {
			list = append(list, c)
		}
	}
	// newest first, to the nanosecond (Created is in seconds)
	sort.Slice(list, func(i, j int) bool { return list[i].Created.After(list[j].Created) })
	if limit > 0 && len(list) > limit {
		list = list[:limit]
	}
	for _, c := range list {
		labels := c.Config.Labels
		if labels == nil {
			labels = map[string]string{}
		}
		out = append(out, api.ContainerSummary{
			ID: c.ID, Names: []string{"/" + c.Name}, Image: c.ImageRef, ImageID: c.Image,
			Command: strings.Join(c.argv(), " "), Created: c.Created.Unix(), State: c.State.status(),
			Status: statusText(c.State, now), Ports: summaryPorts(c), Labels: labels, Mounts: []any{},
			NetworkSettings: &api.SummaryNetworkSettings{Networks: d.networkSettings(c).Networks},
		})
		out[len(out)-1].HostConfig.NetworkMode = c.HostConfig.NetworkMode
	}
	d.mu.Unlock()
	writeJSON(w, http.StatusOK, out)
}

func matches(c *Container, filters map[string][]string) bool {
	return anyMatch(filters["id"], func(v string) bool { return strings.HasPrefix(c.ID, v) }) &&
		anyMatch(filters["name"], func(v string) bool { return strings.Contains(c.Name, strings.TrimPrefix(v, "/")) }) &&
		anyMatch(filters["status"], func(v string) bool { return c.State.status() == v }) &&
		allLabels(c.Config.Labels, filters["label"])
}

// allLabels reports whether labels has every key or key=value wanted.
func allLabels(labels map[string]string, wanted []string) bool {
	for _, v := range wanted {
		k, val, hasVal := strings.Cut(v, "=")
		got, ok := labels[k]
		if !ok || (hasVal && got != val) {
			return false
		}
	}
	return true
}

// parseFilters reads the filters query parameter: {"key":["value",...]},
// or the older {"key":{"value":true}} that some clients still send.
func parseFilters(f string) (map[string][]string, error) {
	filters := map[string][]string{}
	if f == "" {
		return filters, nil
	}
	if err := json.Unmarshal([]byte(f), &filters); err != nil {
		var old map[string]map[string]bool
		if json.Unmarshal([]byte(f), &old) != nil {
			return nil, badRequest("invalid filters %q: %v", f, err)
		}
		for k, m := range old {
			for v := range m {
				filters[k] = append(filters[k], v)
			}
		}
	}
	return filters, nil
}
