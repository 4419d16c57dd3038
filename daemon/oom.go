package daemon

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// The runtime's state has "oomKilled", but the shim deletes the runtime's
// state (and the cgroup) before the daemon learns of the exit. So, while
// a container runs, the daemon watches its memory cgroup for the OOM
// killer itself: on cgroup v1 with an eventfd on memory.oom_control
// (cgroup.event_control), on v2 with inotify on memory.events.

// oomWatch reports, once the container's cgroup is gone, whether the OOM
// killer hit it.
type oomWatch struct {
	done   chan struct{}
	killed bool
}

// watchOOM starts watching the memory cgroup of container c (it must
// exist: the container is created). nil when it cannot be watched.
func (d *Daemon) watchOOM(c *Container) *oomWatch {
	rel := strings.TrimPrefix(d.cfg.CgroupParent+"/"+c.ID, "/")
	v1 := filepath.Join("/sys/fs/cgroup/memory", rel)
	if _, err := os.Stat(filepath.Join(v1, "memory.oom_control")); err == nil {
		return watchOOMv1(v1)
	}
	v2 := filepath.Join("/sys/fs/cgroup", rel)
	if _, err := os.Stat(filepath.Join(v2, "memory.events")); err == nil {
		return watchOOMv2(v2)
	}
	return nil
}

func watchOOMv1(dir string) *oomWatch {
	ctl, err := os.Open(filepath.Join(dir, "memory.oom_control"))
	if err != nil {
		return nil
	}
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC)
	if err != nil {
		ctl.Close()
		return nil
	}
	reg := fmt.Sprintf("%d %d", efd, ctl.Fd())
	if err := os.WriteFile(filepath.Join(dir, "cgroup.event_control"), []byte(reg), 0); err != nil {
		ctl.Close()
		unix.Close(efd)
		return nil
	}
	w := &oomWatch{done: make(chan struct{})}
	go func() {
		defer close(w.done)
		defer ctl.Close()
		defer unix.Close(efd)
		buf := make([]byte, 8)
		for {
			if _, err := unix.Read(efd, buf); err != nil && err != unix.EINTR {
				return
			}
			// The eventfd is also signalled when the cgroup is removed.
			if _, err := os.Stat(filepath.Join(dir, "cgroup.event_control")); err != nil {
				return
			}
			w.killed = true
		}
	}()
	return w
}

func watchOOMv2(dir string) *oomWatch {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC)
	if err != nil {
		return nil
	}
	events := filepath.Join(dir, "memory.events")
	if _, err := unix.InotifyAddWatch(fd, events, unix.IN_MODIFY); err != nil {
		unix.Close(fd)
		return nil
	}
	w := &oomWatch{done: make(chan struct{})}
	go func() {
		defer close(w.done)
		defer unix.Close(fd)
		buf := make([]byte, 4096)
		for {
			// IN_IGNORED too wakes us when the cgroup goes
			if _, err := unix.Read(fd, buf); err != nil && err != unix.EINTR {
				return
			}
			data, err := os.ReadFile(events)
			if err != nil {
				return // the cgroup is gone
			}
			for _, l := range strings.Split(string(data), "\n") {
				if v, ok := strings.CutPrefix(l, "oom_kill "); ok {
					if k, _ := strconv.ParseUint(v, 10, 64); k > 0 {
						w.killed = true
					}
				}
			}
		}
	}()
	return w
}

// oomKilled waits (briefly: the cgroup has gone by the time the shim
// has exited) for the watch to end and reports what it saw.
func (w *oomWatch) oomKilled() bool {
	if w == nil {
		return false
	}
	select {
	case <-w.done:
	case <-time.After(2 * time.Second):
	}
	select {
	case <-w.done:
		return w.killed
	default:
		return false
	}
}
