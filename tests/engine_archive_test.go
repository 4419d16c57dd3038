package tests

import (
	"archive/tar"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"minidock/api"
)

// tarEntry is one entry of a tar built by a test.
type tarEntry struct {
	typ        byte // tar.TypeReg, TypeDir, TypeSymlink, TypeLink, TypeChar
	name, body string
}

func makeTar(t *testing.T, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, en := range entries {
		hdr := &tar.Header{Typeflag: en.typ, Name: en.name, Mode: 0o644, Uid: 1234, Gid: 1234}
		switch en.typ {
		case tar.TypeReg:
			hdr.Size = int64(len(en.body))
		case tar.TypeDir:
			hdr.Mode = 0o755
		case tar.TypeSymlink, tar.TypeLink:
			hdr.Linkname = en.body
		case tar.TypeChar:
			hdr.Devmajor, hdr.Devminor = 1, 3
		}
		require.NoError(t, tw.WriteHeader(hdr))
		if en.typ == tar.TypeReg {
			_, err := tw.Write([]byte(en.body))
			require.NoError(t, err)
		}
	}
	require.NoError(t, tw.Close())
	return buf.Bytes()
}

// readTar gives the entries of a tar by name, with the content of the
// regular files.
func readTar(t *testing.T, data []byte) map[string]string {
	t.Helper()
	out := map[string]string{}
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out
		}
		require.NoError(t, err)
		body, err := io.ReadAll(tr)
		require.NoError(t, err)
		switch hdr.Typeflag {
		case tar.TypeSymlink:
			out[hdr.Name] = "-> " + hdr.Linkname
		default:
			out[hdr.Name] = string(body)
		}
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// pathStat decodes the X-Docker-Container-Path-Stat of a HEAD archive.
func (e *engine) pathStat(id, p string) (int, api.PathStat) {
	e.t.Helper()
	resp := e.request("HEAD", "/containers/"+id+"/archive?path="+p, nil)
	resp.Body.Close()
	var st api.PathStat
	if resp.StatusCode == 200 {
		data, err := base64.StdEncoding.DecodeString(resp.Header.Get(api.PathStatHeader))
		require.NoError(e.t, err)
		require.NoError(e.t, json.Unmarshal(data, &st))
	}
	return resp.StatusCode, st
}

// archive is GET /containers/{id}/archive?path=p, as a map of entries.
func (e *engine) archive(id, p string) map[string]string {
	e.t.Helper()
	st, data := e.do("GET", "/containers/"+id+"/archive?path="+p, nil)
	require.Equal(e.t, 200, st, "%s", data)
	return readTar(e.t, data)
}

// runToEnd creates, starts and waits for a container.
func (e *engine) runToEnd(name string, cmd ...string) string {
	e.t.Helper()
	id := e.create(name, map[string]any{"Image": "busybox", "Cmd": cmd})
	resp := e.request("POST", "/containers/"+id+"/wait?condition=next-exit", nil)
	e.must(204, "POST", "/containers/"+id+"/start", nil, nil)
	require.Equal(e.t, 0, waitCode(e.t, resp))
	return id
}

// Export, changes, commit, history, and the prunes, through the API.
func TestEngineExportCommitPrune(t *testing.T) {
	e := newEngine(t)
	e.importBusybox("busybox:latest")
	for _, p := range []string{"/containers/nosuch/export", "/containers/nosuch/changes", "/images/nosuch/history"} {
		e.must(404, "GET", p, nil, nil)
	}
	e.must(404, "POST", "/commit?container=nosuch", nil, nil)

	id := e.runToEnd("src", "sh", "-c", "echo new > /root/new; rm /etc/group; echo x >> /etc/passwd")
	var changes []api.ContainerChange
	e.must(200, "GET", "/containers/src/changes", nil, &changes)
	got := map[string]int{}
	for _, c := range changes {
		got[c.Path] = c.Kind
	}
	require.Equal(t, 1, got["/root/new"], "%v", changes)
	require.Equal(t, 2, got["/etc/group"], "%v", changes)
	require.Equal(t, 0, got["/etc/passwd"], "%v", changes)
	require.Contains(t, got, "/root")

	// export of a stopped container: mounted for it, unmounted after
	st, data := e.do("GET", "/containers/src/export", nil)
	require.Equal(t, 200, st, "%s", data)
	files := readTar(t, data)
	require.Equal(t, "new\n", files["root/new"])
	require.Contains(t, files, "bin/busybox")
	require.NotContains(t, files, "etc/group")
	require.Empty(t, e.mounts())

	// commit: the container's command and env, then the changes
	e.must(400, "POST", "/commit?container=src&repo=bad&changes=BOGUS+x", nil, nil)
	e.must(400, "POST", "/commit?container=src&repo=UPPER", nil, nil)
	var cid api.IDResponse
	e.must(201, "POST", "/commit?container=src&repo=committed&tag=v1&comment=first+commit&author=me&changes=ENV+X%3D1", nil, &cid)
	require.True(t, strings.HasPrefix(cid.ID, "sha256:"), cid.ID)
	var img api.ImageInspect
	e.must(200, "GET", "/images/committed:v1/json", nil, &img)
	require.Equal(t, cid.ID, img.ID)
	require.Equal(t, "me", img.Author)
	require.Contains(t, img.Config.Env, "X=1")
	require.Equal(t, []string{"sh", "-c", "echo new > /root/new; rm /etc/group; echo x >> /etc/passwd"}, img.Config.Cmd)
	require.Len(t, img.RootFS.Layers, 2)
	var hist []api.ImageHistoryItem
	e.must(200, "GET", "/images/committed:v1/history", nil, &hist)
	require.Len(t, hist, 2)
	require.Equal(t, cid.ID, hist[0].ID)
	require.Equal(t, []string{"committed:v1"}, hist[0].Tags)
	require.Equal(t, "first commit", hist[0].Comment)
	require.Greater(t, hist[0].Size, int64(0))
	// the committed image's parent is the local image it came from, so
	// history names it (as Docker does) rather than <missing>
	var parent api.ImageInspect
	e.must(200, "GET", "/images/busybox/json", nil, &parent)
	require.Equal(t, parent.ID, hist[1].ID)
	require.Equal(t, parent.ID, img.Parent)

	// a container of the committed image sees the changes
	e.create("child", map[string]any{"Image": "committed:v1", "Cmd": []string{"sh", "-c", "cat /root/new; test -e /etc/group || echo gone"}})
	resp := e.request("POST", "/containers/child/wait?condition=next-exit", nil)
	e.must(204, "POST", "/containers/child/start", nil, nil)
	require.Equal(t, 0, waitCode(t, resp))
	out, _ := e.logs("child", "")
	require.Equal(t, "new\ngone\n", out)

	// prune: a dangling image no container uses goes; a dangling one in
	// use and tagged ones stay
	var unused, inUse api.IDResponse
	e.must(201, "POST", "/commit?container=src&changes=LABEL+which%3Dunused", nil, &unused)
	e.must(201, "POST", "/commit?container=child", nil, &inUse)
	e.create("user", map[string]any{"Image": inUse.ID, "Cmd": []string{"true"}})
	var rep api.ImagesPruneReport
	e.must(200, "POST", "/images/prune", nil, &rep)
	require.Equal(t, []api.ImageDeleteItem{{Deleted: unused.ID}}, rep.ImagesDeleted)
	e.must(404, "GET", "/images/"+unused.ID+"/json", nil, nil)
	e.must(200, "GET", "/images/"+inUse.ID+"/json", nil, nil)
	e.must(200, "GET", "/images/committed:v1/json", nil, nil)
	e.must(400, "POST", `/images/prune?filters={"bogus":["1"]}`, nil, nil)

	// containers prune: the stopped and created go, the running stays
	want := []string{id, e.inspect("child").ID, e.inspect("user").ID}
	sort.Strings(want)
	e.create("runs", map[string]any{"Image": "busybox", "Cmd": []string{"sleep", "300"}})
	e.must(204, "POST", "/containers/runs/start", nil, nil)
	var crep api.ContainersPruneReport
	e.must(200, "POST", "/containers/prune", nil, &crep)
	sort.Strings(crep.ContainersDeleted)
	require.Equal(t, want, crep.ContainersDeleted)
	require.Greater(t, crep.SpaceReclaimed, int64(0))
	var list []api.ContainerSummary
	e.must(200, "GET", "/containers/json?all=1", nil, &list)
	require.Len(t, list, 1)
	require.Equal(t, []string{"/runs"}, list[0].Names)

	// all unused images: busybox stays (runs uses it), the others go
	e.must(200, "POST", `/images/prune?filters={"dangling":["false"]}`, nil, &rep)
	var imgs []api.ImageSummary
	e.must(200, "GET", "/images/json", nil, &imgs)
	require.Len(t, imgs, 1)
	require.Equal(t, []string{"busybox:latest"}, imgs[0].RepoTags)
	require.Greater(t, rep.SpaceReclaimed, int64(0))

	// the client's verbs
	e.must(201, "POST", "/commit?container=runs&repo=snap", nil, nil)
	out, code := e.cli("history", "snap")
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "CREATED BY")
	require.Contains(t, out, strings.TrimPrefix(parent.ID, "sha256:")[:12], "the parent's line names the local image")
	out, code = e.cli("diff", "runs")
	require.Equal(t, 0, code, out)
	exp := filepath.Join(t.TempDir(), "runs.tar")
	out, code = e.cli("export", "-o", exp, "runs")
	require.Equal(t, 0, code, out)
	data, err := os.ReadFile(exp)
	require.NoError(t, err)
	require.Contains(t, readTar(t, data), "bin/busybox")
	out, code = e.cli("commit", "-m", "msg", "-a", "someone", "-c", "ENV Y=2", "runs", "snap:two")
	require.Equal(t, 0, code, out)
	e.must(200, "GET", "/images/snap:two/json", nil, &img)
	require.Contains(t, img.Config.Env, "Y=2")
	out, code = e.cli("image", "rm", "snap:two")
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "Untagged: snap:two")
	out, code = e.cli("image", "prune", "-a", "-f")
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "untagged: snap:latest")
	require.Contains(t, out, "Total reclaimed space")
	e.must(204, "POST", "/containers/runs/stop?t=0", nil, nil)
	runsID := e.inspect("runs").ID
	out, code = e.cli("container", "prune", "-f")
	require.Equal(t, 0, code, out)
	require.Contains(t, out, runsID)
}

// HEAD, GET and PUT /containers/{id}/archive (docker cp), on a running
// and on a stopped container, and the tarballs that must be refused.
func TestEngineArchive(t *testing.T) {
	e := newEngine(t)
	e.importBusybox("busybox:latest")
	e.must(404, "HEAD", "/containers/nosuch/archive?path=/", nil, nil)
	e.must(404, "PUT", "/containers/nosuch/archive?path=/", makeTar(t), nil)

	e.runToEnd("stopped", "sh", "-c", "mkdir -p /data/sub; echo one > /data/f; echo two > /data/sub/g; ln -s /data/f /data/lnk; ln -s /data /dirlink")
	st, ps := e.pathStat("stopped", "/data/f")
	require.Equal(t, 200, st)
	require.Equal(t, api.PathStat{Name: "f", Size: 4, Mode: 0o644, Mtime: ps.Mtime}, ps)
	st, ps = e.pathStat("stopped", "/data/lnk")
	require.Equal(t, 200, st)
	require.Equal(t, "/data/f", ps.LinkTarget)
	require.NotZero(t, os.FileMode(ps.Mode)&os.ModeSymlink)
	st, ps = e.pathStat("stopped", "/data")
	require.Equal(t, 200, st)
	require.True(t, os.FileMode(ps.Mode).IsDir())
	st, _ = e.pathStat("stopped", "/nope")
	require.Equal(t, 404, st)
	e.must(404, "GET", "/containers/stopped/archive?path=/data/f/x", nil, nil)
	e.must(400, "GET", "/containers/stopped/archive?path=", nil, nil)

	require.Equal(t, []string{"data/", "data/f", "data/lnk", "data/sub/", "data/sub/g"}, keys(e.archive("stopped", "/data")))
	require.Equal(t, []string{"./", "./f", "./lnk", "./sub/", "./sub/g"}, keys(e.archive("stopped", "/data/.")))
	require.Equal(t, map[string]string{"f": "one\n"}, e.archive("stopped", "/data/f"))
	require.Equal(t, map[string]string{"lnk": "-> /data/f"}, e.archive("stopped", "/data/lnk"))
	// a symlinked directory in the middle is followed inside the root
	require.Equal(t, map[string]string{"g": "two\n"}, e.archive("stopped", "/dirlink/sub/g"))
	// with a trailing slash the last link is followed, named as asked
	require.Contains(t, e.archive("stopped", "/dirlink/"), "dirlink/f")
	require.Empty(t, e.mounts(), "the stopped container's rootfs stays unmounted")

	// PUT into the stopped container, owned by its root, then seen by GET
	e.must(200, "PUT", "/containers/stopped/archive?path=/data&noOverwriteDirNonDir=true",
		makeTar(t, tarEntry{tar.TypeDir, "new", ""}, tarEntry{tar.TypeReg, "new/file", "hello"}, tarEntry{tar.TypeSymlink, "new/abs", "/tmp"}), nil)
	require.Equal(t, map[string]string{"new/": "", "new/file": "hello", "new/abs": "-> /tmp"}, e.archive("stopped", "/data/new"))
	st, data := e.do("GET", "/containers/stopped/archive?path=/data/new/file", nil)
	require.Equal(t, 200, st)
	hdr, err := tar.NewReader(bytes.NewReader(data)).Next()
	require.NoError(t, err)
	require.Equal(t, 0, hdr.Uid)
	require.Empty(t, e.mounts())

	// a running container: written through its mounted rootfs
	e.create("live", map[string]any{"Image": "busybox", "Cmd": []string{"sh", "-c", "while ! test -e /tmp/go; do sleep 0.1; done; cat /tmp/go"}})
	wait := e.request("POST", "/containers/live/wait?condition=next-exit", nil)
	e.must(204, "POST", "/containers/live/start", nil, nil)
	e.must(200, "PUT", "/containers/live/archive?path=/tmp", makeTar(t, tarEntry{tar.TypeReg, "go", "from the test\n"}), nil)
	require.Equal(t, 0, waitCode(t, wait))
	out, _ := e.logs("live", "")
	require.Equal(t, "from the test\n", out)

	// refused: the extraction point, and hostile entries; nothing written
	e.must(404, "PUT", "/containers/stopped/archive?path=/nope", makeTar(t, tarEntry{tar.TypeReg, "x", "x"}), nil)
	e.must(400, "PUT", "/containers/stopped/archive?path=/data/f", makeTar(t, tarEntry{tar.TypeReg, "x", "x"}), nil)
	e.must(400, "PUT", "/containers/stopped/archive?path=/data", []byte("not a tar"), nil)
	marker := fmt.Sprintf("escaped-%d", time.Now().UnixNano())
	hostile := map[string][]tarEntry{
		"../../../../../../../../tmp/" + marker: {{tar.TypeReg, "ok", "x"}, {tar.TypeReg, "../../../../../../../../tmp/" + marker, "x"}},
		"/tmp/" + marker:                        {{tar.TypeReg, "ok", "x"}, {tar.TypeReg, "/tmp/" + marker, "x"}},
		"evil":                                  {{tar.TypeReg, "ok", "x"}, {tar.TypeSymlink, "evil", "../../../../../../../../tmp"}, {tar.TypeReg, "evil/" + marker, "x"}},
		"hard":                                  {{tar.TypeReg, "ok", "x"}, {tar.TypeLink, "hard", "../../../../../../../../etc/passwd"}},
		"null":                                  {{tar.TypeReg, "ok", "x"}, {tar.TypeChar, "null", ""}},
		"sub":                                   {{tar.TypeReg, "ok", "x"}, {tar.TypeReg, "sub", "a file over a directory"}},
	}
	for bad, entries := range hostile {
		st, body := e.do("PUT", "/containers/stopped/archive?path=/data&noOverwriteDirNonDir=true", makeTar(t, entries...))
		require.Equal(t, 400, st, "%s: %s", bad, body)
		require.Contains(t, string(body), bad)
		st, _ = e.pathStat("stopped", "/data/ok")
		require.Equal(t, 404, st, "%s: nothing is written when an entry is refused", bad)
	}
	// an absolute symlink resolves in the container's root, not the host's
	e.must(200, "PUT", "/containers/stopped/archive?path=/data", makeTar(t,
		tarEntry{tar.TypeSymlink, "in", "/tmp"}, tarEntry{tar.TypeReg, "in/" + marker, "inside"}), nil)
	require.Equal(t, map[string]string{marker: "inside"}, e.archive("stopped", "/tmp/"+marker))
	filepath.WalkDir(e.dataRoot, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Name() == marker && !strings.Contains(p, "/upper/") {
			t.Errorf("%s written outside the container's files", p)
		}
		return nil
	})
	for _, p := range []string{"/tmp/" + marker, "/" + marker, filepath.Join(filepath.Dir(e.dataRoot), marker)} {
		_, err := os.Lstat(p)
		require.True(t, os.IsNotExist(err), "%s exists", p)
	}

	// the client: both directions, and tar on stdin and stdout
	dir := t.TempDir()
	out, code := e.cli("cp", "stopped:/data", filepath.Join(dir, "copy"))
	require.Equal(t, 0, code, out)
	b, err := os.ReadFile(filepath.Join(dir, "copy/sub/g"))
	require.NoError(t, err)
	require.Equal(t, "two\n", string(b))
	link, err := os.Readlink(filepath.Join(dir, "copy/lnk"))
	require.NoError(t, err)
	require.Equal(t, "/data/f", link)
	out, code = e.cli("cp", "stopped:/data/f", "-")
	require.Equal(t, 0, code, out)
	require.Equal(t, map[string]string{"f": "one\n"}, readTar(t, []byte(out)))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "up"), []byte("uploaded"), 0o600))
	out, code = e.cli("cp", filepath.Join(dir, "up"), "stopped:/data/renamed")
	require.Equal(t, 0, code, out)
	require.Equal(t, map[string]string{"renamed": "uploaded"}, e.archive("stopped", "/data/renamed"))
	cmd := exec.Command(binary, "-H", "unix://"+e.sock, "cp", "-", "stopped:/root")
	cmd.Stdin = bytes.NewReader(makeTar(t, tarEntry{tar.TypeReg, "stdin", "via stdin"}))
	outb, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", outb)
	require.Equal(t, map[string]string{"stdin": "via stdin"}, e.archive("stopped", "/root/stdin"))
	out, code = e.cli("cp", "stopped:/nope", dir)
	require.Equal(t, 1, code, out)
	require.Contains(t, out, "Could not find the file /nope")
	out, code = e.cli("cp", filepath.Join(dir, "copy"), "stopped:/data/f")
	require.Equal(t, 1, code, out)
	require.Contains(t, out, "cannot copy a directory")

	// the docker CLI
	if _, err := os.Stat(dockerCLI); err != nil {
		t.Logf("%s not installed: the docker CLI part is not run", dockerCLI)
		return
	}
	out, code = e.docker("cp", "stopped:/data/sub", filepath.Join(dir, "dsub"))
	require.Equal(t, 0, code, out)
	b, err = os.ReadFile(filepath.Join(dir, "dsub/g"))
	require.NoError(t, err)
	require.Equal(t, "two\n", string(b))
	out, code = e.docker("cp", filepath.Join(dir, "dsub"), "stopped:/root/")
	require.Equal(t, 0, code, out)
	require.Equal(t, map[string]string{"g": "two\n"}, e.archive("stopped", "/root/dsub/g"))
	out, code = e.docker("cp", "stopped:/nope", dir)
	require.NotEqual(t, 0, code, out)
	out, code = e.docker("diff", "stopped")
	require.Equal(t, 0, code, out)
	require.Contains(t, out, "A /root/dsub/g")
	require.Empty(t, e.mounts())
}
