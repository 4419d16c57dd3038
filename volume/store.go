package volume

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"minidock/api"
	"minidock/internal/mountinfo"
)

// The on-disk layout, Docker's: <root>/<name>/_data holds the data, and
// <root>/<name>/volume.json what the volume was created with.
const (
	dataDir  = "_data"
	metaFile = "volume.json"
	// a volume being created or removed lives under a hidden name until
	// it is complete or gone; Open deletes what a crash left of either
	creatingPrefix = ".creating-"
	removingPrefix = ".removing-"
)

// DefaultDriver is the only volume driver: a directory on the host,
// optionally with a filesystem mounted on it (Docker's "local").
const DefaultDriver = "local"

// Store keeps the volumes of one engine, under <data-root>/volumes.
type Store struct {
	root string

	mu      sync.Mutex
	volumes map[string]*volume
	// notify is told of each volume created and removed (Notify)
	notify func(action, name string)
}

// Notify has f told, from then on, of each volume the store creates
// (action "create") and removes ("destroy"), whichever operation does it:
// the engine's volume events. f runs under the store's lock and must not
// call the store.
func (s *Store) Notify(f func(action, name string)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.notify = f
}

// tell passes an event to notify, under s.mu.
func (s *Store) tell(action, name string) {
	if s.notify != nil {
		s.notify(action, name)
	}
}

// volume is one volume: its record on disk, and who uses it now.
type volume struct {
	meta metadata
	dir  string // <root>/<name>

	// users are the containers that use the volume (Acquire..Release);
	// mounts those it is mounted for (Mount..Unmount); mounted is whether
	// its driver options are mounted on _data now.
	users   map[string]bool
	mounts  map[string]bool
	mounted bool
}

// metadata is volume.json.
type metadata struct {
	Name      string            `json:"Name"`
	Driver    string            `json:"Driver"`
	Labels    map[string]string `json:"Labels,omitempty"`
	Options   map[string]string `json:"Options,omitempty"`
	CreatedAt time.Time         `json:"CreatedAt"`
}

func (v *volume) data() string { return filepath.Join(v.dir, dataDir) }

func (v *volume) inUse() bool { return len(v.users) > 0 || len(v.mounts) > 0 }

// Open reads the volumes under root (<data-root>/volumes), creating root
// if needed. A volume whose driver options are still mounted on its _data
// (containers that outlived a daemon restart) is known as mounted, with
// no users until the engine declares them (Restore).
func Open(root string) (*Store, error) {
	if err := os.MkdirAll(root, 0o701); err != nil {
		return nil, fmt.Errorf("open volume store: %w", err)
	}
	// the path as the mount table spells it: absolute, no symlinks
	root, err := filepath.Abs(root)
	if err == nil {
		root, err = filepath.EvalSymlinks(root)
	}
	if err != nil {
		return nil, fmt.Errorf("open volume store: %w", err)
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("open volume store: %w", err)
	}
	s := &Store{root: root, volumes: map[string]*volume{}}
	for _, e := range entries {
		name := e.Name()
		if !e.IsDir() {
			continue
		}
		if strings.HasPrefix(name, creatingPrefix) || strings.HasPrefix(name, removingPrefix) {
			// hidden from the API either way; one with something still
			// mounted in it is left for a later Open
			removeTree(filepath.Join(root, name))
			continue
		}
		v, err := s.load(name)
		if err != nil {
			return nil, fmt.Errorf("open volume store: %w", err)
		}
		if v != nil {
			s.volumes[name] = v
		}
	}
	return s, nil
}

// load reads one volume's directory; nil when it is not a volume.
func (s *Store) load(name string) (*volume, error) {
	if ValidateName(name) != nil {
		return nil, nil
	}
	v := &volume{dir: filepath.Join(s.root, name), users: map[string]bool{}, mounts: map[string]bool{}}
	data, err := os.ReadFile(filepath.Join(v.dir, metaFile))
	switch {
	case err == nil:
		if err := json.Unmarshal(data, &v.meta); err != nil {
			return nil, fmt.Errorf("volume %s: read %s: %w", name, metaFile, err)
		}
	case errors.Is(err, fs.ErrNotExist):
		// a _data directory alone (made by hand, or by an older engine):
		// a local volume without options
		fi, err := os.Stat(v.data())
		if err != nil || !fi.IsDir() {
			return nil, nil
		}
		v.meta = metadata{Name: name, Driver: DefaultDriver, CreatedAt: changeTime(fi)}
	default:
		return nil, fmt.Errorf("volume %s: %w", name, err)
	}
	if v.meta.Name != name {
		return nil, fmt.Errorf("volume %s: %s names it %q", name, metaFile, v.meta.Name)
	}
	if needsMount(v.meta.Options) {
		mounted, err := mountinfo.IsMountPoint(v.data())
		if err != nil {
			return nil, fmt.Errorf("volume %s: %w", name, err)
		}
		v.mounted = mounted
	}
	return v, nil
}

func changeTime(fi fs.FileInfo) time.Time {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return time.Unix(st.Ctim.Unix())
	}
	return fi.ModTime()
}

var nameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`) })

// ValidateName checks a volume name with Docker's rule (it becomes a
// directory name: no "/", no leading "."), in Docker's words.
func ValidateName(name string) error {
	if len(name) == 1 {
		return invalidf("volume name is too short, names should be at least two alphanumeric characters")
	}
	if len(name) > 255 {
		return invalidf("volume name is too long (%d bytes), names may have at most 255", len(name))
	}
	if !nameRE().MatchString(name) {
		return invalidf("%q includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path", name)
	}
	return nil
}

// randomName is the name of an anonymous volume: 64 hex digits.
func randomName() string {
	var b [32]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Create makes a volume, as POST /volumes/create: an empty name makes an
// anonymous one (a random name and the AnonymousVolumeLabel). A volume of
// that name that exists already is returned as it is, options and labels
// unchanged, as Docker does. DriverOpts are the local driver's (type,
// device, o; see validateOptions).
//
// The volume's directory is made complete under a hidden name (its _data
// and volume.json, fsync'ed) and renamed into place in one step: after a
// crash a volume is there whole or not at all.
func (s *Store) Create(opts api.VolumeCreateOptions) (api.Volume, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, _, err := s.create(opts)
	if err != nil {
		return api.Volume{}, err
	}
	return v.view(), nil
}

// create is Create under s.mu; made says whether it made the volume. Its
// errors name the volume as Docker's do: "create NAME: ...".
func (s *Store) create(opts api.VolumeCreateOptions) (v *volume, made bool, err error) {
	name, labels := opts.Name, opts.Labels
	if name == "" {
		name = randomName()
		labels = withLabel(labels, api.AnonymousVolumeLabel, "")
	}
	fail := func(err error) (*volume, bool, error) { return nil, false, &Error{Op: "create", Name: name, Err: err} }
	if opts.Driver != "" && opts.Driver != DefaultDriver {
		return fail(invalidf("volume driver %q is not supported: the only driver is %q", opts.Driver, DefaultDriver))
	}
	if err := ValidateName(name); err != nil {
		return fail(err)
	}
	if v := s.volumes[name]; v != nil {
		return v, false, nil
	}
	if err := validateOptions(opts.DriverOpts); err != nil {
		return fail(err)
	}
	v = &volume{
		meta: metadata{Name: name, Driver: DefaultDriver, Labels: labels, Options: opts.DriverOpts, CreatedAt: time.Now().UTC().Truncate(time.Second)},
		dir:  filepath.Join(s.root, name), users: map[string]bool{}, mounts: map[string]bool{},
	}
	if err := s.write(v); err != nil {
		return fail(err)
	}
	s.volumes[name] = v
	s.tell("create", name)
	return v, true, nil
}

func withLabel(labels map[string]string, k, val string) map[string]string {
	out := map[string]string{k: val}
	for k, v := range labels {
		out[k] = v
	}
	return out
}

// write makes v's directory atomically: built under a hidden name, then
// renamed to <root>/<name>.
func (s *Store) write(v *volume) error {
	tmp, err := os.MkdirTemp(s.root, creatingPrefix)
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(tmp)
		}
	}()
	if err := os.Chmod(tmp, 0o701); err != nil {
		return err
	}
	if err := os.Mkdir(filepath.Join(tmp, dataDir), 0o755); err != nil {
		return err
	}
	data, err := json.MarshalIndent(v.meta, "", "  ")
	if err != nil {
		return err
	}
	if err := writeFileSync(filepath.Join(tmp, metaFile), data); err != nil {
		return err
	}
	if err := syncDir(tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, v.dir); err != nil {
		if errors.Is(err, fs.ErrExist) || errors.Is(err, syscall.ENOTEMPTY) {
			return fmt.Errorf("%s exists and is not a volume", v.dir)
		}
		return err
	}
	ok = true
	return syncDir(s.root)
}

// writeFileSync writes a new file and fsyncs it.
func writeFileSync(p string, data []byte) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", dir, err)
	}
	return nil
}

// view is v as the Engine API shows it.
func (v *volume) view() api.Volume {
	return api.Volume{
		Name: v.meta.Name, Driver: v.meta.Driver, Mountpoint: v.data(),
		CreatedAt: v.meta.CreatedAt.Local().Format(time.RFC3339),
		Labels:    v.meta.Labels, Scope: "local", Options: v.meta.Options,
	}
}

// get is the volume called name, under s.mu.
func (s *Store) get(op, name string) (*volume, error) {
	v := s.volumes[name]
	if v == nil {
		return nil, &Error{Op: op, Name: name, Err: ErrNotFound}
	}
	return v, nil
}

// Get is GET /volumes/{name}, with UsageData: how many containers use the
// volume (its size is not measured: -1).
func (s *Store) Get(name string) (api.Volume, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := s.get("get", name)
	if err != nil {
		return api.Volume{}, err
	}
	out := v.view()
	out.UsageData = &api.VolumeUsageData{RefCount: int64(len(v.users)), Size: -1}
	return out, nil
}

// ListFilter selects volumes for List; a zero field selects all.
type ListFilter struct {
	// Dangling: true keeps the volumes no container uses, false the
	// others.
	Dangling *bool
	// Names are regular expressions; a volume whose name matches one is
	// kept (Docker's name filter: "data" matches "mydata1").
	Names []string
	// Drivers keeps the volumes of one of these drivers.
	Drivers []string
	// Labels are "key" or "key=value"; a volume must have every one.
	Labels []string
}

// ParseListFilter reads the filters of GET /volumes: dangling, name,
// driver, label.
func ParseListFilter(f map[string][]string) (ListFilter, error) {
	var lf ListFilter
	for k, vals := range f {
		switch k {
		case "dangling":
			for _, v := range vals {
				b, err := parseBool(v)
				if err != nil {
					return lf, invalidf("invalid filter 'dangling=%s': %v", v, err)
				}
				lf.Dangling = &b
			}
		case "name":
			for _, v := range vals {
				if _, err := regexp.Compile(v); err != nil {
					return lf, invalidf("invalid filter 'name=%s': %v", v, err)
				}
			}
			lf.Names = vals
		case "driver":
			lf.Drivers = vals
		case "label":
			lf.Labels = vals
		default:
			return lf, invalidf("invalid filter '%s'", k)
		}
	}
	return lf, nil
}

func parseBool(s string) (bool, error) {
	switch strings.ToLower(s) {
	case "1", "true":
		return true, nil
	case "0", "false":
		return false, nil
	}
	return false, fmt.Errorf("%q is not a boolean (true, false, 1, 0)", s)
}

// List is GET /volumes: the volumes f selects, sorted by name.
func (s *Store) List(f ListFilter) []api.Volume {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []api.Volume{}
	for _, v := range s.sorted() {
		if f.Dangling != nil && *f.Dangling == v.inUse() {
			continue
		}
		if len(f.Names) > 0 && !anyMatch(f.Names, v.meta.Name) {
			continue
		}
		if len(f.Drivers) > 0 && !contains(f.Drivers, v.meta.Driver) {
			continue
		}
		if !hasLabels(v.meta.Labels, f.Labels) {
			continue
		}
		out = append(out, v.view())
	}
	return out
}

func (s *Store) sorted() []*volume {
	vs := make([]*volume, 0, len(s.volumes))
	for _, v := range s.volumes {
		vs = append(vs, v)
	}
	sort.Slice(vs, func(i, j int) bool { return vs[i].meta.Name < vs[j].meta.Name })
	return vs
}

func anyMatch(res []string, name string) bool {
	for _, re := range res {
		if ok, _ := regexp.MatchString(re, name); ok {
			return true
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// hasLabels reports whether labels has every "key" or "key=value" of want.
func hasLabels(labels map[string]string, want []string) bool {
	for _, w := range want {
		k, val, withValue := strings.Cut(w, "=")
		got, ok := labels[k]
		if !ok || (withValue && got != val) {
			return false
		}
	}
	return true
}

// Remove is DELETE /volumes/{name}: refused (ErrInUse, naming the
// containers) while a container uses the volume, whether running or not.
// force only makes a missing volume no error, as Docker's -f does; it
// never removes a volume in use. Driver options mounted on _data are
// unmounted first; a bind-mounted device is never descended into.
func (s *Store) Remove(name string, force bool) error {
	s.mu.Lock()
	v := s.volumes[name]
	if v == nil {
		s.mu.Unlock()
		if force {
			return nil
		}
		return &Error{Op: "get", Name: name, Err: ErrNotFound}
	}
	trash, err := s.detach(v)
	s.mu.Unlock()
	if err != nil {
		return err
	}
	if err := removeTree(trash); err != nil {
		return &Error{Op: "remove", Name: name, Err: err}
	}
	return nil
}

// detach takes an unused volume out of the store, under s.mu: unmounted,
// renamed to a hidden name (returned) that Open would clean up, and
// forgotten. The caller removes the hidden directory.
func (s *Store) detach(v *volume) (string, error) {
	name := v.meta.Name
	if v.inUse() {
		return "", &Error{Op: "remove", Name: name, Users: v.userList(), Err: ErrInUse}
	}
	if v.mounted {
		if err := v.unmountData(); err != nil {
			return "", &Error{Op: "remove", Name: name, Err: err}
		}
		v.mounted = false
	}
	if under, err := mountinfo.Under(v.dir); err != nil || len(under) > 0 {
		if err == nil {
			err = fmt.Errorf("%s is mounted there", under[0])
		}
		return "", &Error{Op: "remove", Name: name, Err: err}
	}
	trash := filepath.Join(s.root, removingPrefix+randomName()[:16])
	if err := os.Rename(v.dir, trash); err != nil {
		return "", &Error{Op: "remove", Name: name, Err: err}
	}
	delete(s.volumes, name)
	s.tell("destroy", name)
	return trash, nil
}

func (v *volume) userList() []string {
	seen := map[string]bool{}
	var out []string
	for _, m := range []map[string]bool{v.users, v.mounts} {
		for id := range m {
			if !seen[id] {
				seen[id] = true
				out = append(out, id)
			}
		}
	}
	sort.Strings(out)
	return out
}

// removeTree deletes dir and all below it, after checking that nothing is
// mounted there: os.RemoveAll would otherwise delete what a bind mount
// shows, on the host.
func removeTree(dir string) error {
	under, err := mountinfo.Under(dir)
	if err != nil {
		return err
	}
	if len(under) > 0 {
		return fmt.Errorf("not removing %s: %s is mounted there", dir, under[0])
	}
	return os.RemoveAll(dir)
}

// PruneFilter selects the volumes Prune removes.
type PruneFilter struct {
	// All removes every unused volume; otherwise only anonymous ones (the
	// Engine API's behaviour from 1.42; older clients get All).
	All bool
	// Labels ("key" or "key=value") a volume must have, NotLabels ones it
	// must not.
	Labels, NotLabels []string
}

// ParsePruneFilter reads the filters of POST /volumes/prune: all, label,
// label!.
func ParsePruneFilter(f map[string][]string) (PruneFilter, error) {
	var pf PruneFilter
	for k, vals := range f {
		switch k {
		case "all":
			if len(vals) > 1 {
				return pf, invalidf("invalid filter 'all=%s': only one value is expected", strings.Join(vals, ","))
			}
			b, err := parseBool(vals[0])
			if err != nil {
				return pf, invalidf("invalid filter 'all': %v", err)
			}
			pf.All = b
		case "label":
			pf.Labels = vals
		case "label!":
			pf.NotLabels = vals
		default:
			return pf, invalidf("invalid filter '%s'", k)
		}
	}
	return pf, nil
}

// Prune is POST /volumes/prune: it removes the volumes no container uses
// that f selects, leaving out those with driver options (their data is not
// here), and reports their names and the bytes their data took.
func (s *Store) Prune(f PruneFilter) (api.VolumesPruneReport, error) {
	rep := api.VolumesPruneReport{VolumesDeleted: []string{}}
	s.mu.Lock()
	var trash []string
	for _, v := range s.sorted() {
		_, anonymous := v.meta.Labels[api.AnonymousVolumeLabel]
		switch {
		case v.inUse(), len(v.meta.Options) > 0, !f.All && !anonymous, !hasLabels(v.meta.Labels, f.Labels):
			continue
		}
		if len(f.NotLabels) > 0 && hasAnyLabel(v.meta.Labels, f.NotLabels) {
			continue
		}
		t, err := s.detach(v)
		if err != nil {
			s.mu.Unlock()
			return rep, err
		}
		trash = append(trash, t)
		rep.VolumesDeleted = append(rep.VolumesDeleted, v.meta.Name)
	}
	s.mu.Unlock()
	for _, t := range trash {
		rep.SpaceReclaimed += diskUsage(t)
		if err := removeTree(t); err != nil {
			return rep, fmt.Errorf("prune volumes: %w", err)
		}
	}
	return rep, nil
}

func hasAnyLabel(labels map[string]string, any []string) bool {
	for _, w := range any {
		if hasLabels(labels, []string{w}) {
			return true
		}
	}
	return false
}

// diskUsage adds up the blocks the files below dir take, each inode once.
func diskUsage(dir string) uint64 {
	var total uint64
	seen := map[uint64]bool{}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && !seen[st.Ino] {
			seen[st.Ino] = true
			total += uint64(st.Blocks) * 512
		}
		return nil
	})
	return total
}
