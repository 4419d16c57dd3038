package api

import (
	"fmt"
	"strconv"
	"strings"
)

// Confinement is the part of a HostConfig that says how far a container
// is kept from the host (docs/security.md): its capabilities, seccomp
// profile, devices, sysctls, limits, and which namespaces it shares with
// the host or another container. The field names are Docker's; HostConfig
// embeds it, so they sit at HostConfig's top level in JSON, as in Docker.
type Confinement struct {
	// Privileged lifts the confinement: every capability the daemon holds,
	// every host device, no seccomp filter, no masked or read-only paths,
	// /sys writable.
	Privileged bool `json:"Privileged"`
	// CapAdd and CapDrop change Docker's default capabilities: names with
	// or without "CAP_", any case, or "ALL".
	CapAdd  []string `json:"CapAdd"`
	CapDrop []string `json:"CapDrop"`
	// SecurityOpt: "no-new-privileges[:true|false]", "seccomp=unconfined",
	// "seccomp=<profile JSON>" (the CLI reads the file),
	// "systempaths=unconfined", "apparmor=unconfined", "label=disable".
	SecurityOpt []string `json:"SecurityOpt"`
	// Devices are host device nodes (or directories of them) made in the
	// container, with the cgroup permissions given.
	Devices []DeviceMapping `json:"Devices"`
	// Sysctls are written to /proc/sys at start; only those owned by a
	// namespace the container has of its own are allowed.
	Sysctls map[string]string `json:"Sysctls,omitempty"`
	// Ulimits are the container's resource limits (setrlimit).
	Ulimits []Ulimit `json:"Ulimits"`
	// GroupAdd are supplementary groups of the container's process, by
	// name (its /etc/group) or number.
	GroupAdd []string `json:"GroupAdd"`
	// Init runs a small reaper as PID 1 that starts the command, forwards
	// signals to it and reaps orphans (`--init`).
	Init *bool `json:"Init,omitempty"`
	// OomScoreAdj is the container's /proc/<pid>/oom_score_adj.
	OomScoreAdj int `json:"OomScoreAdj"`
	// Namespaces shared instead of made: "" (a new one), "host",
	// "container:<name|id>" (PidMode, IpcMode); IpcMode also "private",
	// "shareable" (others may join), "none" (no /dev/shm); UsernsMode
	// "host" (no remapping under --userns-remap); CgroupnsMode "private"
	// or "host".
	PidMode      string `json:"PidMode"`
	IpcMode      string `json:"IpcMode"`
	UTSMode      string `json:"UTSMode"`
	UsernsMode   string `json:"UsernsMode"`
	CgroupnsMode string `json:"CgroupnsMode"`
	// ShmSize is the size of /dev/shm in bytes (0: 64 MiB).
	ShmSize int64 `json:"ShmSize"`
	// MaskedPaths and ReadonlyPaths replace the defaults when set.
	MaskedPaths   []string `json:"MaskedPaths"`
	ReadonlyPaths []string `json:"ReadonlyPaths"`
}

// DeviceMapping is one `--device HOST[:CONTAINER[:PERMISSIONS]]`.
type DeviceMapping struct {
	PathOnHost        string `json:"PathOnHost"`
	PathInContainer   string `json:"PathInContainer"`
	CgroupPermissions string `json:"CgroupPermissions"`
}

// Ulimit is one `--ulimit NAME=SOFT[:HARD]`.
type Ulimit struct {
	Name string `json:"Name"`
	Soft int64  `json:"Soft"`
	Hard int64  `json:"Hard"`
}

// ParseDevice reads the argument of --device, as the docker CLI does:
// HOST, HOST:CONTAINER, HOST:PERMISSIONS or HOST:CONTAINER:PERMISSIONS;
// the container path defaults to the host's, the permissions to "rwm".
func ParseDevice(s string) (DeviceMapping, error) {
	d := DeviceMapping{CgroupPermissions: "rwm"}
	parts := strings.Split(s, ":")
	switch len(parts) {
	case 3:
		d.PathOnHost, d.PathInContainer, d.CgroupPermissions = parts[0], parts[1], parts[2]
	case 2:
		d.PathOnHost = parts[0]
		if ValidDevicePermissions(parts[1]) {
			d.CgroupPermissions = parts[1]
		} else {
			d.PathInContainer = parts[1]
		}
	case 1:
		d.PathOnHost = parts[0]
	default:
		return d, fmt.Errorf("invalid device specification %q: want HOST[:CONTAINER[:PERMISSIONS]]", s)
	}
	if d.PathOnHost == "" {
		return d, fmt.Errorf("invalid device specification %q: no host path", s)
	}
	if d.PathInContainer == "" {
		d.PathInContainer = d.PathOnHost
	}
	if !ValidDevicePermissions(d.CgroupPermissions) {
		return d, fmt.Errorf("invalid device permissions %q in %q: a combination of r, w and m", d.CgroupPermissions, s)
	}
	return d, nil
}

// ValidDevicePermissions tells whether p is a non-empty combination of
// r (read), w (write) and m (mknod), each at most once.
func ValidDevicePermissions(p string) bool {
	if p == "" || len(p) > 3 {
		return false
	}
	seen := map[rune]bool{}
	for _, c := range p {
		if !strings.ContainsRune("rwm", c) || seen[c] {
			return false
		}
		seen[c] = true
	}
	return true
}

// ParseUlimit reads the argument of --ulimit: NAME=SOFT[:HARD], the hard
// limit defaulting to the soft one; -1 is unlimited.
func ParseUlimit(s string) (Ulimit, error) {
	name, vals, ok := strings.Cut(s, "=")
	if !ok || name == "" {
		return Ulimit{}, fmt.Errorf("invalid ulimit %q: want NAME=SOFT[:HARD]", s)
	}
	soft, hard, hasHard := strings.Cut(vals, ":")
	u := Ulimit{Name: name}
	var err error
	if u.Soft, err = strconv.ParseInt(soft, 10, 64); err != nil {
		return u, fmt.Errorf("invalid ulimit %q: soft limit %q is not a number", s, soft)
	}
	u.Hard = u.Soft
	if hasHard {
		if u.Hard, err = strconv.ParseInt(hard, 10, 64); err != nil {
			return u, fmt.Errorf("invalid ulimit %q: hard limit %q is not a number", s, hard)
		}
	}
	return u, nil
}
