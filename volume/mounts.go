package volume

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"slices"
	"sort"
	"strings"

	"minidock/api"
)

// Mount is one of a container's mounts, as the engine keeps it in the
// container's record from create to rm: what Plan made of the request,
// completed by Setup (a volume's name and directory). Spec turns it into
// a config.json mount, MountPoint into inspect's.
type Mount struct {
	Type        api.MountType `json:"Type"`
	Destination string        `json:"Destination"` // in the container, clean
	// Source is the host path a bind mount binds; for a volume its data
	// directory (set by Setup); empty for tmpfs.
	Source string `json:"Source,omitempty"`
	// Name and Driver are a volume's (an anonymous one's name from Setup).
	Name   string `json:"Name,omitempty"`
	Driver string `json:"Driver,omitempty"`
	RW     bool   `json:"RW"`
	// Mode is the Binds options as written ("ro,z"); "z" for a volume
	// that had none; what inspect shows.
	Mode string `json:"Mode,omitempty"`
	// Propagation of a bind: rprivate unless asked.
	Propagation api.Propagation `json:"Propagation,omitempty"`
	// NonRecursive binds without the mounts below the source.
	NonRecursive bool `json:"NonRecursive,omitempty"`
	// CopyData: the volume gets a copy of the image's content at
	// Destination when new (Populate); false with nocopy.
	CopyData bool `json:"CopyData,omitempty"`
	// CreateSource: a missing host path is made at start (-v, as Docker
	// does; --mount refuses it unless bind-create-src).
	CreateSource bool `json:"CreateSource,omitempty"`
	// TmpfsData is a tmpfs mount's data (size=64m,mode=1777).
	TmpfsData string `json:"TmpfsData,omitempty"`
	// FromTmpfs marks a HostConfig.Tmpfs mount, which inspect does not
	// list among Mounts (Docker shows it in HostConfig only).
	FromTmpfs bool `json:"FromTmpfs,omitempty"`
	// DriverOpts and Labels are for the volume the mount creates when it
	// does not exist (--mount volume-opt=, volume-label=).
	DriverOpts map[string]string `json:"DriverOpts,omitempty"`
	Labels     map[string]string `json:"Labels,omitempty"`
	// New marks a volume that Setup created for this container (not
	// saved): what Undo removes when the create fails after Setup.
	New bool `json:"-"`
}

// Request is the storage part of a container create.
type Request struct {
	Binds  []string          // HostConfig.Binds (-v SRC:DST)
	Mounts []api.Mount       // HostConfig.Mounts (--mount)
	Tmpfs  map[string]string // HostConfig.Tmpfs (--tmpfs DST:OPTS)
	// Volumes are the anonymous volumes asked for: Config.Volumes (-v DST)
	// and the image's VOLUME entries.
	Volumes     map[string]struct{}
	VolumesFrom []string // HostConfig.VolumesFrom (--volumes-from C[:ro])
	// MountsOf returns the mounts of another container, for VolumesFrom;
	// its error is returned as it is (the engine's "no such container").
	MountsOf func(container string) ([]Mount, error)
}

// Plan checks a container's storage request and turns it into its mounts,
// sorted by destination, touching nothing: bad input (Docker's words where
// Docker has them) is an error that errors.Is ErrInvalid, before anything
// is created. The order is Docker's: the mounts of --volumes-from
// containers first, replaced by Binds and Mounts at the same destination;
// two of Binds, Mounts and Tmpfs on one destination are an error; then an
// anonymous volume for each of Volumes no mount covers.
func Plan(r Request) ([]Mount, error) {
	byDest := map[string]Mount{}
	explicit := map[string]bool{}
	claim := func(m Mount) error {
		if explicit[m.Destination] {
			return invalidf("Duplicate mount point: %s", m.Destination)
		}
		explicit[m.Destination] = true
		byDest[m.Destination] = m
		return nil
	}
	for _, spec := range r.VolumesFrom {
		id, mode, err := api.ParseVolumesFrom(spec)
		if err != nil {
			return nil, invalid(err)
		}
		if r.MountsOf == nil {
			return nil, invalidf("--volumes-from %s: no container to take mounts from", id)
		}
		theirs, err := r.MountsOf(id)
		if err != nil {
			return nil, err
		}
		for _, m := range VolumesFrom(theirs, mode) {
			byDest[m.Destination] = m
		}
	}
	for _, dest := range slices.Sorted(maps.Keys(r.Tmpfs)) {
		m, err := planTmpfs(dest, r.Tmpfs[dest])
		if err != nil {
			return nil, err
		}
		if err := claim(m); err != nil {
			return nil, err
		}
	}
	for _, b := range r.Binds {
		am, mode, err := api.ParseBind(b)
		if err != nil {
			return nil, invalid(err)
		}
		m, err := planMount(am)
		if err != nil {
			return nil, err
		}
		m.Mode = mode
		if m.Type == api.MountTypeVolume && m.Mode == "" {
			m.Mode = "z"
		}
		m.CreateSource = m.Type == api.MountTypeBind
		if m.CreateSource {
			if err := checkBindSource(m.Source); err != nil {
				return nil, err
			}
		}
		if err := claim(m); err != nil {
			return nil, err
		}
	}
	for _, am := range r.Mounts {
		if err := api.ValidateMount(am); err != nil {
			return nil, invalid(err)
		}
		m, err := planMount(am)
		if err != nil {
			return nil, err
		}
		if m.Type == api.MountTypeVolume {
			m.Mode = "z"
		}
		if m.Type == api.MountTypeBind {
			m.CreateSource = am.BindOptions != nil && am.BindOptions.CreateMountpoint
			if _, err := os.Stat(m.Source); errors.Is(err, fs.ErrNotExist) && !m.CreateSource {
				return nil, invalidf("invalid mount config for type \"bind\": bind source path does not exist: %s", m.Source)
			}
			if err := checkBindSource(m.Source); err != nil {
				return nil, err
			}
		}
		if err := claim(m); err != nil {
			return nil, err
		}
	}
	for _, dest := range slices.Sorted(maps.Keys(r.Volumes)) {
		if err := validateTarget(dest); err != nil {
			return nil, err
		}
		d := path.Clean(dest)
		if _, ok := byDest[d]; !ok {
			byDest[d] = Mount{Type: api.MountTypeVolume, Destination: d, Driver: DefaultDriver, RW: true, CopyData: true}
		}
	}
	out := make([]Mount, 0, len(byDest))
	for _, m := range byDest {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Destination < out[j].Destination })
	return out, nil
}

// checkBindSource refuses a missing bind source that a start would have
// to create through a symlink whose target does not exist: the source is
// made where the user named it, not wherever a link leads.
func checkBindSource(source string) error {
	if _, err := os.Stat(source); err == nil {
		return nil
	}
	p := "/"
	for _, c := range strings.Split(strings.TrimPrefix(source, "/"), "/") {
		p = path.Join(p, c)
		fi, err := os.Lstat(p)
		if err != nil {
			return nil // from here on, plain directories are made
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			continue
		}
		if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
			target, _ := os.Readlink(p)
			return invalidf("invalid mount config for type \"bind\": bind source path %s goes through %s, a symlink to %s, which does not exist: not creating it there", source, p, target)
		}
	}
	return nil
}

// validateTarget checks a destination given without a mount type
// (Tmpfs, Volumes), in Docker's words.
func validateTarget(dest string) error {
	if path.Clean(dest) == "/" {
		return invalid(api.ErrTargetIsRoot)
	}
	if !path.IsAbs(dest) {
		return invalidf("invalid mount path: '%s' mount path must be absolute", dest)
	}
	return nil
}

// planTmpfs is one HostConfig.Tmpfs entry.
func planTmpfs(dest, data string) (Mount, error) {
	if err := validateTarget(dest); err != nil {
		return Mount{}, err
	}
	if err := validateTmpfsData(data); err != nil {
		return Mount{}, invalidf("invalid tmpfs options for %s: %v", dest, err)
	}
	ro := false
	for _, o := range strings.Split(data, ",") {
		switch o {
		case "ro":
			ro = true
		case "rw":
			ro = false
		}
	}
	return Mount{Type: api.MountTypeTmpfs, Destination: path.Clean(dest), RW: !ro, TmpfsData: data, FromTmpfs: true}, nil
}

// planMount turns a valid api.Mount (from Binds or Mounts) into a Mount,
// refusing what this engine does not do.
func planMount(am api.Mount) (Mount, error) {
	m := Mount{Type: am.Type, Destination: path.Clean(am.Target), RW: !am.ReadOnly}
	switch am.Type {
	case api.MountTypeVolume:
		m.Name, m.Driver, m.CopyData = am.Source, DefaultDriver, true
		if o := am.VolumeOptions; o != nil {
			m.CopyData = !o.NoCopy
			m.Labels = o.Labels
			if o.Subpath != "" {
				return Mount{}, invalidf("volume-subpath %q: volume subpaths are not supported", o.Subpath)
			}
			if d := o.DriverConfig; d != nil {
				if d.Name != "" && d.Name != DefaultDriver {
					return Mount{}, invalidf("volume driver %q is not supported: the only driver is %q", d.Name, DefaultDriver)
				}
				if err := validateOptions(d.Options); err != nil {
					return Mount{}, err
				}
				m.DriverOpts = d.Options
			}
		}
		if m.Name != "" {
			if err := ValidateName(m.Name); err != nil {
				return Mount{}, &Error{Op: "create", Name: m.Name, Err: err}
			}
		}
	case api.MountTypeBind:
		m.Source, m.Propagation = path.Clean(am.Source), api.PropagationRPrivate
		if o := am.BindOptions; o != nil {
			if o.Propagation != "" {
				m.Propagation = o.Propagation
			}
			if o.ReadOnlyForceRecursive {
				return Mount{}, invalidf("bind-recursive=readonly: recursively read-only bind mounts are not supported; a read-only bind is read-only at its top mount only")
			}
			m.NonRecursive = o.NonRecursive
		}
	case api.MountTypeTmpfs:
		m.TmpfsData = tmpfsData(am.TmpfsOptions, am.ReadOnly)
	}
	return m, nil
}

// VolumesFrom derives a container's mounts from another's (its mounts as
// Setup left them), as --volumes-from CONTAINER[:MODE] does: the same
// volumes, binds and --mount tmpfs mounts at the same destinations, each
// read-only when MODE has ro or it was read-only there, never copied into;
// the other's --tmpfs mounts are its own.
func VolumesFrom(theirs []Mount, mode string) []Mount {
	ro := false
	for _, o := range strings.Split(mode, ",") {
		ro = ro || o == "ro"
	}
	var out []Mount
	for _, m := range theirs {
		if m.FromTmpfs {
			continue
		}
		m.RW = m.RW && !ro
		m.CopyData, m.Mode = false, ""
		out = append(out, m)
	}
	return out
}

// MountPoints are a container's mounts as inspect shows them (Mounts),
// sorted by destination.
func MountPoints(mounts []Mount) []api.MountPoint {
	out := []api.MountPoint{}
	for _, m := range mounts {
		if m.FromTmpfs {
			continue
		}
		out = append(out, api.MountPoint{
			Type: m.Type, Name: m.Name, Source: m.Source, Destination: m.Destination,
			Driver: m.Driver, Mode: m.Mode, RW: m.RW, Propagation: m.Propagation,
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Destination < out[j].Destination })
	return out
}

// MountFor finds the mount that covers the container path p (the one
// with the deepest destination that is p or a directory above it) and
// returns it with p relative to its destination; ok is false when p is in
// the container's own filesystem. For docker cp: a path on a volume or a
// bind is read and written in its host directory (Source), not in the
// container's writable layer, which the mount hides. A tmpfs has no host
// directory: its content lives in the container's mount namespace only.
func MountFor(mounts []Mount, p string) (m Mount, rel string, ok bool) {
	p = path.Clean("/" + p)
	best := -1
	for i, c := range mounts {
		if (p == c.Destination || strings.HasPrefix(p, c.Destination+"/")) &&
			(best < 0 || len(c.Destination) > len(mounts[best].Destination)) {
			best = i
		}
	}
	if best < 0 {
		return Mount{}, "", false
	}
	rel = strings.TrimPrefix(strings.TrimPrefix(p, mounts[best].Destination), "/")
	if rel == "" {
		rel = "."
	}
	return mounts[best], rel, true
}

// String names a mount in messages: "volume data on /data".
func (m Mount) String() string {
	what := m.Source
	if m.Type == api.MountTypeVolume {
		what = m.Name
	}
	return fmt.Sprintf("%s %s on %s", m.Type, what, m.Destination)
}
