package tests

import (
	"archive/tar"
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"minidock/api"
)

// Builds through the daemon (POST /build): the builder's steps are the
// engine's own containers and images. Every test runs real builds, runs
// what they made, and checks that nothing is left behind.

// buildCase is one Dockerfile of build/testdata: its directory, build
// args, target and the output its image must print.
type buildCase struct {
	name, dir string
	args      []string // KEY=VALUE
	target    string
	expect    string
}

func buildCases(t *testing.T) []buildCase {
	t.Helper()
	dirs, _ := filepath.Glob("../build/testdata/*/Dockerfile")
	require.NotEmpty(t, dirs)
	var cases []buildCase
	for _, df := range dirs {
		dir := filepath.Dir(df)
		c := buildCase{name: filepath.Base(dir), dir: filepath.Join(t.TempDir(), filepath.Base(dir))}
		// the context: the case's files, less the test's own
		if out, err := exec.Command("cp", "-a", dir, c.dir).CombinedOutput(); err != nil {
			t.Fatalf("copy %s: %v: %s", dir, err, out)
		}
		for _, f := range []string{"args", "target", "expect"} {
			os.Remove(filepath.Join(c.dir, f))
		}
		if data, err := os.ReadFile(filepath.Join(dir, "args")); err == nil {
			c.args = strings.Fields(string(data))
		}
		if data, err := os.ReadFile(filepath.Join(dir, "target")); err == nil {
			c.target = strings.TrimSpace(string(data))
		}
		data, err := os.ReadFile(filepath.Join(dir, "expect"))
		require.NoError(t, err)
		c.expect = string(data)
		cases = append(cases, c)
	}
	return cases
}

// flags are the case's build flags, for either CLI.
func (c buildCase) flags(tag string) []string {
	out := []string{"-t", tag}
	for _, a := range c.args {
		out = append(out, "--build-arg", a)
	}
	if c.target != "" {
		out = append(out, "--target", c.target)
	}
	return out
}

// dockerBuild runs the docker CLI's legacy builder against the engine.
func (e *engine) dockerBuild(args ...string) (string, int) {
	e.t.Helper()
	cmd := exec.Command(dockerCLI, append([]string{"-H", "unix://" + e.sock, "build"}, args...)...)
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+e.t.TempDir(), "DOCKER_BUILDKIT=0")
	return e.command(cmd)
}

// TestBuildTestdata builds every Dockerfile of build/testdata with
// minidock's CLI and, anew (--no-cache), with the docker CLI's legacy
// builder (DOCKER_BUILDKIT=0 docker build), and runs each image with the
// CLI that built it: its output must be the case's expect file.
func TestBuildTestdata(t *testing.T) {
	e := newEngine(t)
	e.importBusybox("busybox:latest")
	withDocker := true
	if _, err := os.Stat(dockerCLI); err != nil {
		t.Logf("%s not installed: only minidock's CLI builds", dockerCLI)
		withDocker = false
	}
	for _, c := range buildCases(t) {
		t.Run(c.name, func(t *testing.T) {
			tag := "case-" + c.name
			out, code := e.cli(append(append([]string{"build"}, c.flags(tag)...), c.dir)...)
			require.Equal(t, 0, code, "minidock build: %s", out)
			require.Contains(t, out, "Successfully tagged "+tag+":latest")
			run, code := e.cli("run", "--rm", "--network", "none", tag)
			require.Equal(t, 0, code, run)
			require.Equal(t, c.expect, run, "minidock run %s; the build said:\n%s", tag, out)
			if !withDocker {
				return
			}
			dtag := "docker-" + c.name
			out, code = e.dockerBuild(append(append([]string{"--no-cache"}, c.flags(dtag)...), c.dir)...)
			require.Equal(t, 0, code, "docker build: %s", out)
			require.NotContains(t, out, "Using cache")
			run, code = e.docker("run", "--rm", "--network", "none", dtag)
			require.Equal(t, 0, code, run)
			require.Equal(t, c.expect, run, "docker run %s; the build said:\n%s", dtag, out)
		})
	}
	e.requireNoBuildLeftovers()
}

// requireNoBuildLeftovers checks that no build left anything in the
// daemon: no container (step containers are removed), no mount, no
// address or veth of the default network, no unpacked context, and no
// layer that no image uses.
func (e *engine) requireNoBuildLeftovers() {
	t := e.t
	t.Helper()
	var ctrs []api.ContainerSummary
	e.must(200, "GET", "/containers/json?all=1", nil, &ctrs)
	require.Empty(t, ctrs, "containers left")
	require.Empty(t, e.mounts(), "mounts left")
	ents, _ := os.ReadDir(filepath.Join(e.dataRoot, "containers"))
	require.Empty(t, ents, "container directories left")
	ents, _ = os.ReadDir(filepath.Join(e.dataRoot, "build"))
	require.Empty(t, ents, "build contexts left")
	ents, _ = os.ReadDir(filepath.Join(e.dataRoot, "image", "rootfs"))
	require.Empty(t, ents, "rootfs records left")
	ipams, _ := filepath.Glob(filepath.Join(e.dataRoot, "network", "ipam", "*.json"))
	for _, f := range ipams {
		var pool struct{ Allocated map[string]any }
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal(data, &pool))
		require.Empty(t, pool.Allocated, "addresses left allocated in %s", f)
	}
	for name := range hostLinks() {
		if !e.linksBefore[name] && daemonLink(name, e.bridge) && name != e.bridge {
			t.Errorf("veth left: %s", name)
		}
	}
	// every unpacked layer belongs to an image
	var imgs []api.ImageSummary
	e.must(200, "GET", "/images/json?all=1", nil, &imgs)
	chains := map[string]bool{}
	for _, im := range imgs {
		var ins api.ImageInspect
		e.must(200, "GET", "/images/"+im.ID+"/json", nil, &ins)
		prev := ""
		for i, l := range ins.RootFS.Layers {
			chain := l
			if i > 0 {
				chain = digestOf(prev + " " + l)
			}
			chains[strings.TrimPrefix(chain, "sha256:")] = true
			prev = chain
		}
	}
	layers, _ := filepath.Glob(filepath.Join(e.dataRoot, "overlay", "*", "layer.json"))
	for _, l := range layers {
		if hex := filepath.Base(filepath.Dir(l)); !chains[hex] {
			t.Errorf("layer %s belongs to no image", hex)
		}
	}
}

// TestBuildImagesHistoryRmi: a build's step images form a parent chain,
// as Docker's classic builder makes them: `images` hides them (no <none>
// clutter), `images -a` shows them, `history` gives one row per
// instruction with its step's image, created_by and size (0 B for a
// config-only step), and `rmi` of the built image removes the steps'
// images with it, up to the base, which stays.
func TestBuildImagesHistoryRmi(t *testing.T) {
	e := newEngine(t)
	busybox := e.importBusybox("busybox:latest")
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"Dockerfile": "FROM busybox\nENV GREETING=hi\nCOPY data.txt /data.txt\nRUN echo made > /made\nCMD [\"cat\", \"/made\"]\n",
		"data.txt":   strings.Repeat("x", 5000),
	})
	out := e.mustCLI("build", "-t", "chain:1", dir)
	ids := stepIDs(out)
	require.Len(t, ids, 5, out) // FROM's base, then one per instruction
	require.Equal(t, busybox[7:19], ids[0])

	out = e.mustCLI("images")
	require.NotContains(t, out, "<none>", "intermediate images shown without -a")
	require.Contains(t, out, "chain")
	out = e.mustCLI("images", "-a")
	require.Equal(t, 3, strings.Count(out, "<none>       <none>"), out)

	// history: newest first, each row its step's image
	var hist []api.ImageHistoryItem
	e.must(200, "GET", "/images/chain:1/history", nil, &hist)
	require.Len(t, hist, 5, "%+v", hist)
	for i, want := range []struct {
		createdBy string
		layer     bool
	}{
		{`/bin/sh -c #(nop)  CMD ["cat" "/made"]`, false},
		{"/bin/sh -c echo made > /made", true},
		{"/bin/sh -c #(nop) COPY file:", true},
		{"/bin/sh -c #(nop)  ENV GREETING=hi", false},
		{"minidock import", true},
	} {
		require.True(t, strings.HasPrefix(hist[i].CreatedBy, want.createdBy), "row %d: %q", i, hist[i].CreatedBy)
		require.Equal(t, ids[len(ids)-1-i], strings.TrimPrefix(hist[i].ID, "sha256:")[:12], "row %d", i)
		require.Equal(t, want.layer, hist[i].Size > 0, "row %d size %d", i, hist[i].Size)
	}
	require.Equal(t, int64(5000), hist[2].Size)
	require.Equal(t, []string{"chain:1"}, hist[0].Tags)
	require.Equal(t, []string{"busybox:latest"}, hist[4].Tags)
	out = e.mustCLI("history", "chain:1")
	require.Equal(t, 6, len(strings.Split(strings.TrimSpace(out), "\n")), out)
	require.NotContains(t, out, "<missing>")
	if _, err := os.Stat(dockerCLI); err == nil {
		out, code := e.docker("history", "chain:1")
		require.Equal(t, 0, code, out)
		require.Contains(t, out, ids[3]) // the RUN step's image
		require.Contains(t, out, "5kB")
	}

	// an intermediate image cannot be removed by ID: its child needs it
	st, body := e.do("DELETE", "/images/"+ids[2], nil)
	require.Equal(t, 409, st, "%s", body)
	require.Contains(t, string(body), "dependent child images")
	// a second build's step shares the chain: rmi of the first keeps it
	writeFiles(t, dir, map[string]string{"Dockerfile": "FROM busybox\nENV GREETING=hi\nLABEL other=1\n"})
	out = e.mustCLI("build", "-t", "chain:2", dir)
	require.Contains(t, out, "Using cache")
	out = e.mustCLI("rmi", "chain:1")
	require.Contains(t, out, "Untagged: chain:1")
	for _, id := range ids[2:] { // its image (CMD's), RUN's, COPY's, then their layers
		require.Contains(t, out, "Deleted: sha256:"+id, out)
	}
	require.NotContains(t, out, "Deleted: sha256:"+ids[1], out)        // ENV's: chain:2 needs it
	require.Equal(t, 3+2, strings.Count(out, "Deleted: sha256:"), out) // 3 images, 2 layers
	out = e.mustCLI("images", "-a")
	require.Equal(t, 1, strings.Count(out, "<none>       <none>"), out) // ENV's, chain:2's parent
	out = e.mustCLI("rmi", "chain:2")
	require.Equal(t, 2, strings.Count(out, "Deleted: sha256:"), out)
	out = e.mustCLI("images", "-a", "-q")
	require.Equal(t, busybox[7:19]+"\n", out)
	e.requireNoBuildLeftovers()
}

// digestOf is the sha256 digest of s.
func digestOf(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// stepIDs reads the image IDs a build printed (" ---> ID"), one per step.
func stepIDs(out string) []string {
	var ids []string
	for _, l := range strings.Split(out, "\n") {
		if id, ok := strings.CutPrefix(l, " ---> "); ok && !strings.Contains(id, " ") {
			ids = append(ids, id)
		}
	}
	return ids
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, name)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(body), 0o644))
	}
}

// TestBuildCacheAcrossRestart: the build cache lives in the image store:
// after the daemon is killed (SIGKILL) and started again, a rebuild with
// nothing changed takes every step from the cache and makes no
// container; changing one copied file invalidates its step and those
// after it.
func TestBuildCacheAcrossRestart(t *testing.T) {
	e := newEngine(t)
	e.importBusybox("busybox:latest")
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"Dockerfile": "FROM busybox\nCOPY a.txt /a.txt\nRUN cat /a.txt > /b.txt\nCOPY c.txt /c.txt\nRUN cat /c.txt >> /b.txt\nCMD [\"cat\", \"/b.txt\"]\n",
		"a.txt":      "a\n", "c.txt": "c\n",
	})
	first := e.mustCLI("build", "-t", "cached", dir)
	require.Equal(t, 2, strings.Count(first, "Running in"), first)
	e.killDaemon()
	e.start()
	since := time.Now().Add(-time.Second).Unix()
	again := e.mustCLI("build", "-t", "cached", dir)
	require.Equal(t, 5, strings.Count(again, "Using cache"), again)
	require.NotContains(t, again, "Running in")
	require.Equal(t, lastID(first), lastID(again))
	// no container was made: the events since the restart have none
	resp := e.request("GET", fmt.Sprintf("/events?since=%d&until=%d", since, time.Now().Unix()+1), nil)
	var events []api.EventMessage
	dec := json.NewDecoder(resp.Body)
	for {
		var m api.EventMessage
		if dec.Decode(&m) != nil {
			break
		}
		events = append(events, m)
	}
	resp.Body.Close()
	for _, ev := range events {
		require.NotEqual(t, "container", ev.Type, "a cached rebuild made a container: %+v", ev)
	}
	require.Equal(t, "a\nc\n", e.mustCLI("run", "--rm", "--network", "none", "cached"))

	// c.txt changes: the steps before its COPY stay cached, it and the
	// ones after run anew
	writeFiles(t, dir, map[string]string{"c.txt": "C\n"})
	changed := e.mustCLI("build", "-t", "cached", dir)
	require.Equal(t, 2, strings.Count(changed, "Using cache"), changed)
	require.Equal(t, 1, strings.Count(changed, "Running in"), changed)
	require.Equal(t, "a\nC\n", e.mustCLI("run", "--rm", "--network", "none", "cached"))
	// --no-cache runs everything
	nocache := e.mustCLI("build", "--no-cache", "-t", "cached", dir)
	require.NotContains(t, nocache, "Using cache")
	require.Equal(t, 2, strings.Count(nocache, "Running in"), nocache)
	e.requireNoBuildLeftovers()
}

// lastID is the final image ID a build printed.
func lastID(out string) string {
	for _, l := range strings.Split(out, "\n") {
		if id, ok := strings.CutPrefix(l, "Successfully built "); ok {
			return id
		}
	}
	return ""
}

// TestBuildFailedRun: a RUN that fails stops the build with its exit
// code (minidock's CLI and docker's exit with it) and its output, and
// leaves nothing: no container, mount, address, veth or layer; only the
// images of the steps that succeeded stay, as cache.
func TestBuildFailedRun(t *testing.T) {
	e := newEngine(t)
	e.importBusybox("busybox:latest")
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"Dockerfile": "FROM busybox\nRUN echo ok > /ok\nRUN echo to-stdout; echo to-stderr >&2; echo partial > /partial; exit 7\nCMD [\"true\"]\n",
	})
	before := len(e.imagesAll())
	out, code := e.cli("build", "-t", "failed", dir)
	require.Equal(t, 7, code, out)
	require.Contains(t, out, "to-stdout\n")
	require.Contains(t, out, "to-stderr\n")
	require.Contains(t, out, "Dockerfile line 3: RUN: the command '/bin/sh -c echo to-stdout; echo to-stderr >&2; echo partial > /partial; exit 7' returned a non-zero code: 7")
	require.NotContains(t, out, "Step 4/4")
	require.Len(t, e.imagesAll(), before+1, "only the first RUN's image stays")
	e.must(404, "GET", "/images/failed/json", nil, nil)
	e.requireNoBuildLeftovers()
	if _, err := os.Stat(dockerCLI); err == nil {
		out, code = e.dockerBuild("-t", "failed", dir)
		require.Equal(t, 7, code, out)
		require.Contains(t, out, "returned a non-zero code: 7")
		require.Contains(t, out, "Using cache") // the first RUN
		e.requireNoBuildLeftovers()
	}
	// a program that cannot be started: an error, nothing left either
	writeFiles(t, dir, map[string]string{"Dockerfile": "FROM busybox\nRUN [\"/no/such/program\"]\n"})
	out, code = e.cli("build", dir)
	require.NotEqual(t, 0, code, out)
	require.Contains(t, out, "/no/such/program")
	e.requireNoBuildLeftovers()
}

func (e *engine) imagesAll() []api.ImageSummary {
	var imgs []api.ImageSummary
	e.must(200, "GET", "/images/json?all=1", nil, &imgs)
	return imgs
}

// TestBuildCancelled: a client that hangs up while a RUN runs cancels
// the build: the step's process is killed and its container removed.
func TestBuildCancelled(t *testing.T) {
	e := newEngine(t)
	e.importBusybox("busybox:latest")
	ctxTar := tarOf(t, map[string]string{"Dockerfile": "FROM busybox\nRUN echo started; sleep 300\nRUN true\n"})
	conn, err := net.Dial("unix", e.sock)
	require.NoError(t, err)
	defer conn.Close()
	fmt.Fprintf(conn, "POST /v1.41/build?t=cancelled HTTP/1.1\r\nHost: d\r\nContent-Type: application/x-tar\r\nContent-Length: %d\r\n\r\n", len(ctxTar))
	conn.Write(ctxTar)
	br := bufio.NewReader(conn)
	for deadline := time.Now().Add(30 * time.Second); ; {
		conn.SetReadDeadline(deadline)
		line, err := br.ReadString('\n')
		require.NoError(t, err, "the build never started its RUN")
		if strings.Contains(line, `"stream":"started\n"`) { // the RUN's output, not its step line
			break
		}
	}
	var ctrs []api.ContainerSummary
	e.must(200, "GET", "/containers/json", nil, &ctrs)
	require.Len(t, ctrs, 1, "the step's container runs")
	pid := e.inspect(ctrs[0].ID).State.Pid
	conn.Close()
	require.Eventually(t, func() bool {
		var left []api.ContainerSummary
		e.must(200, "GET", "/containers/json?all=1", nil, &left)
		return len(left) == 0
	}, 20*time.Second, 50*time.Millisecond, "the step's container is still there")
	require.True(t, processGone(pid), "the step's process %d still runs", pid)
	e.must(404, "GET", "/images/cancelled/json", nil, nil)
	e.requireNoBuildLeftovers()
}

// tarOf makes a context tar of files (name -> content; "->x" a symlink
// to x).
func tarOf(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		body := files[n]
		if target, ok := strings.CutPrefix(body, "->"); ok {
			require.NoError(t, tw.WriteHeader(&tar.Header{Name: n, Typeflag: tar.TypeSymlink, Linkname: target, Mode: 0o777}))
			continue
		}
		require.NoError(t, tw.WriteHeader(&tar.Header{Name: n, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body))}))
		tw.Write([]byte(body))
	}
	require.NoError(t, tw.Close())
	return buf.Bytes()
}

// TestBuildNetworkAndURL: ADD of a URL the test serves on 127.0.0.1, and
// RUN's network: with --network host a RUN reaches that server; on the
// default network (its own namespace, its own loopback) it does not.
func TestBuildNetworkAndURL(t *testing.T) {
	e := newEngine(t)
	e.importBusybox("busybox:latest")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Last-Modified", "Mon, 02 Jan 2006 15:04:05 GMT")
		fmt.Fprintf(w, "served %s\n", r.URL.Path)
	})}
	go srv.Serve(ln)
	defer srv.Close()
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	dir := t.TempDir()
	probe := `printf 'GET /by-run HTTP/1.0\r\n\r\n' | nc -w 2 127.0.0.1 ` + port + ` > /fetched 2>&1 || echo unreachable >> /fetched`
	writeFiles(t, dir, map[string]string{
		"Dockerfile": "FROM busybox\nADD http://127.0.0.1:" + port + "/by-add /added.txt\nRUN " + probe + "\nCMD [\"sh\", \"-c\", \"cat /added.txt; grep -o 'served /by-run' /fetched || cat /fetched\"]\n",
	})
	out, code := e.cli("build", "--network", "host", "-t", "hostnet", dir)
	require.Equal(t, 0, code, out)
	require.Equal(t, "served /by-add\nserved /by-run\n", e.mustCLI("run", "--rm", "--network", "none", "hostnet"))
	// the cache key is the instruction, not the network: --no-cache
	out, code = e.cli("build", "--no-cache", "-t", "defaultnet", dir)
	require.Equal(t, 0, code, out)
	got := e.mustCLI("run", "--rm", "--network", "none", "defaultnet")
	require.True(t, strings.HasPrefix(got, "served /by-add\n"), got)
	require.NotContains(t, got, "served /by-run")
	require.Contains(t, got, "unreachable")
	// an unknown network is refused before anything is built
	st, body := e.do("POST", "/build?networkmode=nosuch", tarOf(t, map[string]string{"Dockerfile": "FROM busybox\n"}))
	require.Equal(t, 400, st, "%s", body)
	require.Contains(t, string(body), "nosuch")
	e.requireNoBuildLeftovers()
}

// buildStream posts a build and returns its stream's text and the error
// message it ended with ("" for none).
func (e *engine) buildStream(query string, ctxTar []byte) (string, string) {
	e.t.Helper()
	st, body := e.do("POST", "/build?"+query, ctxTar)
	require.Equal(e.t, 200, st, "%s", body)
	var text strings.Builder
	errMsg := ""
	dec := json.NewDecoder(bytes.NewReader(body))
	for {
		var m api.BuildMessage
		if dec.Decode(&m) != nil {
			break
		}
		text.WriteString(m.Stream)
		if m.ErrorDetail != nil {
			errMsg = m.ErrorDetail.Message
		}
	}
	return text.String(), errMsg
}

// TestBuildBadInput sends bad builds through the API: each ends with a
// clear error naming the problem (and its Dockerfile line), and leaves
// nothing: no container, no image, no layer, no unpacked context.
func TestBuildBadInput(t *testing.T) {
	e := newEngine(t)
	e.importBusybox("busybox:latest")
	images := len(e.imagesAll())
	huge := "FROM busybox\n# " + strings.Repeat("x", 10<<20) + "\n"
	for _, c := range []struct {
		name  string
		files map[string]string
		want  []string
	}{
		{"unknown instruction", map[string]string{"Dockerfile": "FROM busybox\nRUN true\nFETCH x\n"},
			[]string{"Dockerfile line 3", `unknown instruction "FETCH"`}},
		{"missing COPY source", map[string]string{"Dockerfile": "FROM busybox\nCOPY nosuch.txt /x\n"},
			[]string{"Dockerfile line 2", "nosuch.txt"}},
		{"COPY ../x", map[string]string{"Dockerfile": "FROM busybox\nCOPY ../x /x\n"},
			[]string{"Dockerfile line 2", "../x"}},
		{"COPY through a symlink out", map[string]string{"Dockerfile": "FROM busybox\nCOPY out/passwd /x\n", "out": "->/etc"},
			[]string{"Dockerfile line 2", "out/passwd"}},
		{"FROM an unknown image", map[string]string{"Dockerfile": "FROM nosuch/image:1\nRUN true\n"},
			[]string{"Dockerfile line 1", "nosuch/image:1", "pull"}},
		{"ARG used before it is declared", map[string]string{"Dockerfile": "FROM busybox\nRUN echo $LATER\nARG LATER=1\n"},
			[]string{"Dockerfile line 2", "LATER"}},
		{"Dockerfile over 10 MiB", map[string]string{"Dockerfile": huge},
			[]string{"Dockerfile", "10 MiB"}},
		{"hostile context tar", map[string]string{"Dockerfile": "FROM busybox\n", "../escaped": "x"},
			[]string{"build context", "../escaped"}},
		{"hostile symlink in the context", map[string]string{"Dockerfile": "FROM busybox\n", "up": "->../../../../etc"},
			[]string{"build context", "up"}},
	} {
		text, msg := e.buildStream("t=bad", tarOf(t, c.files))
		require.NotEmpty(t, msg, "%s: no error; the build said:\n%s", c.name, text)
		for _, w := range c.want {
			require.Contains(t, msg, w, c.name)
		}
		e.must(404, "GET", "/images/bad/json", nil, nil)
		require.Len(t, e.imagesAll(), images, "%s: an image was made", c.name)
		e.requireNoBuildLeftovers()
	}
	_, err := os.Stat(filepath.Join(e.dataRoot, "escaped"))
	require.True(t, os.IsNotExist(err), "the hostile entry was written")

	// parameters: supported ones at their zero value are fine, others
	// are a 400 naming them
	ok := tarOf(t, map[string]string{"Dockerfile": "FROM busybox\n"})
	_, msg := e.buildStream("cpusetcpus=&memory=0&shmsize=0&ulimits=null&cachefrom=%5B%5D&rm=1&forcerm=1&version=1", ok)
	require.Empty(t, msg)
	for q, want := range map[string]string{
		"memory=67108864": "memory", "version=2": "BuildKit", "bogus=1": "bogus: unknown parameter",
		"nocache=maybe": "nocache", "buildargs=" + url.QueryEscape("[1]"): "buildargs", "platform=linux/arm64": "linux/arm64",
		"cachefrom=" + url.QueryEscape(`["x"]`): "cachefrom",
	} {
		st, body := e.do("POST", "/build?"+q, ok)
		if strings.HasPrefix(q, "platform") { // known only once the build runs: in the stream
			require.Equal(t, 200, st)
			require.Contains(t, string(body), want)
			continue
		}
		require.Equal(t, 400, st, "%s: %s", q, body)
		require.Contains(t, string(body), want, q)
	}
	// the classic builder, not BuildKit
	resp := e.request("GET", "/_ping", nil)
	resp.Body.Close()
	require.NotEqual(t, "2", resp.Header.Get("Builder-Version"))
	e.requireNoBuildLeftovers()
}

// TestBuildStdin: `minidock build -` reads a Dockerfile (no context) or
// a context tar from stdin; `-f -` the Dockerfile alone, with PATH as the
// context; -q prints only the ID; -f may name a file outside the context.
func TestBuildStdin(t *testing.T) {
	e := newEngine(t)
	e.importBusybox("busybox:latest")
	run := func(stdin []byte, args ...string) string {
		cmd := exec.Command(binary, append([]string{"-H", "unix://" + e.sock, "build"}, args...)...)
		cmd.Stdin = bytes.NewReader(stdin)
		out, code := e.command(cmd)
		require.Equal(t, 0, code, out)
		return out
	}
	run([]byte("FROM busybox\nCMD [\"echo\", \"from stdin\"]\n"), "-t", "stdin1", "-")
	require.Equal(t, "from stdin\n", e.mustCLI("run", "--rm", "--network", "none", "stdin1"))
	run(tarOf(t, map[string]string{"Dockerfile": "FROM busybox\nCOPY f /f\nCMD [\"cat\", \"/f\"]\n", "f": "from a tar\n"}), "-t", "stdin2", "-")
	require.Equal(t, "from a tar\n", e.mustCLI("run", "--rm", "--network", "none", "stdin2"))
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"f": "from the context\n"})
	out := run([]byte("FROM busybox\nCOPY f /f\nCMD [\"cat\", \"/f\"]\n"), "-q", "-t", "stdin3", "-f", "-", dir)
	require.Regexp(t, `^sha256:[0-9a-f]{64}\n$`, out)
	require.Equal(t, "from the context\n", e.mustCLI("run", "--rm", "--network", "none", "stdin3"))
	elsewhere := filepath.Join(t.TempDir(), "Other.dockerfile")
	require.NoError(t, os.WriteFile(elsewhere, []byte("FROM busybox\nCOPY f /g\nCMD [\"cat\", \"/g\"]\n"), 0o644))
	run(nil, "-t", "stdin4", "-f", elsewhere, dir)
	require.Equal(t, "from the context\n", e.mustCLI("run", "--rm", "--network", "none", "stdin4"))
	e.requireNoBuildLeftovers()
}

// TestBuildRunsUnderDockerd: images minidock built are saved (`minidock
// save`), loaded into Debian's dockerd (`docker load`) and run there with
// the output they give under minidock: layers, whiteouts, users and
// configs mean the same to an engine we did not write.
func TestBuildRunsUnderDockerd(t *testing.T) {
	if _, err := os.Stat("/usr/sbin/dockerd"); err != nil {
		t.Skip("/usr/sbin/dockerd not installed (apt-get install docker.io)")
	}
	e := newEngine(t)
	e.importBusybox("busybox:latest")
	var tags []string
	want := map[string]string{}
	for _, c := range buildCases(t) {
		switch c.name {
		case "whiteout", "user", "entrypoint-cmd", "chown", "workdir", "scratch", "args-stages":
		default:
			continue
		}
		tag := "interop-" + c.name
		e.mustCLI(append(append([]string{"build"}, c.flags(tag)...), c.dir)...)
		tags, want[tag] = append(tags, tag), c.expect
	}
	archive := filepath.Join(t.TempDir(), "built.tar")
	e.mustCLI(append([]string{"save", "-o", archive}, tags...)...)
	dk := startBenchDocker(t) // private socket, roots, no bridge; stopped and cleaned after
	out, err := dk.cli("load", "-i", archive)
	require.NoError(t, err, "%s", out)
	for _, tag := range tags {
		out, err := dk.cli("run", "--rm", "--network", "none", tag)
		require.NoError(t, err, "dockerd: run %s", tag)
		require.Equal(t, want[tag], string(out), "dockerd: run %s", tag)
	}
}
