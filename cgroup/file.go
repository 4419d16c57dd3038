package cgroup

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"minidock/internal/trace"
)

// writeFile writes value to the cgroup control file dir/name with a single
// write(2): the kernel parses each write as one complete value. The write
// is traced to t with its result.
func writeFile(t *trace.Tracer, dir, name, value string) (err error) {
	t.Helper()
	p := filepath.Join(dir, name)
	defer func() { t.Call(traceStep, "write", fmt.Sprintf("%s, %q", p, value), fileWhy(name), err) }()
	fd, err := unix.Open(p, unix.O_WRONLY|unix.O_TRUNC|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("write %q to %s: %w", value, p, err)
	}
	defer unix.Close(fd)
	for {
		_, err = unix.Write(fd, []byte(value))
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("write %q to %s: %w", value, p, err)
	}
	return nil
}

// readFile returns the content of dir/name without its trailing newline.
func readFile(dir, name string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return "", fmt.Errorf("read %w", err)
	}
	return strings.TrimSuffix(string(b), "\n"), nil
}

// readUint reads a file holding one number; "max" reads as math.MaxUint64.
func readUint(dir, name string) (uint64, error) {
	s, err := readFile(dir, name)
	if err != nil {
		return 0, err
	}
	return parseUint(s, filepath.Join(dir, name))
}

func parseUint(s, where string) (uint64, error) {
	s = strings.TrimSpace(s)
	if s == "max" {
		return math.MaxUint64, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		// v1 reports "no limit" values as negative on some files.
		if i, ierr := strconv.ParseInt(s, 10, 64); ierr == nil && i < 0 {
			return 0, nil
		}
		return 0, fmt.Errorf("parse %q in %s: %w", s, where, err)
	}
	return v, nil
}

// readKeyValues reads a file of "key value" lines (memory.stat, cpu.stat,
// memory.events, memory.oom_control) into a map.
func readKeyValues(dir, name string) (map[string]uint64, error) {
	s, err := readFile(dir, name)
	if err != nil {
		return nil, err
	}
	m := make(map[string]uint64)
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 2 {
			continue
		}
		v, err := parseUint(f[1], filepath.Join(dir, name))
		if err != nil {
			return nil, err
		}
		m[f[0]] = v
	}
	return m, nil
}

// readPidsTree returns the PIDs in dir's cgroup.procs and in those of every
// cgroup below it: a container may have made sub-cgroups of its own.
func readPidsTree(dir string) ([]int, error) {
	pids, err := readPids(dir)
	if err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read dir: %w", err)
	}
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		sub, err := readPidsTree(filepath.Join(dir, e.Name()))
		if errors.Is(err, os.ErrNotExist) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, err
		}
		pids = append(pids, sub...)
	}
	return pids, nil
}

// readPids parses cgroup.procs: one PID a line.
func readPids(dir string) ([]int, error) {
	s, err := readFile(dir, "cgroup.procs")
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, l := range strings.Fields(s) {
		pid, err := strconv.Atoi(l)
		if err != nil {
			return nil, fmt.Errorf("parse pid %q in %s/cgroup.procs: %w", l, dir, err)
		}
		pids = append(pids, pid)
	}
	return pids, nil
}

// removeDefaultParent removes the shared DefaultParent directory under
// root once the last container in it is gone, so that nothing of minidock
// stays behind. While any cgroup is left in it, rmdir fails harmlessly.
func removeDefaultParent(root, path string) {
	if strings.HasPrefix(path, DefaultParent+"/") {
		_ = unix.Rmdir(filepath.Join(root, DefaultParent))
	}
}

// retryIfVanished runs makeDirs again when an ancestor directory vanished
// while it ran (removeDefaultParent of a concurrent Destroy): mkdir under
// it fails with ENOENT, and reading a file of a cgroup removed meanwhile
// with ENODEV.
func retryIfVanished(makeDirs func() error) error {
	var err error
	for i := 0; i < 5; i++ {
		if err = makeDirs(); !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ENODEV) {
			return err
		}
	}
	return err
}

// mkdirAll makes dir and any missing parents down from root, calling made
// for each directory it created (outermost first) so the caller can undo.
func mkdirAll(t *trace.Tracer, root, rel string, made func(dir string) error) error {
	t.Helper()
	dir := root
	for _, e := range strings.Split(strings.Trim(rel, "/"), "/") {
		dir = filepath.Join(dir, e)
		err := mkdir(t, dir)
		if errors.Is(err, unix.EEXIST) {
			continue
		}
		if err != nil {
			return fmt.Errorf("mkdir %s: %w", dir, err)
		}
		if err := made(dir); err != nil {
			return err
		}
	}
	return nil
}

// mkdir makes the cgroup directory dir: the kernel fills it with the
// control files. Traced to t; EEXIST is returned, for the caller to judge.
func mkdir(t *trace.Tracer, dir string) error {
	t.Helper()
	return t.Call(traceStep, "mkdir", dir+", 0755", "a new cgroup: the kernel fills the directory with its control files", unix.Mkdir(dir, 0o755))
}

// traceStep is the step of a container's trace that cgroup calls belong
// to.
const traceStep = "cgroup"

// fileWhy says what writing a cgroup control file does.
func fileWhy(name string) string {
	switch name {
	case "cgroup.subtree_control":
		return "enable the controller for the cgroups below: their limit files appear"
	case "cgroup.procs", "tasks":
		return "move the process into the cgroup: its limits apply from now"
	case "cgroup.freeze", "freezer.state":
		return "freeze or thaw every process of the cgroup"
	case "cgroup.kill":
		return "kill every process of the cgroup at once"
	case "memory.max", "memory.limit_in_bytes":
		return "the memory limit: beyond it, reclaim, then the OOM killer"
	case "memory.swap.max", "memory.memsw.limit_in_bytes":
		return "the swap limit"
	case "pids.max":
		return "the most processes the cgroup may hold (fork bombs)"
	case "cpu.max", "cpu.cfs_quota_us", "cpu.cfs_period_us":
		return "the CPU quota per period"
	case "cpu.weight", "cpu.shares":
		return "the CPU share against sibling cgroups"
	case "cpuset.cpus", "cpuset.mems":
		return "the CPUs and memory nodes the processes may use"
	case "devices.allow", "devices.deny":
		return "a device access rule (cgroup v1)"
	}
	return "a limit of the config (linux.resources)"
}

// rmdir removes an empty cgroup directory. The kernel answers EBUSY for a
// moment after the last process exits (it is still being unlinked from the
// cgroup), so EBUSY is retried for a short while. A missing directory is
// not an error.
func rmdir(t *trace.Tracer, dir string) error {
	t.Helper()
	delay := time.Millisecond
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := unix.Rmdir(dir)
		if err == nil || errors.Is(err, unix.ENOENT) {
			t.Call(traceStep, "rmdir", dir, "remove the cgroup (the kernel refuses while a process is in it)", err)
			return nil
		}
		if !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
			return fmt.Errorf("rmdir %s: %w", dir, err)
		}
		time.Sleep(delay)
		delay = min(2*delay, 100*time.Millisecond)
	}
}

// killPids sends sig to each pid; a process that is already gone is fine.
func killPids(pids []int, sig unix.Signal) error {
	for _, pid := range pids {
		if err := unix.Kill(pid, sig); err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("kill(%d, %v): %w", pid, sig, err)
		}
	}
	return nil
}

// waitFor polls check every few milliseconds until it says done, an error
// occurs, or the timeout passes.
func waitFor(timeout time.Duration, what string, check func() (bool, error)) error {
	deadline := time.Now().Add(timeout)
	for {
		done, err := check()
		if err != nil || done {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not done after %v", what, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// hasLine reports whether the multi-line file content s has a line equal
// to want.
func hasLine(s []byte, want string) bool {
	for _, l := range bytes.Split(s, []byte("\n")) {
		if string(l) == want {
			return true
		}
	}
	return false
}
