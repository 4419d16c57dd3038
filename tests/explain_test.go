package tests

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"minidock/api"
)

// explainOf runs `minidock explain --format json` and decodes it.
func (e *engine) explainOf(name string) api.Explanation {
	e.t.Helper()
	out := e.mustCLI("explain", "--format", "json", name)
	var ex api.Explanation
	require.NoError(e.t, json.Unmarshal([]byte(out), &ex), out)
	return ex
}

// namespaceOf finds one type in an explanation's namespaces.
func namespaceOf(t *testing.T, ex api.Explanation, typ string) api.ExplainNamespace {
	t.Helper()
	for _, ns := range ex.Namespaces {
		if ns.Type == typ {
			return ns
		}
	}
	t.Fatalf("no %s namespace in %+v", typ, ex.Namespaces)
	return api.ExplainNamespace{}
}

// TestExplain: `minidock explain` of a container on the default bridge,
// with a published port and a memory limit, built on a two-layer image;
// of one in the host's pid and network namespaces; of a stopped one; of
// none. Each fact is checked against the kernel, read here independently.
func TestExplain(t *testing.T) {
	e := newEngine(t)
	e.importBusybox("busybox:latest")
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "hello.txt"), []byte("hello\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM busybox:latest\nCOPY hello.txt /hello.txt\n"), 0o644))
	e.mustCLI("build", "--network", "none", "-t", "explained:1", dir)
	e.mustCLI("run", "-d", "--name", "web", "-p", "127.0.0.1::8000", "--memory", "64m", "explained:1",
		"sh", "-c", "sleep 600 & wait")
	in := e.inspect("web")
	pid := in.State.Pid
	ex := e.explainOf("web")
	require.True(t, ex.Running)
	require.Equal(t, pid, ex.Pid)
	require.Empty(t, ex.Notes)

	t.Run("namespaces", func(t *testing.T) {
		for _, typ := range []string{"ipc", "mnt", "net", "pid", "uts"} {
			ns := namespaceOf(t, ex, typ)
			assert.False(t, ns.Shared, "%s is the container's own", typ)
			assert.NotEqual(t, ns.HostInode, ns.Inode, typ)
			link, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, typ))
			require.NoError(t, err)
			assert.Equal(t, fmt.Sprintf("%s:[%d]", typ, ns.Inode), link)
		}
		assert.True(t, namespaceOf(t, ex, "user").Shared, "no user namespace without --userns-remap")
	})

	t.Run("cgroup", func(t *testing.T) {
		require.NotNil(t, ex.Cgroup)
		assert.Contains(t, ex.Cgroup.Path, in.ID)
		limit := ""
		for _, f := range ex.Cgroup.Files {
			if f.File == "memory.max" || f.File == "memory.limit_in_bytes" {
				limit = f.Value
				assert.Equal(t, "limit 64.0MiB", f.Meaning)
			}
		}
		assert.Equal(t, "67108864", limit, "%+v", ex.Cgroup.Files)
		for _, d := range ex.Cgroup.Dirs {
			procs, err := os.ReadFile(filepath.Join(d.Dir, "cgroup.procs"))
			require.NoError(t, err, d.Dir)
			assert.Contains(t, strings.Fields(string(procs)), fmt.Sprint(pid), d.Dir)
		}
	})

	t.Run("rootfs", func(t *testing.T) {
		r := ex.Rootfs
		require.True(t, r.Mounted)
		var img api.ImageInspect
		e.must(200, "GET", "/images/explained:1/json", nil, &img)
		require.Len(t, img.RootFS.Layers, 2)
		require.Len(t, r.Lower, 3, "the init layer and the image's two: %+v", r.Lower)
		assert.Equal(t, "init", r.Lower[0].Kind)
		// top-most first: the COPY, then the imported base
		assert.Equal(t, img.RootFS.Layers[1], r.Lower[1].DiffID)
		assert.Contains(t, r.Lower[1].CreatedBy, "COPY")
		assert.Contains(t, r.Lower[1].CreatedBy, "hello.txt")
		assert.Equal(t, img.RootFS.Layers[0], r.Lower[2].DiffID)
		assert.Equal(t, "minidock import", r.Lower[2].CreatedBy)
		for _, l := range r.Lower[1:] {
			_, err := os.Stat(filepath.Join(l.Path, "bin/busybox"))
			if l == r.Lower[1] {
				_, err = os.Stat(filepath.Join(l.Path, "hello.txt"))
			}
			assert.NoError(t, err, "%s holds its layer's files", l.Path)
		}
		assert.Equal(t, filepath.Join(e.dataRoot, "containers", in.ID, "upper"), r.Upper)
		assert.Contains(t, r.MountOptions, "upperdir="+r.Upper)
	})

	t.Run("mounts", func(t *testing.T) {
		types := map[string]string{}
		for _, m := range ex.Mounts {
			types[m.Point] = m.FSType
		}
		assert.Equal(t, "overlay", types["/"])
		assert.Equal(t, "proc", types["/proc"])
		assert.Equal(t, "sysfs", types["/sys"])
	})

	t.Run("security", func(t *testing.T) {
		s := ex.Security
		require.NotNil(t, s)
		assert.Contains(t, s.Effective, "CAP_CHOWN")
		assert.Contains(t, s.Effective, "CAP_NET_BIND_SERVICE")
		assert.NotContains(t, s.Effective, "CAP_SYS_ADMIN")
		assert.NotContains(t, s.Bounding, "CAP_SYS_ADMIN")
		assert.Contains(t, s.Dropped, "CAP_SYS_ADMIN")
		assert.Equal(t, 2, s.Seccomp)
		assert.Equal(t, "filter", s.SeccompMode)
		assert.GreaterOrEqual(t, s.SeccompFilters, 1)
	})

	t.Run("network", func(t *testing.T) {
		n := ex.Network
		require.NotNil(t, n)
		var eth0 *api.ExplainInterface
		for i := range n.Interfaces {
			if n.Interfaces[i].Name == "eth0" {
				eth0 = &n.Interfaces[i]
			}
		}
		require.NotNil(t, eth0, "%+v", n.Interfaces)
		ip := in.NetworkSettings.IPAddress
		assert.Contains(t, eth0.Addresses, fmt.Sprintf("%s/%d", ip, in.NetworkSettings.IPPrefixLen))
		assert.Equal(t, e.bridge, eth0.Bridge)
		// the host veth, as ip link sees it: a port of the bridge
		out, err := exec.Command("ip", "-o", "link", "show", "dev", eth0.HostVeth).CombinedOutput()
		require.NoError(t, err, "%s", out)
		assert.Contains(t, string(out), fmt.Sprintf("%d: %s@", eth0.HostIndex, eth0.HostVeth))
		assert.Contains(t, string(out), "master "+e.bridge+" ")
		// the DNAT rule of the published port, as nft lists it
		port := in.NetworkSettings.Ports["8000/tcp"][0].HostPort
		assert.Equal(t, []api.ExplainPort{{Proto: "tcp", HostIP: "127.0.0.1", HostPort: n.Ports[0].HostPort, ContainerPort: 8000}}, n.Ports)
		assert.Equal(t, port, fmt.Sprint(n.Ports[0].HostPort))
		rule := fmt.Sprintf("tcp dport %s dnat ip to %s:8000", port, ip)
		assert.True(t, slices.ContainsFunc(n.Rules, func(r string) bool { return strings.Contains(r, rule) }), "%q in %q", rule, n.Rules)
		assert.Equal(t, e.nftTable, n.Table)
	})

	t.Run("processes", func(t *testing.T) {
		ps := ex.Processes
		require.GreaterOrEqual(t, len(ps), 3, "%+v", ps)
		assert.Equal(t, "shim", ps[0].Role)
		assert.Equal(t, 0, ps[0].Depth)
		var init, sleep *api.ExplainProcess
		for i := range ps {
			switch {
			case ps[i].Role == "init":
				init = &ps[i]
			case strings.HasPrefix(ps[i].Command, "sleep"):
				sleep = &ps[i]
			}
		}
		require.NotNil(t, init)
		require.NotNil(t, sleep)
		assert.Equal(t, pid, init.Pid)
		assert.Equal(t, 1, init.NSPid)
		assert.Equal(t, ps[0].Pid, init.PPid)
		assert.Equal(t, pid, sleep.PPid)
		assert.Greater(t, sleep.NSPid, 1)
	})

	t.Run("text", func(t *testing.T) {
		out := e.mustCLI("explain", "web")
		t.Logf("minidock explain web:\n%s", out)
		for _, want := range []string{"NAMESPACES", "CGROUP", "ROOT FILESYSTEM", "MOUNTS INSIDE", "PRIVILEGES",
			"NETWORK", "PROCESSES", "limit 64.0MiB", "CAP_CHOWN", "seccomp     2 (filter)", "<-> bridge " + e.bridge} {
			assert.Contains(t, out, want)
		}
		// every line but those that hold a long path fits 80 columns
		for _, line := range strings.Split(out, "\n") {
			if len([]rune(line)) > 80 && !strings.Contains(line, "/") {
				t.Errorf("line of %d columns: %q", len([]rune(line)), line)
			}
		}
	})

	t.Run("host namespaces", func(t *testing.T) {
		e.mustCLI("run", "-d", "--name", "hostly", "--pid", "host", "--network", "host", "busybox", "sleep", "600")
		ex := e.explainOf("hostly")
		assert.True(t, namespaceOf(t, ex, "pid").Shared)
		assert.True(t, namespaceOf(t, ex, "net").Shared)
		assert.False(t, namespaceOf(t, ex, "mnt").Shared)
		require.NotNil(t, ex.Network)
		assert.Equal(t, "host", ex.Network.Mode)
		assert.Empty(t, ex.Network.Interfaces)
		e.mustCLI("rm", "-f", "hostly")
	})

	// docs/explain.md's exercises: --network none has a namespace of its
	// own with only lo; --privileged drops nothing and has no filter
	t.Run("exercises", func(t *testing.T) {
		e.mustCLI("run", "-d", "--name", "alone", "--network", "none", "busybox", "sleep", "600")
		e.mustCLI("run", "-d", "--name", "mighty", "--privileged", "busybox", "sleep", "600")
		ex := e.explainOf("alone")
		assert.False(t, namespaceOf(t, ex, "net").Shared)
		require.NotNil(t, ex.Network)
		require.Len(t, ex.Network.Interfaces, 1)
		assert.Equal(t, "lo", ex.Network.Interfaces[0].Name)
		assert.Empty(t, ex.Network.Interfaces[0].HostVeth)
		ex = e.explainOf("mighty")
		require.NotNil(t, ex.Security)
		assert.Empty(t, ex.Security.Dropped)
		assert.Contains(t, ex.Security.Effective, "CAP_SYS_ADMIN")
		assert.Equal(t, 0, ex.Security.Seccomp)
		e.mustCLI("rm", "-f", "alone", "mighty")
	})

	t.Run("stopped", func(t *testing.T) {
		out, code := e.cli("run", "--name", "done", "busybox", "sh", "-c", "echo bye; exit 3")
		require.Equal(t, 3, code, out)
		ex := e.explainOf("done")
		assert.False(t, ex.Running)
		assert.Equal(t, "exited", ex.Status)
		assert.Equal(t, 3, ex.ExitCode)
		assert.NotEmpty(t, ex.FinishedAt)
		assert.Zero(t, ex.Pid)
		assert.Empty(t, ex.Namespaces)
		assert.Nil(t, ex.Cgroup)
		assert.Nil(t, ex.Network)
		assert.Empty(t, ex.Notes)
		log, err := os.ReadFile(ex.LogPath)
		require.NoError(t, err)
		assert.Contains(t, string(log), "bye")
		assert.False(t, ex.Rootfs.Mounted)
		require.Len(t, ex.Rootfs.Lower, 2)
		assert.Equal(t, "minidock import", ex.Rootfs.Lower[1].CreatedBy)
		assert.DirExists(t, ex.Rootfs.Upper)
		out = e.mustCLI("explain", "done")
		assert.Contains(t, out, "not running")
		assert.Contains(t, out, "exited with code 3")
		assert.Contains(t, out, ex.LogPath)
	})

	t.Run("unknown", func(t *testing.T) {
		out, code := e.cli("explain", "nosuch")
		assert.NotEqual(t, 0, code)
		assert.Contains(t, out, "No such container: nosuch")
		st, body := e.do("GET", "/containers/nosuch/explain", nil)
		assert.Equal(t, 404, st, "%s", body)
	})
}
