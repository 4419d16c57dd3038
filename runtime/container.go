package runtime

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"minidock/kernel"
	"minidock/ns"
)

// Start releases a created container's init: connect to its start socket,
// which makes it execve. EOF on the connection means execve worked; text
// is the init's error. In step mode (Step) the init first asks before
// each call that is left (close_range, seccomp, execve), and Start
// answers with its prompter (answerSteps). Then the poststart hooks run
// (a failing one is a warning on stderr, as the OCI validation suite
// expects).
func (c *Container) Start() error {
	switch st := c.Status(); st {
	case "created":
	case "stopped":
		return errors.New("cannot start a container that has stopped")
	default:
		return fmt.Errorf("cannot start an already %s container", st)
	}
	if c.Step && c.prompt == nil {
		return fmt.Errorf("start %s: it was made in step mode, so its init asks before each call up to execve, and this start has no terminal to ask on (SetStep)", c.ID)
	}
	k := kernel.NewLinux(c.trace).Begin("start")
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	conn := os.NewFile(uintptr(fd), "start")
	defer conn.Close()
	err = withDirPath(c.dir, func(d string) error {
		return unix.Connect(fd, &unix.SockaddrUnix{Name: filepath.Join(d, startSock)})
	})
	if err != nil {
		return fmt.Errorf("start %s: %w", c.ID, err)
	}
	os.Remove(filepath.Join(c.dir, startSock))
	var msg []byte
	if c.prompt != nil {
		msg = c.prompt.answerSteps(conn) // step mode: the init asks before each call of execProcess
	} else {
		msg, _ = io.ReadAll(conn)
	}
	if len(msg) > 0 {
		return fmt.Errorf("start %s: %s", c.ID, msg)
	}
	k.Note("connect", "start.sock; EOF: the init called execve", nil)
	c.poststart(k)
	return nil
}

// poststart runs the poststart hooks; a failing one is a warning on
// stderr, as the OCI validation suite expects.
func (c *Container) poststart(k kernel.Calls) {
	if c.Config.Hooks == nil {
		return
	}
	if err := runHooks(k, "poststart", c.Config.Hooks.Poststart, c.ociState("running")); err != nil {
		fmt.Fprintf(os.Stderr, "warning: %v\n", err)
	}
}

// Signal sends sig to the init, or with all to every process of the
// container (through its cgroup). With all it also works on a stopped
// container, as runc's: containerd's shim kills that way what a container
// that shares a pid namespace (a pod's) leaves running once its init has
// exited.
func (c *Container) Signal(sig unix.Signal, all bool) error {
	if all {
		if cg, err := c.cgroup(); err == nil && c.CgroupPath != "" {
			return cg.KillAll(sig)
		}
	}
	if c.Status() == "stopped" {
		return errors.New("container not running")
	}
	if err := unix.Kill(c.Pid, sig); err != nil {
		return fmt.Errorf("kill %d: %w", c.Pid, err)
	}
	return nil
}

// Delete removes a stopped container: poststop hooks, cgroup, state. With
// force a container that still runs is killed first (SIGKILL to all its
// processes) and waited for. The caller, when it is the init's parent,
// reaps it itself: Delete only waits for the exit, not for the reaping.
func (c *Container) Delete(force bool) error {
	switch st := c.Status(); st {
	case "stopped":
	default:
		if !force {
			return fmt.Errorf("cannot delete container %s that is not stopped: %s", c.ID, st)
		}
		if st == "paused" {
			if cg, err := c.cgroup(); err == nil {
				cg.Thaw()
			}
		}
		c.killAndWait()
	}
	return c.destroy(kernel.NewLinux(c.trace).Begin("delete"))
}

// destroy removes a stopped container: the processes it left running when
// it shares a pid namespace (killLeftovers), cgroup, poststop hooks,
// state.
func (c *Container) destroy(k kernel.Calls) error {
	var errs []error
	if cg, err := c.cgroup(); err == nil {
		if !c.ownPidNamespace() {
			c.killLeftovers(k, cg)
		}
		err := cg.Destroy()
		if err := k.Note("rmdir", "cgroup "+c.CgroupPath, err); err != nil {
			errs = append(errs, err)
		}
	}
	if c.Config != nil && c.Config.Hooks != nil {
		if err := runHooks(k, "poststop", c.Config.Hooks.Poststop, c.ociState("stopped")); err != nil {
			fmt.Fprintf(os.Stderr, "warning: %v\n", err)
		}
	}
	err := os.RemoveAll(c.dir)
	if err := k.Note("rm -r", c.dir, err); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// ownPidNamespace reports whether the container has a pid namespace of its
// own: then its other processes died with its init (the kernel kills a pid
// namespace's processes when its init exits).
func (c *Container) ownPidNamespace() bool {
	if c.Config == nil || c.Config.Linux == nil {
		return false
	}
	nss := c.Config.Linux.Namespaces
	return ns.Has(nss, specs.PIDNamespace) && ns.Path(nss, specs.PIDNamespace) == ""
}

// killLeftovers kills, with SIGKILL through the cgroup, the processes of a
// stopped container that shares a pid namespace (a pod's container whose
// shell left a child behind: the pod's init inherited it), and waits for
// the cgroup to empty, so that it can be removed. runc does the same.
func (c *Container) killLeftovers(k kernel.Calls, cg cgroupHandle) {
	pids, err := cg.Pids()
	if err != nil || len(pids) == 0 {
		return
	}
	err = cg.KillAll(unix.SIGKILL)
	k.Note("kill", fmt.Sprintf("SIGKILL to the %d processes left in %s", len(pids), c.CgroupPath), err)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if pids, err := cg.Pids(); err != nil || len(pids) == 0 {
			return
		}
	}
}

func (c *Container) killAndWait() {
	if cg, err := c.cgroup(); err == nil {
		cg.KillAll(unix.SIGKILL)
	}
	unix.Kill(c.Pid, unix.SIGKILL)
	waitGone(c.Pid, 10*time.Second)
}

// Pids lists the container's processes: from its cgroup when it has one,
// else the init and its descendants.
func (c *Container) Pids() ([]int, error) {
	if c.Status() == "stopped" {
		return nil, nil
	}
	if cg, err := c.cgroup(); err == nil {
		return cg.Pids()
	}
	return descendants(c.Pid), nil
}

func descendants(root int) []int {
	entries, _ := os.ReadDir("/proc")
	children := map[int][]int{}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		s := string(data)
		i := strings.LastIndexByte(s, ')')
		f := strings.Fields(s[i+1:])
		if len(f) > 1 {
			ppid, _ := strconv.Atoi(f[1])
			children[ppid] = append(children[ppid], pid)
		}
	}
	out := []int{root}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}

// ociState is the state handed to hooks on stdin.
func (c *Container) ociState(status string) specs.State {
	return specs.State{Version: specs.Version, ID: c.ID, Status: specs.ContainerState(status), Pid: c.Pid, Bundle: c.Bundle, Annotations: c.Annotations}
}
