package api

import (
	"encoding/csv"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
)

// MountType is what a mount puts at its target.
type MountType string

const (
	// MountTypeBind is a host path bound into the container.
	MountTypeBind MountType = "bind"
	// MountTypeVolume is a volume the engine manages (named or anonymous).
	MountTypeVolume MountType = "volume"
	// MountTypeTmpfs is a memory filesystem, empty at each start.
	MountTypeTmpfs MountType = "tmpfs"
)

// Propagation is how mount events travel between a bind mount and its
// source (see docs/volumes.md).
type Propagation string

const (
	PropagationRPrivate Propagation = "rprivate"
	PropagationPrivate  Propagation = "private"
	PropagationRShared  Propagation = "rshared"
	PropagationShared   Propagation = "shared"
	PropagationRSlave   Propagation = "rslave"
	PropagationSlave    Propagation = "slave"
)

// Mount is one entry of HostConfig.Mounts (`--mount`).
type Mount struct {
	Type     MountType `json:"Type,omitempty"`
	Source   string    `json:"Source,omitempty"` // host path (bind), volume name (volume), empty (tmpfs)
	Target   string    `json:"Target,omitempty"`
	ReadOnly bool      `json:"ReadOnly,omitempty"`
	// Consistency is accepted and has no meaning on Linux.
	Consistency string `json:"Consistency,omitempty"`

	BindOptions   *BindOptions   `json:"BindOptions,omitempty"`
	VolumeOptions *VolumeOptions `json:"VolumeOptions,omitempty"`
	TmpfsOptions  *TmpfsOptions  `json:"TmpfsOptions,omitempty"`
}

// BindOptions are a bind mount's options.
type BindOptions struct {
	Propagation Propagation `json:"Propagation,omitempty"`
	// NonRecursive binds the source alone, without the mounts below it.
	NonRecursive bool `json:"NonRecursive,omitempty"`
	// CreateMountpoint creates a missing source directory.
	CreateMountpoint       bool `json:"CreateMountpoint,omitempty"`
	ReadOnlyNonRecursive   bool `json:"ReadOnlyNonRecursive,omitempty"`
	ReadOnlyForceRecursive bool `json:"ReadOnlyForceRecursive,omitempty"`
}

// VolumeOptions are a volume mount's options.
type VolumeOptions struct {
	// NoCopy skips the copy of the image's content into a new volume.
	NoCopy bool `json:"NoCopy,omitempty"`
	// Labels and DriverConfig are used when the mount creates the volume.
	Labels       map[string]string `json:"Labels,omitempty"`
	Subpath      string            `json:"Subpath,omitempty"`
	DriverConfig *VolumeDriver     `json:"DriverConfig,omitempty"`
}

// VolumeDriver names a volume driver and its options.
type VolumeDriver struct {
	Name    string            `json:"Name,omitempty"`
	Options map[string]string `json:"Options,omitempty"`
}

// TmpfsOptions are a tmpfs mount's options.
type TmpfsOptions struct {
	SizeBytes int64       `json:"SizeBytes,omitempty"` // 0: the kernel's default, half of RAM
	Mode      os.FileMode `json:"Mode,omitempty"`      // of its root directory; 0: 1777
	// Options are more flags, each [name] or [name, value]; only exec and
	// noexec are accepted, as Docker does.
	Options [][]string `json:"Options,omitempty"`
}

// MountPoint is one entry of Mounts in a container inspect or list.
type MountPoint struct {
	Type        MountType   `json:"Type,omitempty"`
	Name        string      `json:"Name,omitempty"`
	Source      string      `json:"Source"`
	Destination string      `json:"Destination"`
	Driver      string      `json:"Driver,omitempty"`
	Mode        string      `json:"Mode"`
	RW          bool        `json:"RW"`
	Propagation Propagation `json:"Propagation"`
}

// ErrTargetIsRoot is Docker's error for a mount on "/".
var ErrTargetIsRoot = errors.New("invalid specification: destination can't be '/'")

// ParseBind reads one HostConfig.Binds entry, what `-v` takes:
// `[SOURCE:]TARGET[:OPTIONS]`. A SOURCE that is an absolute path makes a
// bind mount of that host path; any other SOURCE names a volume; no
// SOURCE makes an anonymous volume. OPTIONS, comma-separated, hold at
// most one of each: ro|rw, z|Z (accepted, SELinux labels are not
// applied), a propagation (rprivate, rshared, ...; binds only), nocopy
// (volumes only), consistent|cached|delegated (ignored). The returned
// mode is OPTIONS as written, which inspect shows as Mode.
func ParseBind(spec string) (Mount, string, error) {
	arr := strings.SplitN(spec, ":", 4)
	if arr[0] == "" {
		return Mount{}, "", invalidSpec(spec, nil)
	}
	var m Mount
	var mode string
	switch len(arr) {
	case 1:
		m.Target = arr[0]
	case 2:
		if validMode(arr[1]) {
			// "/foo:rw": a target and a mode, but an anonymous volume
			// takes no mode
			return Mount{}, "", invalidSpec(spec, nil)
		}
		m.Source, m.Target = arr[0], arr[1]
	case 3:
		m.Source, m.Target, mode = arr[0], arr[1], arr[2]
	default:
		return Mount{}, "", invalidSpec(spec, nil)
	}
	if !validMode(mode) {
		return Mount{}, "", fmt.Errorf("invalid mode: %v", mode)
	}
	m.Type = MountTypeVolume
	if path.IsAbs(m.Source) {
		m.Type = MountTypeBind
	}
	for _, o := range strings.Split(mode, ",") {
		switch {
		case o == "ro":
			m.ReadOnly = true
		case o == "nocopy":
			m.VolumeOptions = &VolumeOptions{NoCopy: true}
		case isPropagation(o):
			m.BindOptions = &BindOptions{Propagation: Propagation(o)}
		}
	}
	if err := ValidateMount(m); err != nil {
		return Mount{}, "", invalidSpec(spec, err)
	}
	return m, mode, nil
}

func invalidSpec(spec string, err error) error {
	if err == nil {
		return fmt.Errorf("invalid volume specification: '%s'", spec)
	}
	return fmt.Errorf("invalid volume specification: '%s': %w", spec, err)
}

// validMode reports whether a Binds mode has only known options, at most
// one of each kind.
func validMode(mode string) bool {
	if mode == "" {
		return true
	}
	var count [5]int // rw, label, propagation, copy, consistency
	for _, o := range strings.Split(mode, ",") {
		switch {
		case o == "rw" || o == "ro":
			count[0]++
		case o == "z" || o == "Z":
			count[1]++
		case isPropagation(o):
			count[2]++
		case o == "nocopy":
			count[3]++
		case o == "consistent" || o == "cached" || o == "delegated":
			count[4]++
		default:
			return false
		}
	}
	for _, n := range count {
		if n > 1 {
			return false
		}
	}
	return true
}

func isPropagation(s string) bool {
	switch Propagation(s) {
	case PropagationRPrivate, PropagationPrivate, PropagationRShared, PropagationShared, PropagationRSlave, PropagationSlave:
		return true
	}
	return false
}

// ValidateMount checks a HostConfig.Mounts entry as Docker does, with
// Docker's words, leaving out what needs the host (whether a bind's
// source exists).
func ValidateMount(m Mount) error {
	if err := validateMount(m); err != nil {
		return fmt.Errorf("invalid mount config for type %q: %w", m.Type, err)
	}
	return nil
}

func validateMount(m Mount) error {
	switch {
	case m.Type != MountTypeBind && m.BindOptions != nil:
		return errors.New("field BindOptions must not be specified")
	case m.Type != MountTypeVolume && m.VolumeOptions != nil:
		return errors.New("field VolumeOptions must not be specified")
	case m.Type != MountTypeTmpfs && m.TmpfsOptions != nil:
		return errors.New("field TmpfsOptions must not be specified")
	case m.Target == "":
		return errors.New("field Target must not be empty")
	case path.Clean(m.Target) == "/":
		return ErrTargetIsRoot
	case !path.IsAbs(m.Target):
		return fmt.Errorf("invalid mount path: '%s' mount path must be absolute", m.Target)
	}
	switch m.Type {
	case MountTypeBind:
		if m.Source == "" {
			return errors.New("field Source must not be empty")
		}
		if o := m.BindOptions; o != nil && o.Propagation != "" && !isPropagation(string(o.Propagation)) {
			return fmt.Errorf("invalid propagation mode: %s", o.Propagation)
		}
		if !path.IsAbs(m.Source) {
			return fmt.Errorf("invalid mount path: '%s' mount path must be absolute", m.Source)
		}
	case MountTypeVolume:
	case MountTypeTmpfs:
		if m.Source != "" {
			return errors.New("field Source must not be specified")
		}
		if o := m.TmpfsOptions; o != nil {
			if o.SizeBytes < 0 {
				return fmt.Errorf("invalid tmpfs size %d: must not be negative", o.SizeBytes)
			}
			if o.Mode&^0o7777 != 0 {
				return fmt.Errorf("invalid tmpfs mode %o: only permission bits, set-id and sticky bits", uint32(o.Mode))
			}
			for _, opt := range o.Options {
				if len(opt) < 1 || len(opt) > 2 {
					return errors.New("invalid option array length")
				}
				if opt[0] != "exec" && opt[0] != "noexec" {
					return errors.New("invalid option: " + opt[0])
				}
			}
		}
	default:
		return errors.New("mount type unknown")
	}
	return nil
}

// ParseMountFlag reads one `--mount` value, comma-separated key=value
// fields as docker's CLI takes them: type (volume, the default; bind;
// tmpfs), source|src, target|dst|destination, readonly|ro[=bool],
// consistency, bind-propagation, bind-recursive, bind-create-src,
// volume-nocopy, volume-subpath, volume-label, volume-driver, volume-opt,
// tmpfs-size, tmpfs-mode. A source starting with "." is made absolute
// against the working directory.
func ParseMountFlag(value string) (Mount, error) {
	value = strings.TrimSpace(value)
	if value == "" {
		return Mount{}, errors.New("value is empty")
	}
	fields, err := csv.NewReader(strings.NewReader(value)).Read()
	if err != nil {
		return Mount{}, fmt.Errorf("--mount %q: %w", value, err)
	}
	m := Mount{Type: MountTypeVolume}
	bind := func() *BindOptions {
		if m.BindOptions == nil {
			m.BindOptions = &BindOptions{}
		}
		return m.BindOptions
	}
	vol := func() *VolumeOptions {
		if m.VolumeOptions == nil {
			m.VolumeOptions = &VolumeOptions{}
		}
		return m.VolumeOptions
	}
	driver := func() *VolumeDriver {
		if vol().DriverConfig == nil {
			m.VolumeOptions.DriverConfig = &VolumeDriver{}
		}
		return m.VolumeOptions.DriverConfig
	}
	tmpfs := func() *TmpfsOptions {
		if m.TmpfsOptions == nil {
			m.TmpfsOptions = &TmpfsOptions{}
		}
		return m.TmpfsOptions
	}
	for _, field := range fields {
		key, val, hasValue := strings.Cut(field, "=")
		if k := strings.TrimSpace(key); k != key {
			return Mount{}, fmt.Errorf("invalid option '%s' in '%s': option should not have whitespace", k, field)
		}
		if hasValue {
			if v := strings.TrimSpace(val); v == "" {
				return Mount{}, fmt.Errorf("invalid value for '%s': value is empty", key)
			} else if v != val {
				return Mount{}, fmt.Errorf("invalid value for '%s' in '%s': value should not have whitespace", key, field)
			}
		}
		key = strings.ToLower(key)
		if !hasValue {
			switch key {
			case "readonly", "ro", "volume-nocopy", "bind-create-src":
			default:
				return Mount{}, fmt.Errorf("invalid field '%s' must be a key=value pair", field)
			}
		}
		switch key {
		case "type":
			m.Type = MountType(strings.ToLower(val))
		case "source", "src":
			m.Source = val
			if strings.HasPrefix(val, ".") {
				if abs, err := filepath.Abs(val); err == nil {
					m.Source = abs
				}
			}
		case "target", "dst", "destination":
			m.Target = val
		case "readonly", "ro":
			m.ReadOnly, err = parseBoolField(key, val, hasValue)
		case "consistency":
			m.Consistency = strings.ToLower(val)
		case "bind-propagation":
			bind().Propagation = Propagation(strings.ToLower(val))
		case "bind-recursive":
			switch val {
			case "enabled":
			case "disabled":
				bind().NonRecursive = true
			case "writable":
				bind().ReadOnlyNonRecursive = true
			case "readonly":
				bind().ReadOnlyForceRecursive = true
			default:
				return Mount{}, fmt.Errorf(`invalid value for %s: %s (must be "enabled", "disabled", "writable", or "readonly")`, key, val)
			}
		case "bind-create-src":
			bind().CreateMountpoint, err = parseBoolField(key, val, hasValue)
		case "volume-nocopy":
			vol().NoCopy, err = parseBoolField(key, val, hasValue)
		case "volume-subpath":
			vol().Subpath = val
		case "volume-label":
			vol().Labels = setKeyValue(vol().Labels, val)
		case "volume-driver":
			driver().Name = val
		case "volume-opt":
			driver().Options = setKeyValue(driver().Options, val)
		case "tmpfs-size":
			n, perr := ParseBytes(val)
			if perr != nil {
				return Mount{}, fmt.Errorf("invalid value for %s: %s", key, val)
			}
			tmpfs().SizeBytes = n
		case "tmpfs-mode":
			n, perr := strconv.ParseUint(val, 8, 32)
			if perr != nil {
				return Mount{}, fmt.Errorf("invalid value for %s: %s", key, val)
			}
			tmpfs().Mode = os.FileMode(n)
		default:
			return Mount{}, fmt.Errorf("unknown option '%s' in '%s'", key, field)
		}
		if err != nil {
			return Mount{}, err
		}
	}
	// the CLI's own checks, in words of its flags
	for _, c := range []struct {
		wrong  bool
		prefix string
	}{
		{m.Type != MountTypeBind && m.BindOptions != nil, "bind"},
		{m.Type != MountTypeVolume && m.VolumeOptions != nil, "volume"},
		{m.Type != MountTypeTmpfs && m.TmpfsOptions != nil, "tmpfs"},
	} {
		if c.wrong {
			return Mount{}, fmt.Errorf("cannot mix '%s-*' options with mount type '%s'", c.prefix, m.Type)
		}
	}
	if o := m.BindOptions; o != nil && (o.ReadOnlyNonRecursive || o.ReadOnlyForceRecursive) && !m.ReadOnly {
		return Mount{}, fmt.Errorf("option 'bind-recursive=%s' requires 'readonly' to be specified in conjunction", map[bool]string{true: "writable", false: "readonly"}[o.ReadOnlyNonRecursive])
	}
	return m, nil
}

// parseBoolField is a --mount boolean: no value is true; else 1, true,
// 0 or false.
func parseBoolField(key, val string, hasValue bool) (bool, error) {
	if !hasValue {
		return true, nil
	}
	switch val {
	case "1", "true":
		return true, nil
	case "0", "false":
		return false, nil
	}
	return false, fmt.Errorf(`invalid value for '%s': invalid boolean value (%q): must be one of "true", "1", "false", or "0" (default "true")`, key, val)
}

func setKeyValue(m map[string]string, kv string) map[string]string {
	k, v, _ := strings.Cut(kv, "=")
	if k == "" {
		return m
	}
	if m == nil {
		m = map[string]string{}
	}
	m[k] = v
	return m
}

// ParseVolumesFrom reads one HostConfig.VolumesFrom entry,
// `CONTAINER[:ro|rw]`: the container whose mounts to take and whether
// they become read-only ("rw", the default, keeps each as it is there).
func ParseVolumesFrom(spec string) (container, mode string, err error) {
	if spec == "" {
		return "", "", errors.New("volumes-from specification cannot be an empty string")
	}
	container, mode, _ = strings.Cut(spec, ":")
	if mode == "" {
		return container, "rw", nil
	}
	if !validMode(mode) {
		return "", "", fmt.Errorf("invalid mode: %v", mode)
	}
	for _, o := range strings.Split(mode, ",") {
		// the mounts keep their own propagation and are never copied into
		if isPropagation(o) || o == "nocopy" {
			return "", "", fmt.Errorf("invalid mode: %v", mode)
		}
	}
	return container, mode, nil
}
