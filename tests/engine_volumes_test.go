package tests

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"minidock/api"
)

// Volumes, bind mounts and tmpfs mounts through the engine (issue 11):
// each test drives a daemon on its own roots, with real mounts, and its
// cleanup checks that no mount is left in the daemon's mount namespace
// (engine.cleanup: newMounts) and that the test's own host paths hold
// none.

// volumeNames lists the engine's volumes.
func (e *engine) volumeNames() []string {
	e.t.Helper()
	var list api.VolumeListResponse
	e.must(200, "GET", "/volumes", nil, &list)
	var names []string
	for _, v := range list.Volumes {
		names = append(names, v.Name)
	}
	return names
}

// volumeDirs lists the directories of <data-root>/volumes.
func (e *engine) volumeDirs() []string {
	ents, _ := os.ReadDir(filepath.Join(e.dataRoot, "volumes"))
	var out []string
	for _, en := range ents {
		out = append(out, en.Name())
	}
	return out
}

// runOut runs a container with the minidock client (`run --rm`) and
// returns its output; it fails the test unless the container exits 0.
func (e *engine) runOut(args ...string) string {
	e.t.Helper()
	return e.mustCLI(append([]string{"run", "--rm"}, args...)...)
}

// mountsUnder lists the mount points below dir in the daemon's mount
// namespace.
func (e *engine) mountsUnder(dir string) []string {
	var out []string
	for _, m := range e.allMounts() {
		if m == dir || strings.HasPrefix(m, dir+"/") {
			out = append(out, m)
		}
	}
	return out
}

// Data written through a named volume outlives its container and is seen
// by the next; two running containers share it; ro refuses writes; a
// volume in use cannot be removed; inspect shows the mount as Docker does.
func TestVolumeNamed(t *testing.T) {
	e := newEngine(t)
	e.importBusybox("busybox:latest")
	var v api.Volume
	e.must(201, "POST", "/volumes/create", map[string]any{"Name": "data", "Labels": map[string]string{"team": "a"}}, &v)
	require.Equal(t, "data", v.Name)
	require.Equal(t, filepath.Join(e.dataRoot, "volumes", "data", "_data"), v.Mountpoint)

	e.runOut("-v", "data:/data", "busybox", "sh", "-c", "echo one > /data/f")
	require.Equal(t, "one\n", e.runOut("-v", "data:/data", "busybox", "cat", "/data/f"), "the next container sees the data")
	data, err := os.ReadFile(filepath.Join(v.Mountpoint, "f"))
	require.NoError(t, err)
	require.Equal(t, "one\n", string(data), "the data is in the volume's directory")

	// two running containers share it
	e.mustCLI("run", "-d", "--name", "reader", "-v", "data:/data", "busybox", "sleep", "300")
	e.mustCLI("run", "-d", "--name", "writer", "-v", "data:/shared", "busybox", "sh", "-c", "echo two > /shared/g; sleep 300")
	require.Eventually(t, func() bool {
		out, _ := e.cli("exec", "reader", "cat", "/data/g")
		return out == "two\n"
	}, 5*time.Second, 50*time.Millisecond, "a running container sees another's write")

	// in use: no rm, no prune; its users named
	st, body := e.do("DELETE", "/volumes/data", nil)
	require.Equal(t, 409, st, "%s", body)
	readerID := e.inspect("reader").ID
	require.Contains(t, errorMessage(t, body), "remove data: volume is in use - [")
	require.Contains(t, errorMessage(t, body), readerID)
	st, body = e.do("DELETE", "/volumes/data?force=1", nil)
	require.Equal(t, 409, st, "force does not remove a volume in use: %s", body)
	var got api.Volume
	e.must(200, "GET", "/volumes/data", nil, &got)
	require.Equal(t, int64(2), got.UsageData.RefCount)

	// inspect's Mounts, Docker's shape
	c := e.inspect("reader")
	require.Equal(t, []api.MountPoint{{Type: "volume", Name: "data", Source: v.Mountpoint, Destination: "/data",
		Driver: "local", Mode: "z", RW: true}}, c.Mounts)
	var list []api.ContainerSummary
	e.must(200, "GET", "/containers/json?filters="+`{"name":["reader"]}`, nil, &list)
	require.Len(t, list, 1)
	require.Equal(t, c.Mounts, list[0].Mounts, "ps's Mounts")

	// ro refuses writes, reads work
	out, code := e.cli("run", "--rm", "-v", "data:/data:ro", "busybox", "sh", "-c", "cat /data/f; echo x > /data/h")
	require.NotEqual(t, 0, code, out)
	require.Contains(t, out, "one")
	require.Contains(t, out, "Read-only file system")
	_, err = os.Stat(filepath.Join(v.Mountpoint, "h"))
	require.True(t, os.IsNotExist(err), "nothing written through ro")

	// a stopped user still holds it
	e.mustCLI("rm", "-f", "writer")
	e.mustCLI("stop", "-t", "1", "reader")
	st, _ = e.do("DELETE", "/volumes/data", nil)
	require.Equal(t, 409, st, "a stopped container still uses the volume")
	e.mustCLI("rm", "-v", "reader") // -v: named volumes stay
	require.Contains(t, e.volumeNames(), "data")
	e.must(204, "DELETE", "/volumes/data", nil, nil)
	require.Empty(t, e.volumeNames())
	require.Empty(t, e.volumeDirs())
	e.must(404, "GET", "/volumes/data", nil, nil)
	st, body = e.do("DELETE", "/volumes/data", nil)
	require.Equal(t, 404, st)
	require.Equal(t, "get data: no such volume", errorMessage(t, body))
	e.must(204, "DELETE", "/volumes/data?force=1", nil, nil)
}

// volumeEvents are the volume events so far, as "action name".
func (e *engine) volumeEvents() []string {
	e.t.Helper()
	now := time.Now()
	st, body := e.do("GET", fmt.Sprintf("/events?since=0&until=%d.%09d&filters=%s", now.Unix(), now.Nanosecond(),
		url.QueryEscape(`{"type":["volume"]}`)), nil)
	require.Equal(e.t, 200, st, "%s", body)
	var out []string
	d := json.NewDecoder(bytes.NewReader(body))
	for d.More() {
		var m api.EventMessage
		require.NoError(e.t, d.Decode(&m))
		out = append(out, m.Action+" "+m.Actor.ID)
	}
	return out
}

// An image's VOLUME: a new anonymous volume gets the image's content
// there (copy-up: owners, modes, symlinks kept), once; nocopy keeps it
// empty; rm -v and --rm remove anonymous volumes, never named ones; a
// prune takes the anonymous ones (API 1.42 on) or all unused ones;
// --volumes-from shares another container's mounts.
func TestVolumeCopyUpAndAnonymous(t *testing.T) {
	e := newEngine(t)
	e.importBusybox("busybox:latest")
	e.runToEnd("prep", "sh", "-c", "mkdir -p /srv/data/sub && echo image > /srv/data/f && chown 1000:1000 /srv/data/f && "+
		"chmod 640 /srv/data/f && ln -s f /srv/data/link && chmod 1750 /srv/data/sub")
	e.must(201, "POST", "/commit?container=prep&repo=withvol&tag=latest&changes="+url.QueryEscape("VOLUME /srv/data"), nil, nil)
	e.mustCLI("rm", "prep")

	// --rm: an anonymous volume with the image's content, gone after
	require.Equal(t, "image\n", e.runOut("withvol", "cat", "/srv/data/f"))
	require.Empty(t, e.volumeNames(), "--rm removed the anonymous volume")

	// a named volume gets the content once
	require.Equal(t, "image\n", e.runOut("-v", "cv:/srv/data", "withvol", "sh", "-c", "cat /srv/data/f; rm /srv/data/f; echo mine > /srv/data/g"))
	dir := filepath.Join(e.dataRoot, "volumes", "cv", "_data")
	fi, err := os.Lstat(filepath.Join(dir, "link"))
	require.NoError(t, err)
	require.Equal(t, os.ModeSymlink, fi.Mode()&os.ModeType, "the symlink copied as a symlink")
	fi, err = os.Stat(filepath.Join(dir, "sub"))
	require.NoError(t, err)
	require.Equal(t, os.ModeDir|os.ModeSticky|0o750, fi.Mode(), "modes kept")
	require.Equal(t, "g\nlink\nsub\n", e.runOut("-v", "cv:/srv/data", "withvol", "ls", "/srv/data"), "no second copy over data")
	require.Equal(t, "1000 1000 640\n", e.runOut("-v", "cv2:/srv/data", "withvol", "stat", "-c", "%u %g %a", "/srv/data/f"), "owner and mode kept")

	// nocopy, both syntaxes
	require.Equal(t, "", e.runOut("-v", "nc:/srv/data:nocopy", "withvol", "ls", "-A", "/srv/data"))
	require.Equal(t, "", e.runOut("--mount", "type=volume,src=nc2,dst=/srv/data,volume-nocopy", "withvol", "ls", "-A", "/srv/data"))
	for _, n := range []string{"cv", "cv2", "nc", "nc2"} {
		e.must(204, "DELETE", "/volumes/"+n, nil, nil)
	}

	// rm -v: the anonymous volumes go (the image's and -v /path), the named one stays
	e.mustCLI("run", "-d", "--name", "ca", "-v", "/extra", "-v", "keep:/keep", "withvol", "sleep", "300")
	c := e.inspect("ca")
	require.Len(t, c.Mounts, 3)
	var anon []string
	for _, m := range c.Mounts {
		require.Equal(t, api.MountTypeVolume, m.Type)
		if m.Destination != "/keep" {
			require.Regexp(t, "^[0-9a-f]{64}$", m.Name)
			require.Equal(t, filepath.Join(e.dataRoot, "volumes", m.Name, "_data"), m.Source)
			anon = append(anon, m.Name)
		}
	}
	require.Contains(t, c.Config.Volumes, "/srv/data", "the image's VOLUME in the container's config")
	require.Contains(t, c.Config.Volumes, "/extra")
	// --volumes-from: the same volumes, read-only with :ro
	out, code := e.cli("run", "--rm", "--volumes-from", "ca:ro", "busybox", "sh", "-c", "cat /srv/data/f; touch /keep/x")
	require.NotEqual(t, 0, code)
	require.Contains(t, out, "image")
	require.Contains(t, out, "Read-only file system")
	require.Equal(t, "from\n", e.runOut("--volumes-from", "ca", "busybox", "sh", "-c", "echo from > /keep/y; cat /keep/y"))
	e.mustCLI("rm", "-f", "-v", "ca")
	require.Equal(t, []string{"keep"}, e.volumeNames())
	events := e.volumeEvents()
	for _, n := range anon {
		for _, action := range []string{"create", "mount", "unmount", "destroy"} {
			require.Contains(t, events, action+" "+n)
		}
	}

	// rm without -v: the anonymous volume stays, dangling; a prune takes
	// it (API 1.42 on) and leaves named ones; all=true takes those too
	e.mustCLI("run", "--name", "cb", "withvol", "true")
	e.mustCLI("rm", "cb")
	require.Len(t, e.volumeNames(), 2)
	var rep api.VolumesPruneReport
	st, body := e.doVersion("1.47", "POST", "/volumes/prune", nil)
	require.Equal(t, 200, st, "%s", body)
	require.NoError(t, json.Unmarshal(body, &rep))
	require.Len(t, rep.VolumesDeleted, 1)
	require.Equal(t, []string{"keep"}, e.volumeNames())
	require.Greater(t, rep.SpaceReclaimed, uint64(0), "the copied file's blocks")
	e.must(201, "POST", "/volumes/create", map[string]any{"Name": "other"}, nil)
	st, body = e.doVersion("1.47", "POST", "/volumes/prune?filters="+url.QueryEscape(`{"all":["true"],"label!":["nosuch"]}`), nil)
	require.Equal(t, 200, st, "%s", body)
	require.NoError(t, json.Unmarshal(body, &rep))
	require.ElementsMatch(t, []string{"keep", "other"}, rep.VolumesDeleted)
	// before API 1.42 a prune took every unused volume
	e.must(201, "POST", "/volumes/create", map[string]any{"Name": "old"}, nil)
	st, body = e.doVersion("1.41", "POST", "/volumes/prune", nil)
	require.Equal(t, 200, st, "%s", body)
	require.NoError(t, json.Unmarshal(body, &rep))
	require.Equal(t, []string{"old"}, rep.VolumesDeleted)
	require.Empty(t, e.volumeDirs())
}

// errorMessage is the message of an error reply.
func errorMessage(t *testing.T, body []byte) string {
	var e api.ErrorResponse
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("not an error reply: %s", body)
	}
	return e.Message
}

// doVersion sends one request with the /vX.Y/ prefix of version.
func (e *engine) doVersion(version, method, path string, body io.Reader) (int, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(method, "http://d/v"+version+path, body)
	require.NoError(e.t, err)
	resp, err := e.http.Do(req)
	require.NoError(e.t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(e.t, err)
	return resp.StatusCode, data
}

// tmpfs mounts (--tmpfs, --mount type=tmpfs) are empty at each start and
// limited in size; a tmpfs-backed volume (-o type=tmpfs) keeps its data
// while some container runs with it, and is unmounted by the last.
func TestVolumeTmpfs(t *testing.T) {
	e := newEngine(t)
	e.importBusybox("busybox:latest")
	script := "echo entries $(ls -A /t /m | grep -c was-here); touch /t/was-here /m/was-here; " +
		"dd if=/dev/zero of=/t/big bs=1k count=2048 2>/dev/null && echo fits || echo full; df -k /t | tail -1"
	e.mustCLI("create", "--name", "tm", "--tmpfs", "/t:size=1m", "--mount", "type=tmpfs,dst=/m,tmpfs-size=2m,tmpfs-mode=1770",
		"busybox", "sh", "-c", script)
	for i := 0; i < 2; i++ {
		resp := e.request("POST", "/containers/tm/wait?condition=next-exit", nil)
		e.must(204, "POST", "/containers/tm/start", nil, nil)
		waitCode(t, resp)
	}
	out, _ := e.logs("tm", "")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	// each run: nothing left by the last, 2 MiB refused, 1 MiB in all
	require.Equal(t, 2*3, len(lines), out)
	for _, run := range [][]string{lines[:3], lines[3:]} {
		require.Equal(t, "entries 0", run[0], "empty at each start:\n%s", out)
		require.Equal(t, "full", run[1], "size-limited:\n%s", out)
		require.Regexp(t, `^tmpfs\s+1024\s`, run[2])
	}
	c := e.inspect("tm")
	require.Equal(t, map[string]string{"/t": "size=1m"}, c.HostConfig.Tmpfs)
	require.Equal(t, []api.MountPoint{{Type: "tmpfs", Destination: "/m", RW: true}}, c.Mounts, "--tmpfs shows in HostConfig only, as Docker")
	require.Equal(t, "1770\n", e.runOut("--mount", "type=tmpfs,dst=/m,tmpfs-mode=1770", "busybox", "stat", "-c", "%a", "/m"))
	e.mustCLI("rm", "tm")

	// a volume on a tmpfs of its own: mounted while a container runs
	e.mustCLI("volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=4m", "mem")
	data := filepath.Join(e.dataRoot, "volumes", "mem", "_data")
	e.mustCLI("run", "-d", "--name", "holder", "-v", "mem:/mem", "busybox", "sh", "-c", "echo kept > /mem/f; sleep 300")
	require.Equal(t, []string{data}, e.mountsUnder(data))
	require.Eventually(t, func() bool {
		out, _ := e.cli("run", "--rm", "-v", "mem:/mem", "busybox", "cat", "/mem/f")
		return out == "kept\n"
	}, 5*time.Second, 50*time.Millisecond, "a second container sees the tmpfs volume's data")
	require.Equal(t, []string{data}, e.mountsUnder(data), "still mounted for the first")
	e.mustCLI("stop", "-t", "1", "holder")
	require.Empty(t, e.mountsUnder(data), "unmounted by its last user")
	require.Equal(t, "", e.runOut("-v", "mem:/mem", "busybox", "ls", "-A", "/mem"), "the data lived as long as a container ran with it")
	e.mustCLI("rm", "holder")
	e.mustCLI("volume", "rm", "mem")
}

// Bad input is a 400 in Docker's words, and nothing is created: no
// container, no volume, no host path.
func TestVolumeBadInput(t *testing.T) {
	e := newEngine(t)
	e.importBusybox("busybox:latest")
	host := t.TempDir()
	outside := t.TempDir()
	require.NoError(t, os.Symlink(outside+"/gone", host+"/link"))
	e.must(201, "POST", "/volumes/create", map[string]any{"Name": "existing"}, nil)
	hc := func(h map[string]any) map[string]any {
		return map[string]any{"Image": "busybox", "Cmd": []string{"true"}, "HostConfig": h}
	}
	for _, c := range []struct {
		name string
		body map[string]any
		want string
	}{
		{"relative host path", hc(map[string]any{"Binds": []string{"data/dir:/d"}}),
			`create data/dir: "data/dir" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`},
		{"target not absolute", hc(map[string]any{"Binds": []string{host + ":rel"}}),
			"invalid volume specification: '" + host + ":rel': invalid mount config for type \"bind\": invalid mount path: 'rel' mount path must be absolute"},
		{"--mount target not absolute", hc(map[string]any{"Mounts": []map[string]any{{"Type": "volume", "Source": "v1", "Target": "rel"}}}),
			"invalid mount path: 'rel' mount path must be absolute"},
		{"/ as target", hc(map[string]any{"Binds": []string{host + ":/"}}), "invalid specification: destination can't be '/'"},
		{"anonymous volume on /", map[string]any{"Image": "busybox", "Cmd": []string{"true"}, "Volumes": map[string]any{"/": struct{}{}}},
			"invalid specification: destination can't be '/'"},
		{"volume name with /", hc(map[string]any{"Mounts": []map[string]any{{"Type": "volume", "Source": "a/b", "Target": "/d"}}}),
			`"a/b" includes invalid characters for a local volume name`},
		{"volume name with ..", hc(map[string]any{"Binds": []string{"../../etc:/d"}}), `"../../etc" includes invalid characters for a local volume name`},
		{"source through a dangling symlink", hc(map[string]any{"Binds": []string{host + "/link/sub:/d"}}),
			"goes through " + host + "/link, a symlink to " + outside + "/gone, which does not exist"},
		{"tmpfs size", hc(map[string]any{"Tmpfs": map[string]string{"/t": "size=abc"}}), `invalid tmpfs options for /t: invalid tmpfs size "abc"`},
		{"--mount tmpfs size", hc(map[string]any{"Mounts": []map[string]any{{"Type": "tmpfs", "Target": "/t", "TmpfsOptions": map[string]any{"SizeBytes": -1}}}}),
			"invalid tmpfs size"},
		{"two mounts on one target", hc(map[string]any{"Binds": []string{"v2:/d"}, "Tmpfs": map[string]string{"/d": ""}}), "Duplicate mount point: /d"},
		{"missing --mount source", hc(map[string]any{"Mounts": []map[string]any{{"Type": "bind", "Source": host + "/missing", "Target": "/d"}}}),
			`invalid mount config for type "bind": bind source path does not exist: ` + host + "/missing"},
		{"another driver", hc(map[string]any{"Mounts": []map[string]any{{"Type": "volume", "Source": "v3", "Target": "/d",
			"VolumeOptions": map[string]any{"DriverConfig": map[string]any{"Name": "nfs"}}}}}), `volume driver "nfs" is not supported`},
		{"volumes-from nobody", hc(map[string]any{"VolumesFrom": []string{"ghost"}}), "No such container: ghost"},
	} {
		st, body := e.do("POST", "/containers/create?name=bad", c.body)
		want := 400
		if c.name == "volumes-from nobody" {
			want = 404
		}
		assert.Equal(t, want, st, "%s: %s", c.name, body)
		assert.Contains(t, errorMessage(t, body), c.want, c.name)
	}
	for _, body := range []map[string]any{{"Name": "a/b"}, {"Name": ".."}, {"Name": "x", "Driver": "nfs"}, {"Name": "x", "DriverOpts": map[string]string{"colour": "red"}}} {
		st, resp := e.do("POST", "/volumes/create", body)
		assert.Equal(t, 400, st, "%v: %s", body, resp)
	}
	st, resp := e.do("GET", "/volumes?filters="+url.QueryEscape(`{"dangling":["maybe"]}`), nil)
	assert.Equal(t, 400, st, "%s", resp)
	st, resp = e.do("GET", "/volumes?filters="+url.QueryEscape(`{"colour":["red"]}`), nil)
	assert.Equal(t, 400, st, "%s", resp)

	// nothing was created
	var list []api.ContainerSummary
	e.must(200, "GET", "/containers/json?all=1", nil, &list)
	assert.Empty(t, list)
	assert.Equal(t, []string{"existing"}, e.volumeNames())
	assert.Equal(t, []string{"existing"}, e.volumeDirs())
	ents, _ := os.ReadDir(filepath.Join(e.dataRoot, "containers"))
	assert.Empty(t, ents)
	ents, _ = os.ReadDir(host)
	assert.Len(t, ents, 1, "only the symlink")
	ents, _ = os.ReadDir(outside)
	assert.Empty(t, ents)

	// a volume over a file of the image: refused, and the volumes made
	// for the create go again
	st, resp = e.do("POST", "/containers/create", map[string]any{"Image": "busybox", "Cmd": []string{"true"},
		"HostConfig": map[string]any{"Binds": []string{"new:/etc/passwd"}}, "Volumes": map[string]any{"/anon": struct{}{}}})
	assert.Equal(t, 400, st, "%s", resp)
	assert.Contains(t, errorMessage(t, resp), "cannot mount volume over existing file, file exists /etc/passwd")
	assert.Equal(t, []string{"existing"}, e.volumeNames())
	assert.Equal(t, []string{"existing"}, e.volumeDirs())
}

// nsenter runs a command in the mount namespace of process pid.
func nsenter(t *testing.T, pid int, args ...string) string {
	t.Helper()
	out, err := exec.Command("nsenter", append([]string{fmt.Sprintf("--mount=/proc/%d/ns/mnt", pid), "--"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("nsenter %d %v: %v: %s", pid, args, err, out)
	}
	return string(out)
}

// Bind propagation: with rshared, a mount made inside the container below
// the bind shows on the host path (the daemon's side of it: its mount
// namespace); with the default rprivate it does not. The source must be
// a shared mount for rshared, as Docker says.
func TestVolumeBindPropagation(t *testing.T) {
	e := newEngine(t)
	e.importBusybox("busybox:latest")
	daemon := e.cmd.Process.Pid
	src := filepath.Join(t.TempDir(), "shared")
	for _, d := range []string{"shared/in-shared", "shared/in-private"} {
		require.NoError(t, os.MkdirAll(filepath.Join(filepath.Dir(src), d), 0o755))
	}
	// refused while src is not a shared mount
	out, code := e.cli("run", "--rm", "-v", src+":/data:rshared", "busybox", "true")
	require.NotEqual(t, 0, code)
	require.Contains(t, out, "path "+src+" is mounted on / but it is not a shared mount")

	// src a shared mount of its own, on the host (the daemon's namespace)
	nsenter(t, daemon, "mount", "--bind", src, src)
	defer func() {
		exec.Command("nsenter", fmt.Sprintf("--mount=/proc/%d/ns/mnt", daemon), "--", "umount", "-R", src).Run()
	}()
	nsenter(t, daemon, "mount", "--make-shared", src)

	e.mustCLI("run", "-d", "--name", "shared", "-v", src+":/data:rshared", "busybox", "sleep", "300")
	e.mustCLI("run", "-d", "--name", "private", "-v", src+":/data", "busybox", "sleep", "300")
	require.Equal(t, api.Propagation("rshared"), e.inspect("shared").Mounts[0].Propagation)
	require.Equal(t, api.Propagation("rprivate"), e.inspect("private").Mounts[0].Propagation)
	// a mount made inside each container (by the host: a container's
	// capabilities do not allow mount)
	nsenter(t, e.inspect("shared").State.Pid, "mount", "-t", "tmpfs", "tmpfs", "/data/in-shared")
	nsenter(t, e.inspect("private").State.Pid, "mount", "-t", "tmpfs", "tmpfs", "/data/in-private")
	require.Equal(t, []string{src, src + "/in-shared"}, e.mountsUnder(src), "rshared: the container's mount is on the host; rprivate: not")

	// and back: a mount on the host shows in the rshared container only
	require.NoError(t, os.MkdirAll(src+"/from-host", 0o755))
	nsenter(t, daemon, "mount", "-t", "tmpfs", "tmpfs", src+"/from-host")
	out, _ = e.cli("exec", "shared", "grep", "-c", "/data/from-host", "/proc/self/mountinfo")
	require.Equal(t, "1\n", out)
	out, _ = e.cli("exec", "private", "grep", "-c", "/data/from-host", "/proc/self/mountinfo")
	require.Equal(t, "0\n", out)

	nsenter(t, daemon, "umount", src+"/from-host", src+"/in-shared")
	e.mustCLI("rm", "-f", "shared", "private")
	nsenter(t, daemon, "umount", src)
	require.Empty(t, e.mountsUnder(src))
}

// parentOf is a process's parent.
func parentOf(t *testing.T, pid int) int {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	require.NoError(t, err)
	// pid (comm) state ppid ...
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
	var ppid int
	fmt.Sscan(f[1], &ppid)
	return ppid
}

// A daemon killed with SIGKILL and started again (in the mount namespace
// the last one ran in, as on a host): the volumes, their data and which
// containers use them are all still there; a tmpfs volume a running
// container uses is still mounted, and one whose container stopped while
// no daemon ran is unmounted.
func TestVolumeDaemonRestart(t *testing.T) {
	e := newEngine(t)
	e.importBusybox("busybox:latest")
	e.mustCLI("volume", "create", "keep")
	for _, n := range []string{"mem", "mem2"} {
		e.mustCLI("volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=1m", n)
	}
	e.runOut("-v", "keep:/k", "busybox", "sh", "-c", "echo lasting > /k/f")
	e.mustCLI("run", "-d", "--name", "runner", "-v", "keep:/k", "-v", "mem:/m", "-v", "/anon", "busybox", "sh", "-c", "echo in-memory > /m/f; sleep 300")
	e.mustCLI("create", "--name", "idle", "-v", "keep:/k2", "busybox", "true")
	e.mustCLI("run", "-d", "--name", "brief", "-v", "mem2:/m", "busybox", "sleep", "1")
	mem := filepath.Join(e.dataRoot, "volumes", "mem", "_data")
	mem2 := filepath.Join(e.dataRoot, "volumes", "mem2", "_data")
	require.Equal(t, []string{mem}, e.mountsUnder(mem))
	require.Equal(t, []string{mem2}, e.mountsUnder(mem2))
	runner := e.inspect("runner")
	require.Eventually(t, func() bool {
		out, _ := e.cli("exec", "runner", "cat", "/m/f")
		return out == "in-memory\n"
	}, 5*time.Second, 50*time.Millisecond)

	brief := filepath.Join(e.dataRoot, "containers", e.idOf("brief"), "exit.json")
	e.joinNS = parentOf(t, runner.State.Pid) // runner's shim holds the namespace
	e.killDaemon()
	require.Eventually(t, func() bool { _, err := os.Stat(brief); return err == nil }, 10*time.Second, 20*time.Millisecond,
		"brief exits while no daemon runs")
	e.start()

	require.ElementsMatch(t, []string{"keep", "mem", "mem2", runner.Mounts[0].Name}, e.volumeNames())
	var v api.Volume
	e.must(200, "GET", "/volumes/keep", nil, &v)
	require.Equal(t, int64(2), v.UsageData.RefCount, "runner and idle use keep again")
	st, body := e.do("DELETE", "/volumes/keep", nil)
	require.Equal(t, 409, st, "%s", body)
	st, body = e.do("DELETE", "/volumes/mem", nil)
	require.Equal(t, 409, st, "%s", body)
	require.Equal(t, runner.Mounts, e.inspect("runner").Mounts)
	require.Equal(t, "lasting\n", e.runOut("-v", "keep:/k", "busybox", "cat", "/k/f"))

	// the running container's tmpfs volume: still mounted, the same one
	require.Equal(t, []string{mem}, e.mountsUnder(mem))
	require.Equal(t, "in-memory\n", e.runOut("-v", "mem:/m", "busybox", "cat", "/m/f"))
	require.Equal(t, []string{mem}, e.mountsUnder(mem), "a second user came and went: still mounted for runner")
	// the one whose container stopped meanwhile: unmounted
	require.Empty(t, e.mountsUnder(mem2))

	e.mustCLI("stop", "-t", "1", "runner")
	require.Empty(t, e.mountsUnder(mem))
	e.mustCLI("rm", "-v", "runner", "idle", "brief")
	require.ElementsMatch(t, []string{"keep", "mem", "mem2"}, e.volumeNames(), "rm -v: runner's anonymous volume went")
	e.mustCLI("volume", "rm", "keep", "mem", "mem2")
	require.Empty(t, e.volumeDirs())
}

// idOf is a container's full ID.
func (e *engine) idOf(name string) string { return e.inspect(name).ID }

// docker cp into and out of a path on a volume or a bind works on the
// mount's host directory (not the writable layer the mount hides), a
// symlink there resolves inside the mount, a read-only mount refuses
// writes; export and commit leave the volumes' content out, as Docker.
func TestVolumeCpExportCommit(t *testing.T) {
	e := newEngine(t)
	e.importBusybox("busybox:latest")
	host := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(host, "h.txt"), []byte("from host"), 0o644))
	id := e.create("cpv", map[string]any{"Image": "busybox", "Cmd": []string{"sh", "-c", "echo layer > /in-layer; cat /data/in.txt /data/sub/more.txt"},
		"HostConfig": map[string]any{"Binds": []string{"data:/data", host + ":/ro:ro"}, "Tmpfs": map[string]string{"/t": ""}}})
	vol := filepath.Join(e.dataRoot, "volumes", "data", "_data")

	// into the volume, the container not running
	e.must(200, "PUT", "/containers/cpv/archive?path=/data", makeTar(t, tarEntry{tar.TypeReg, "in.txt", "copied in\n"},
		tarEntry{tar.TypeDir, "sub", ""}, tarEntry{tar.TypeReg, "sub/more.txt", "more\n"}), nil)
	data, err := os.ReadFile(filepath.Join(vol, "in.txt"))
	require.NoError(t, err)
	require.Equal(t, "copied in\n", string(data), "written in the volume's directory")
	// the client's cp, into a subdirectory of it
	e.mustCLI("cp", filepath.Join(host, "h.txt"), "cpv:/data/sub/")
	data, err = os.ReadFile(filepath.Join(vol, "sub/h.txt"))
	require.NoError(t, err)
	require.Equal(t, "from host", string(data))

	// the container sees it
	resp := e.request("POST", "/containers/cpv/wait?condition=next-exit", nil)
	e.must(204, "POST", "/containers/cpv/start", nil, nil)
	require.Equal(t, 0, waitCode(t, resp))
	out, _ := e.logs("cpv", "")
	require.Equal(t, "copied in\nmore\n", out)

	// out of it: a file, the volume's root, a bind's file
	require.Equal(t, map[string]string{"in.txt": "copied in\n"}, e.archive(id, "/data/in.txt"))
	require.Equal(t, []string{"data", "data/in.txt", "data/sub", "data/sub/h.txt", "data/sub/more.txt"}, trimSlashes(keys(e.archive(id, "/data"))))
	require.Equal(t, []string{".", "./in.txt", "./sub", "./sub/h.txt", "./sub/more.txt"}, trimSlashes(keys(e.archive(id, "/data/."))))
	require.Equal(t, map[string]string{"h.txt": "from host"}, e.archive(id, "/ro/h.txt"))
	st, ps := e.pathStat(id, "/data/sub/more.txt")
	require.Equal(t, 200, st)
	require.Equal(t, "more.txt", ps.Name)
	require.Equal(t, int64(5), ps.Size)

	// a symlink in the volume that points to the host's / resolves in the volume
	require.NoError(t, os.Symlink("/", filepath.Join(vol, "escape")))
	require.NoError(t, os.Symlink("../../../../../../etc", filepath.Join(vol, "climb")))
	for _, p := range []string{"/data/escape/etc/passwd", "/data/climb/passwd"} {
		st, body := e.do("GET", "/containers/cpv/archive?path="+p, nil)
		require.Equal(t, 404, st, "%s: %s", p, body)
	}
	st, ps = e.pathStat(id, "/data/escape")
	require.Equal(t, 200, st)
	require.Equal(t, "/data", ps.LinkTarget, "a link's target, in the container")

	// read-only and tmpfs mounts
	st, body := e.do("PUT", "/containers/cpv/archive?path=/ro", makeTar(t, tarEntry{tar.TypeReg, "x", "x"}))
	require.Equal(t, 400, st)
	require.Equal(t, "mounted volume is marked read-only", errorMessage(t, body))
	st, body = e.do("PUT", "/containers/cpv/archive?path=/t", makeTar(t, tarEntry{tar.TypeReg, "x", "x"}))
	require.Equal(t, 400, st)
	require.Contains(t, errorMessage(t, body), "/t is on the tmpfs mount at /t")
	_, err = os.Stat(filepath.Join(host, "x"))
	require.True(t, os.IsNotExist(err))

	// export and commit: the writable layer, not the volume
	st, body = e.do("GET", "/containers/cpv/export", nil)
	require.Equal(t, 200, st)
	exported := readTar(t, body)
	require.Equal(t, "layer\n", exported["in-layer"])
	for name := range exported {
		require.False(t, strings.HasPrefix(name, "data/") && name != "data/", "export holds %s", name)
		require.False(t, strings.HasPrefix(name, "ro/") && name != "ro/", "export holds %s", name)
	}
	e.must(201, "POST", "/commit?container=cpv&repo=committed", nil, nil)
	require.Equal(t, "layer\n", e.runOut("committed", "cat", "/in-layer"))
	require.Equal(t, "", e.runOut("committed", "find", "/data", "/ro", "-mindepth", "1"), "no volume content in the image")
	e.mustCLI("rm", "cpv")
	e.mustCLI("volume", "rm", "data")
}

// trimSlashes drops the "/" tar puts after directory names.
func trimSlashes(names []string) []string {
	var out []string
	for _, n := range names {
		out = append(out, strings.TrimSuffix(n, "/"))
	}
	return out
}

// The official docker CLI: volume create/ls/inspect/rm/prune, run -v,
// --mount, --tmpfs, inspect -f '{{json .Mounts}}'.
func TestVolumeDockerCLI(t *testing.T) {
	requireDockerCLI(t)
	e := newEngine(t)
	e.importBusybox("busybox:latest")
	docker := func(args ...string) string {
		t.Helper()
		out, code := e.docker(args...)
		require.Equal(t, 0, code, "docker %s: %s", strings.Join(args, " "), out)
		return out
	}
	host := t.TempDir()
	require.Equal(t, "dv\n", docker("volume", "create", "--label", "team=a", "dv"))
	require.Equal(t, "mem\n", docker("volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=1m", "mem"))
	require.Regexp(t, `(?m)^local\s+dv$`, docker("volume", "ls"))
	require.Equal(t, "dv\n", docker("volume", "ls", "-q", "-f", "label=team=a"))
	require.Equal(t, filepath.Join(e.dataRoot, "volumes/dv/_data")+"\n", docker("volume", "inspect", "-f", "{{.Mountpoint}}", "dv"))
	var vols []api.Volume
	require.NoError(t, json.Unmarshal([]byte(docker("volume", "inspect", "dv", "mem")), &vols))
	require.Len(t, vols, 2)
	require.Equal(t, map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "size=1m"}, vols[1].Options)

	docker("run", "--rm", "-v", "dv:/data", "busybox", "sh", "-c", "echo via-v > /data/f")
	require.Equal(t, "via-v\n", docker("run", "--rm", "--mount", "type=volume,src=dv,dst=/d", "busybox", "cat", "/d/f"))
	require.Regexp(t, `^tmpfs\s+1024\s`, docker("run", "--rm", "--tmpfs", "/t:size=1m", "busybox", "sh", "-c", "df -k /t | tail -1"))
	require.Equal(t, "in-mem\n", docker("run", "--rm", "-v", "mem:/m", "busybox", "sh", "-c", "echo in-mem > /m/f; cat /m/f"))

	docker("run", "-d", "--name", "dc", "-v", "dv:/data", "-v", "/anon", "--mount", "type=bind,src="+host+",dst=/h,readonly",
		"--tmpfs", "/t", "busybox", "sleep", "300")
	var mounts []api.MountPoint
	require.NoError(t, json.Unmarshal([]byte(docker("inspect", "-f", "{{json .Mounts}}", "dc")), &mounts))
	require.Len(t, mounts, 3)
	byDest := map[string]api.MountPoint{}
	for _, m := range mounts {
		byDest[m.Destination] = m
	}
	require.Equal(t, api.MountPoint{Type: "volume", Name: "dv", Source: filepath.Join(e.dataRoot, "volumes/dv/_data"), Destination: "/data",
		Driver: "local", Mode: "z", RW: true}, byDest["/data"])
	require.Equal(t, api.MountPoint{Type: "bind", Source: host, Destination: "/h", RW: false, Propagation: "rprivate"}, byDest["/h"])
	anon := byDest["/anon"].Name
	require.Regexp(t, "^[0-9a-f]{64}$", anon)
	out, code := e.docker("exec", "dc", "touch", "/h/x")
	require.NotEqual(t, 0, code)
	require.Contains(t, out, "Read-only file system")

	out, code = e.docker("volume", "rm", "dv")
	require.NotEqual(t, 0, code)
	require.Contains(t, out, "volume is in use")
	out, code = e.docker("volume", "rm", "nosuch")
	require.NotEqual(t, 0, code)
	require.Contains(t, out, "no such volume")

	docker("rm", "-f", "dc") // without -v: the anonymous volume stays
	require.Contains(t, docker("volume", "ls", "-q", "-f", "dangling=true"), anon)
	out = docker("volume", "prune", "-f")
	require.Contains(t, out, anon)
	require.NotContains(t, out, "dv", "from API 1.42 a prune takes anonymous volumes only")
	out = docker("volume", "prune", "-a", "-f")
	require.Contains(t, out, "dv")
	require.Equal(t, "mem\n", docker("volume", "ls", "-q"), "a volume with driver options is never pruned, as Docker")
	docker("volume", "rm", "mem")
}
