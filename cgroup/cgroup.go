// Package cgroup puts a container's processes into a control group and
// limits what they may use: memory, CPU time, CPUs, process count, block
// I/O and device nodes. A cgroup is nothing but a directory in a special
// filesystem; limits are values written to the files the kernel shows in
// that directory (or, for devices on v2, an eBPF program attached to it),
// and a process joins by having its PID written to cgroup.procs.
//
// Two drivers share one interface, Manager:
//
//   - v2 (unified hierarchy, every current distribution): one directory
//     under /sys/fs/cgroup holds every controller (v2.go).
//   - v1 (legacy and hybrid hosts): one directory per controller hierarchy,
//     /sys/fs/cgroup/memory/..., /sys/fs/cgroup/cpu/..., and so on (v1.go).
//
// New picks the driver from the mode of the host, found the way runc finds
// it (DetectMode). docs/cgroups.md walks through every file written here.
package cgroup

import (
	"fmt"
	"os"
	"path"
	"strings"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"minidock/internal/trace"
)

// Root is where cgroup filesystems are mounted: a cgroup2 mount itself on
// a unified host, a tmpfs holding one mount per v1 hierarchy otherwise.
const Root = "/sys/fs/cgroup"

// hybridRoot is the cgroup2 mount that systemd adds beside the v1
// hierarchies on a hybrid host.
const hybridRoot = Root + "/unified"

// DefaultParent is the cgroup under which containers are placed when their
// cgroupsPath is empty or relative.
const DefaultParent = "/minidock"

// ModeEnv overrides DetectMode when set to "unified", "hybrid" or "legacy".
// Tests use it to run the v1 driver without the hybrid extras.
const ModeEnv = "MINIDOCK_CGROUP_MODE"

// Manager owns one container's cgroup. Every method acts on the real
// cgroup filesystem; a Manager holds nothing but paths, so a new one made
// by New with the same arguments in a later process acts on the same cgroup.
type Manager interface {
	// Path is the cgroup path relative to the cgroup root(s), e.g. /minidock/abc.
	Path() string
	// Create makes the cgroup directories, enables the controllers r needs
	// and applies r. On error it removes whatever it made.
	Create(r *specs.LinuxResources) error
	// AddProc moves process pid (and all its threads) into the cgroup.
	AddProc(pid int) error
	// Update applies r to an existing cgroup; nil fields are left alone.
	Update(r *specs.LinuxResources) error
	// Freeze stops every process in the cgroup and returns once they are stopped.
	Freeze() error
	// Thaw lets frozen processes run again.
	Thaw() error
	// Frozen reports whether the cgroup is frozen (a paused container).
	Frozen() (bool, error)
	// Pids lists the processes (thread group ids) in the cgroup.
	Pids() ([]int, error)
	// KillAll sends sig to every process in the cgroup.
	KillAll(sig unix.Signal) error
	// Stats reads usage and limits, shaped like runc's `events --stats`.
	Stats() (*Stats, error)
	// OOMKillCount is how many processes the OOM killer has killed in the cgroup.
	OOMKillCount() (uint64, error)
	// Destroy removes the cgroup directories; it is a no-op if they are gone.
	Destroy() error
	// EnterThread moves the calling, locked thread into the cgroup's v1
	// hierarchies, so that what it forks is born there, and returns the
	// function that moves it back (start.go).
	EnterThread() (leave func() error, err error)
	// CloneInto sets attr so that clone3 starts the child in the cgroup's
	// v2 directory (CLONE_INTO_CGROUP), on a unified or hybrid host; done
	// closes the directory once the child has started (start.go).
	CloneInto(attr *syscall.SysProcAttr) (done func(), err error)
}

// Mode is how the host has mounted its cgroup filesystems.
type Mode int

const (
	// Unified: /sys/fs/cgroup is a cgroup2 mount holding every controller.
	Unified Mode = iota
	// Hybrid: v1 hierarchies hold the controllers; a cgroup2 mount at
	// /sys/fs/cgroup/unified only tracks processes.
	Hybrid
	// Legacy: v1 hierarchies only.
	Legacy
)

// String names the mode as DetectMode and MINIDOCK_CGROUP_MODE spell it.
func (m Mode) String() string {
	switch m {
	case Unified:
		return "unified"
	case Hybrid:
		return "hybrid"
	case Legacy:
		return "legacy"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// DetectMode tells how cgroups are mounted, as runc does: statfs(2) on
// /sys/fs/cgroup reports CGROUP2_SUPER_MAGIC on a unified host; otherwise
// a cgroup2 mount at /sys/fs/cgroup/unified means hybrid, and anything
// else is legacy. MINIDOCK_CGROUP_MODE, when set, overrides the answer,
// but only to a mode the host can serve.
func DetectMode() (Mode, error) {
	detected := Legacy
	if isCgroup2(Root) {
		detected = Unified
	} else if isCgroup2(hybridRoot) {
		detected = Hybrid
	}
	forced := os.Getenv(ModeEnv)
	if forced == "" {
		return detected, nil
	}
	var m Mode
	switch forced {
	case "unified":
		m = Unified
	case "hybrid":
		m = Hybrid
	case "legacy":
		m = Legacy
	default:
		return 0, fmt.Errorf("%s=%q: want unified, hybrid or legacy", ModeEnv, forced)
	}
	// A v1 driver can run on a hybrid host (ignoring the unified mount);
	// nothing else can be forced onto a host that is not mounted that way.
	if m != detected && !(m == Legacy && detected == Hybrid) {
		return 0, fmt.Errorf("%s=%s but this host's cgroups are %s", ModeEnv, m, detected)
	}
	return m, nil
}

// isCgroup2 reports whether dir is the root of a cgroup2 mount.
func isCgroup2(dir string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return false
	}
	return st.Type == unix.CGROUP2_SUPER_MAGIC
}

// New checks cgroupsPath and returns the Manager for this host's mode. It
// creates nothing. cgroupsPath follows runc: absolute means relative to the
// cgroup root(s); relative means under DefaultParent; empty means
// DefaultParent/id. A path that climbs out with ".." is an error.
func New(cgroupsPath, id string) (Manager, error) { return NewTraced(cgroupsPath, id, nil) }

// NewTraced is New with each mkdir, write and rmdir of the Manager traced
// to t, with its result (nil: no trace).
func NewTraced(cgroupsPath, id string, t *trace.Tracer) (Manager, error) {
	mode, err := DetectMode()
	if err != nil {
		return nil, err
	}
	m, err := newManager(mode, cgroupsPath, id)
	if err != nil {
		return nil, err
	}
	switch m := m.(type) {
	case *v2:
		m.t = t
	case *v1:
		m.t = t
	}
	return m, nil
}

// newManager is New with the mode given, so tests can run both v1 flavours.
func newManager(mode Mode, cgroupsPath, id string) (Manager, error) {
	p, err := cleanPath(cgroupsPath, id)
	if err != nil {
		return nil, err
	}
	if mode == Unified {
		return newV2(Root, p), nil
	}
	return newV1(mode, p)
}

// cleanPath turns a cgroupsPath from config.json into a clean absolute
// cgroup path, refusing anything that would leave its root.
func cleanPath(cgroupsPath, id string) (string, error) {
	if cgroupsPath == "" {
		if id == "" || strings.ContainsAny(id, "/\x00\n") || id == "." || id == ".." {
			return "", fmt.Errorf("cgroup: container id %q cannot name a cgroup", id)
		}
		return DefaultParent + "/" + id, nil
	}
	if strings.ContainsAny(cgroupsPath, "\x00\n") {
		return "", fmt.Errorf("cgroup: cgroupsPath %q contains a NUL or newline", cgroupsPath)
	}
	if !strings.HasPrefix(cgroupsPath, "/") && strings.Count(cgroupsPath, ":") == 2 {
		return "", fmt.Errorf("cgroup: cgroupsPath %q is systemd's slice:prefix:name form; minidock drives cgroupfs directly, give a path", cgroupsPath)
	}
	base := "/"
	if !strings.HasPrefix(cgroupsPath, "/") {
		base = DefaultParent
	}
	// Walk the elements ourselves: path.Clean would quietly turn "/../x"
	// into "/x", hiding the escape.
	depth := 0
	for _, e := range strings.Split(cgroupsPath, "/") {
		switch e {
		case "", ".":
		case "..":
			depth--
			if depth < 0 {
				return "", fmt.Errorf("cgroup: cgroupsPath %q escapes %s with \"..\"", cgroupsPath, base)
			}
		default:
			depth++
		}
	}
	p := path.Join(base, cgroupsPath)
	if p == "/" {
		return "", fmt.Errorf("cgroup: cgroupsPath %q is the root cgroup; a container needs its own", cgroupsPath)
	}
	return p, nil
}
