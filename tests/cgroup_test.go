package tests

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCgroupPidsLimit(t *testing.T) {
	r := newRuntime(t)
	limit := int64(10)
	out, _ := r.runIn(t, func(s *specs.Spec) {
		s.Linux.Resources = &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: &limit}}
		s.Process.Args = []string{"sh", "-c", "n=0; for i in $(seq 30); do sleep 5 & n=$((n+1)); done; echo started; kill $(jobs -p) 2>/dev/null; true"}
	})
	assert.Contains(t, out, "can't fork", "a fork loop stops at pids.max")
}

func TestCgroupOOMKilled(t *testing.T) {
	r := newRuntime(t)
	limit := int64(32 << 20)
	dir := bundle(t, func(s *specs.Spec) {
		s.Linux.Resources = &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit, Swap: &limit}}
		s.Process.Args = []string{"dd", "if=/dev/zero", "of=/dev/null", "bs=128M", "count=1"}
	})
	out, code := r.run("run", "--bundle", dir, newID(t))
	assert.Equal(t, 137, code, "killed by SIGKILL: %s", out)
	if r.runc {
		return
	}
	// detached, so that the state (with the OOM flag) can be read before delete
	id := newID(t)
	r.must("run", "--detach", "--bundle", dir, id)
	defer r.must("delete", "--force", id)
	r.waitStatus(id, "stopped")
	out = r.must("state", id)
	var st map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &st))
	assert.Equal(t, true, st["oomKilled"], out)
}

func TestCgroupPauseResume(t *testing.T) {
	r := newRuntime(t)
	dir := bundle(t, func(s *specs.Spec) {
		s.Root.Readonly = false
		s.Process.Args = []string{"sh", "-c", "i=0; while true; do i=$((i+1)); echo $i > /tmp/count; sleep 0.02; done"}
	})
	id := newID(t)
	r.must("run", "--detach", "--bundle", dir, id)
	defer r.must("delete", "--force", id)
	count := func() int {
		data, _ := os.ReadFile(filepath.Join(dir, "rootfs/tmp/count"))
		n, _ := strconv.Atoi(strings.TrimSpace(string(data)))
		return n
	}
	require.Eventually(t, func() bool { return count() > 2 }, 5*time.Second, 20*time.Millisecond)
	r.must("pause", id)
	assert.Equal(t, "paused", r.state(id).Status)
	a := count()
	time.Sleep(300 * time.Millisecond)
	assert.Equal(t, a, count(), "the counter moved while paused")
	r.must("resume", id)
	assert.Equal(t, "running", r.state(id).Status)
	require.Eventually(t, func() bool { return count() > a+2 }, 5*time.Second, 20*time.Millisecond, "the counter did not restart")
}

func TestCgroupUpdateAndEvents(t *testing.T) {
	r := newRuntime(t)
	dir := bundle(t, sh("sleep 100"))
	id := newID(t)
	r.must("run", "--detach", "--bundle", dir, id)
	defer r.must("delete", "--force", id)
	r.must("update", "--pids-limit", "42", "--memory", "67108864", id)
	out := r.must("events", "--stats", id)
	var ev struct {
		Type string `json:"type"`
		Data struct {
			Pids struct {
				Current uint64 `json:"current"`
				Limit   uint64 `json:"limit"`
			} `json:"pids"`
			Memory struct {
				Usage struct {
					Limit uint64 `json:"limit"`
				} `json:"usage"`
			} `json:"memory"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &ev), out)
	assert.Equal(t, "stats", ev.Type)
	assert.EqualValues(t, 42, ev.Data.Pids.Limit, out)
	assert.GreaterOrEqual(t, ev.Data.Pids.Current, uint64(1), out)
	assert.EqualValues(t, 64<<20, ev.Data.Memory.Usage.Limit, out)
	out = r.must("ps", "--format", "json", id)
	var pids []int
	require.NoError(t, json.Unmarshal([]byte(out), &pids))
	assert.Contains(t, pids, r.state(id).Pid)
}

// TestCgroupViewIsOwn: the container's /sys/fs/cgroup shows its own
// cgroup, with its limits, not the host's hierarchies (whose roots alone
// have cgroup.sane_behavior on v1), with a cgroup namespace of its own and
// without.
func TestCgroupViewIsOwn(t *testing.T) {
	r := newRuntime(t)
	for _, ownNS := range []bool{true, false} {
		limit := int64(77)
		out, code := r.runIn(t, func(s *specs.Spec) {
			s.Linux.Resources = &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: &limit}}
			if !ownNS {
				var nss []specs.LinuxNamespace
				for _, n := range s.Linux.Namespaces {
					if n.Type != specs.CgroupNamespace {
						nss = append(nss, n)
					}
				}
				s.Linux.Namespaces = nss
			}
			s.Process.Args = []string{"sh", "-c", "cat /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/pids.max 2>/dev/null; ls /sys/fs/cgroup/memory /sys/fs/cgroup 2>/dev/null"}
		})
		require.Equal(t, 0, code, out)
		assert.Contains(t, out, "77\n", "own cgroup namespace %v", ownNS)
		assert.NotContains(t, out, "cgroup.sane_behavior", "own cgroup namespace %v: the host's hierarchy root is visible", ownNS)
	}
}
