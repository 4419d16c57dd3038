package cgroup

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"minidock/internal/trace"
)

// A process can be put into a cgroup in two ways. Moving it later, by
// writing its pid to cgroup.procs (AddProc), migrates a whole thread group:
// the kernel then takes cgroup_threadgroup_rwsem for writing, which waits
// for an RCU grace period (7-15 ms on this project's VM, per write
// sequence). Starting it inside costs nothing of the kind:
//
//   - v2 (and the unified mount of a hybrid host): clone3(2) with
//     CLONE_INTO_CGROUP and the cgroup directory's descriptor (CloneInto);
//   - v1 hierarchies: a child is born in the cgroups of the thread that
//     forks it. The forking thread moves itself in first, by writing "0"
//     (itself) to each hierarchy's tasks file: the move of one thread, by
//     itself, takes no such lock. After the fork it moves back (EnterThread
//     returns the function that does it).
//
// The runtime does both on a thread it has locked for the purpose
// (runtime/create.go, startInit).

// CloneInto sets attr so that clone3 starts the child in the cgroup's v2
// directory (SysProcAttr.UseCgroupFD, CgroupFD), on a unified or hybrid
// host; done closes the directory once the child has started. On a legacy
// host it does nothing.
func (m *v2) CloneInto(attr *syscall.SysProcAttr) (done func(), err error) {
	return cloneInto(m.t, m.dir, attr)
}

func (m *v1) CloneInto(attr *syscall.SysProcAttr) (done func(), err error) {
	if m.mode != Hybrid {
		return func() {}, nil
	}
	return cloneInto(m.t, filepath.Join(hybridRoot, m.path), attr)
}

func cloneInto(t *trace.Tracer, dir string, attr *syscall.SysProcAttr) (func(), error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if t != nil {
		t.CallResult(traceStep, "open", dir+", O_RDONLY|O_DIRECTORY|O_CLOEXEC", resultFd(fd, err), "for clone3's CLONE_INTO_CGROUP: the init is born inside the cgroup")
	}
	if err != nil {
		return nil, fmt.Errorf("open %s for CLONE_INTO_CGROUP: %w", dir, err)
	}
	attr.UseCgroupFD, attr.CgroupFD = true, fd
	return func() { unix.Close(fd) }, nil
}

// EnterThread moves the calling thread into the cgroup in every v1
// hierarchy, so that the processes it forks are born there, and returns
// leave, which moves it back where it was. The caller locks the goroutine
// to its thread (runtime.LockOSThread) first, and does not unlock it if
// leave fails. On a unified host it does nothing.
func (m *v2) EnterThread() (leave func() error, err error) { return func() error { return nil }, nil }

func (m *v1) EnterThread() (leave func() error, err error) {
	orig, err := threadCgroups()
	if err != nil {
		return nil, err
	}
	var back []string // the tasks files that take the thread back
	leave = func() error {
		for _, tasks := range back {
			if err := writeFile(m.t, filepath.Dir(tasks), "tasks", "0"); err != nil {
				return fmt.Errorf("move the forking thread back: %w", err)
			}
		}
		return nil
	}
	for _, mp := range m.hierarchies() {
		if mp == hybridRoot {
			continue // cgroup2: threads cannot move alone (CloneInto)
		}
		rel, ok := m.threadPath(orig, mp)
		if !ok {
			continue
		}
		if err := writeFile(m.t, filepath.Join(mp, m.path), "tasks", "0"); err != nil {
			return nil, errors.Join(err, leave())
		}
		back = append(back, filepath.Join(mp, rel, "tasks"))
	}
	return leave, nil
}

// threadPath finds, in what threadCgroups read, the thread's cgroup in
// the hierarchy mounted at mp: the line naming one of its controllers.
func (m *v1) threadPath(orig map[string]string, mp string) (string, bool) {
	for key, p := range orig {
		for _, c := range strings.Split(key, ",") {
			if m.mounts[c] == mp {
				return p, true
			}
		}
	}
	return "", false
}

// threadCgroups reads /proc/thread-self/cgroup: hierarchy (its
// controllers, as the kernel lists them) → the calling thread's cgroup.
func threadCgroups() (map[string]string, error) {
	data, err := os.ReadFile("/proc/thread-self/cgroup")
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if parts := strings.SplitN(line, ":", 3); len(parts) == 3 {
			out[parts[1]] = parts[2]
		}
	}
	return out, nil
}
