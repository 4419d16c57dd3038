package tests

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/crypto/bcrypt"

	"minidock/api"
	"minidock/internal/peers"
	"minidock/internal/testimage"
	"minidock/registry/server"
)

// Registries through the daemon: pulls, pushes and logins of the docker 28
// CLI and of minidock's own, against real registries on 127.0.0.1
// started here (Debian's docker-registry, minidock's `registry serve`, a
// token server in front of minidock's server), and a TLS one on an
// address of a dummy link the test makes. docs/registry.md, "Through the
// daemon".

// registryServe runs `minidock registry serve` on addr (a free loopback
// port when ""), with a root of its own and extra flags; it returns the
// address and stops the server by pid when the test ends.
func registryServe(t *testing.T, addr string, args ...string) string {
	t.Helper()
	if addr == "" {
		addr = peers.FreeAddr(t)
	}
	logPath := filepath.Join(t.TempDir(), "registry.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(binary, append([]string{"registry", "serve", "--addr", addr, "--root", t.TempDir(), "--quiet"}, args...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logPath)
			t.Fatalf("registry serve on %s did not listen:\n%s", addr, log)
		}
	}
}

// dockerConfig is a docker CLI whose config.json (credentials) stays
// between commands, against the engine.
type dockerConfig struct {
	e   *engine
	dir string
}

func (e *engine) dockerWithConfig() *dockerConfig {
	return &dockerConfig{e: e, dir: e.t.TempDir()}
}

// run runs the docker CLI with stdin in; output and exit code.
func (d *dockerConfig) run(in string, args ...string) (string, int) {
	d.e.t.Helper()
	cmd := exec.Command(dockerCLI, append([]string{"-H", "unix://" + d.e.sock}, args...)...)
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+d.dir)
	cmd.Stdin = strings.NewReader(in)
	return d.e.command(cmd)
}

func (d *dockerConfig) must(args ...string) string {
	d.e.t.Helper()
	out, code := d.run("", args...)
	if code != 0 {
		d.e.t.Fatalf("docker %s: exit %d: %s", strings.Join(args, " "), code, out)
	}
	return out
}

// minidockWithConfig runs minidock's CLI with DOCKER_CONFIG=dir.
func (e *engine) minidockWithConfig(dir, in string, args ...string) (string, int) {
	e.t.Helper()
	cmd := exec.Command(binary, append([]string{"-H", "unix://" + e.sock}, args...)...)
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+dir)
	cmd.Stdin = strings.NewReader(in)
	return e.command(cmd)
}

// storeState lists every file under the engine's image store and layers
// with its size, to show that a failed pull changed nothing.
func (e *engine) storeState() []string {
	var out []string
	for _, dir := range []string{"image", "overlay"} {
		root := filepath.Join(e.dataRoot, dir)
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			info, _ := d.Info()
			size := int64(0)
			if info != nil && info.Mode().IsRegular() {
				size = info.Size()
			}
			out = append(out, fmt.Sprintf("%s %d", strings.TrimPrefix(p, e.dataRoot), size))
			return nil
		})
	}
	sort.Strings(out)
	return out
}

// layerDirs counts the unpacked layers of the engine's store.
func (e *engine) layerDirs() int {
	m, _ := filepath.Glob(filepath.Join(e.dataRoot, "overlay", "*", "layer.json"))
	return len(m)
}

// pullRaw sends POST /images/create?QUERY with an X-Registry-Auth header
// (none when auth is nil) and returns the status, and the messages of a
// 200 stream or the error message of another status.
func (e *engine) pullRaw(query string, auth *api.AuthConfig) (int, []api.JSONMessage, string) {
	e.t.Helper()
	return e.streamRaw("POST", "/images/create?"+query, auth)
}

func (e *engine) streamRaw(method, path string, auth *api.AuthConfig) (int, []api.JSONMessage, string) {
	e.t.Helper()
	req, err := http.NewRequest(method, "http://d/v1.47"+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	if auth != nil {
		req.Header.Set(api.AuthHeader, api.EncodeAuth(*auth))
	}
	resp, err := e.http.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var er api.ErrorResponse
		b, _ := io.ReadAll(resp.Body)
		json.Unmarshal(b, &er)
		return resp.StatusCode, nil, er.Message
	}
	var msgs []api.JSONMessage
	dec := json.NewDecoder(resp.Body)
	for {
		var m api.JSONMessage
		if err := dec.Decode(&m); err == io.EOF {
			break
		} else if err != nil {
			e.t.Fatalf("%s %s: stream: %v", method, path, err)
		}
		msgs = append(msgs, m)
	}
	last := ""
	if n := len(msgs); n > 0 && msgs[n-1].ErrorDetail != nil {
		last = msgs[n-1].ErrorDetail.Message
	}
	return resp.StatusCode, msgs, last
}

func requireSkopeo(t *testing.T) {
	if _, err := exec.LookPath("skopeo"); err != nil {
		t.Skip("skopeo not installed")
	}
}

func skopeo(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("skopeo", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("skopeo %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestEngineRegistryDockerRegistry: Debian's docker-registry as the
// reference server, all through the daemon. skopeo copies a 3-layer image
// (busybox, two data layers, a whiteout) from a docker-archive the test
// writes; `minidock pull` gets it, `minidock run` runs it (every layer's
// file there, the whited-out one gone), images and inspect show its repo
// digest. An image sharing those layers pulls only its own. minidock
// pushes it to another repository (layers mounted) and an image of its
// own; skopeo reads the latter, and the docker CLI pulls and runs it back.
func TestEngineRegistryDockerRegistry(t *testing.T) {
	requireSkopeo(t)
	requireDockerCLI(t)
	reg := peers.StartDockerRegistry(t)
	e := newEngine(t)

	ti := testimage.WithBusybox(t, 71)
	arch := filepath.Join(t.TempDir(), "multi.tar")
	if err := os.WriteFile(arch, testimage.DockerArchive(t, "multi:1", ti), 0o644); err != nil {
		t.Fatal(err)
	}
	skopeo(t, "copy", "--quiet", "--dest-tls-verify=false", "docker-archive:"+arch, "docker://"+reg.Addr+"/team/multi:1")

	ref := reg.Addr + "/team/multi:1"
	out := e.mustCLI("pull", ref)
	for _, want := range []string{"1: Pulling from team/multi", "Pull complete", "Digest: sha256:", "Status: Downloaded newer image for " + ref} {
		if !strings.Contains(out, want) {
			t.Errorf("minidock pull: no %q in:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "Pull complete"); n != 3 {
		t.Errorf("minidock pull: %d layers complete, want 3:\n%s", n, out)
	}
	layers := e.layerDirs()
	out = e.mustCLI("run", "--rm", "--network", "none", ref, "sh", "-c", "wc -c < /layer0/data; wc -c < /layer1/data; ls /etc/motd 2>&1; true")
	if f := strings.Fields(out); len(f) < 2 || f[0] != "262144" || f[1] != "262144" || !strings.Contains(out, "No such file") {
		t.Errorf("run of the pulled image: %q, want both layers' 262144 bytes and /etc/motd whited out", out)
	}

	// The repo digest is what the registry calls the manifest.
	digest := strings.TrimSpace(skopeo(t, "inspect", "--tls-verify=false", "--format", "{{.Digest}}", "docker://"+ref))
	if got := e.mustCLI("image", "inspect", "--format", "{{json .RepoDigests}}", ref); strings.TrimSpace(got) != `["`+reg.Addr+`/team/multi@`+digest+`"]` {
		t.Errorf("RepoDigests %s, want %s@%s", got, reg.Addr+"/team/multi", digest)
	}
	if got := e.mustCLI("images", "--digests"); !strings.Contains(got, digest) {
		t.Errorf("images --digests lacks %s:\n%s", digest, got)
	}

	// An image with one more layer: only that one is downloaded.
	more := ti.WithLayer(t, map[string][]byte{"more/": nil, "more/file": []byte("more\n")})
	arch2 := filepath.Join(t.TempDir(), "more.tar")
	os.WriteFile(arch2, testimage.DockerArchive(t, "more:1", more), 0o644)
	skopeo(t, "copy", "--quiet", "--dest-tls-verify=false", "docker-archive:"+arch2, "docker://"+reg.Addr+"/team/more:1")
	out = e.mustCLI("pull", reg.Addr+"/team/more:1")
	if strings.Count(out, "Already exists") != 3 || strings.Count(out, "Pull complete") != 1 {
		t.Errorf("pull of an image sharing 3 layers:\n%s", out)
	}
	if got := e.layerDirs(); got != layers+1 {
		t.Errorf("%d unpacked layers after pulling one new layer, want %d (shared ones kept once)", got, layers+1)
	}

	// Push: to another repository of the same registry (layers mounted,
	// same digest), and an image minidock imported.
	e.mustCLI("tag", ref, reg.Addr+"/team/copy:1")
	out = e.mustCLI("push", reg.Addr+"/team/copy:1")
	if strings.Count(out, "Mounted from team/multi") != 3 || !strings.Contains(out, "1: digest: "+digest) {
		t.Errorf("push to another repository:\n%s", out)
	}
	e.importBusybox("bbown:1")
	own := reg.Addr + "/own/bb:1"
	e.mustCLI("tag", "bbown:1", own)
	if out = e.mustCLI("push", own); !strings.Contains(out, "Pushed") {
		t.Errorf("push of an imported image:\n%s", out)
	}
	if got := skopeo(t, "inspect", "--tls-verify=false", "--format", "{{len .Layers}} {{.Os}}", "docker://"+own); strings.TrimSpace(got) != "1 linux" {
		t.Errorf("skopeo inspect of what minidock pushed: %q", got)
	}
	// The docker CLI through the daemon: pull it back and run it.
	d := e.dockerWithConfig()
	d.must("rmi", own)
	out = d.must("pull", own)
	if !strings.Contains(out, "Downloaded newer image for "+own) {
		t.Errorf("docker pull:\n%s", out)
	}
	if out = d.must("run", "--rm", "--network", "none", own, "echo", "pulled-back"); strings.TrimSpace(out) != "pulled-back" {
		t.Errorf("docker run of the pulled image: %q", out)
	}
}

// TestEngineRegistryOwnServer: minidock's `registry serve` as a process;
// the docker CLI pushes an imported image through the daemon, removes it,
// and `docker run` of the missing image pulls it (404 on create, pull,
// create again) and runs it; `docker pull` of what is there is "up to
// date"; `minidock run` pulls a missing image too, and obeys --pull; a
// push of every tag (-a).
func TestEngineRegistryOwnServer(t *testing.T) {
	requireDockerCLI(t)
	addr := registryServe(t, "")
	e := newEngine(t)
	d := e.dockerWithConfig()
	e.importBusybox("bb:1")
	ref := addr + "/team/bb:1"
	d.must("tag", "bb:1", ref)
	out := d.must("push", ref)
	if !strings.Contains(out, "The push refers to repository ["+addr+"/team/bb]") || !strings.Contains(out, ": Pushed") || !strings.Contains(out, "1: digest: sha256:") {
		t.Errorf("docker push:\n%s", out)
	}
	d.must("rmi", ref, "bb:1")
	out, code := d.run("", "run", "--rm", "--network", "none", ref, "echo", "pulled-and-ran")
	if code != 0 || !strings.Contains(out, "Unable to find image '"+ref+"' locally") ||
		!strings.Contains(out, "Pull complete") || !strings.HasSuffix(strings.TrimSpace(out), "pulled-and-ran") {
		t.Errorf("docker run of a missing image: exit %d:\n%s", code, out)
	}
	if out = d.must("pull", ref); !strings.Contains(out, "Status: Image is up to date for "+ref) {
		t.Errorf("second pull:\n%s", out)
	}
	// minidock run: a missing image is pulled (--pull missing, the
	// default); never refuses; always pulls.
	e.mustCLI("rmi", ref)
	if out, code := e.cli("run", "--rm", "--network", "none", ref, "echo", "minidock-pulled"); code != 0 ||
		!strings.Contains(out, "Unable to find image '"+ref+"' locally") || !strings.HasSuffix(strings.TrimSpace(out), "minidock-pulled") {
		t.Errorf("minidock run of a missing image: exit %d:\n%s", code, out)
	}
	if out, code := e.cli("run", "--rm", "--pull", "never", "--network", "none", addr+"/team/none:1", "true"); code != 125 || !strings.Contains(out, "No such image") {
		t.Errorf("run --pull never of a missing image: exit %d: %s", code, out)
	}
	if out := e.mustCLI("run", "--rm", "--pull", "always", "--network", "none", ref, "true"); !strings.Contains(out, "Image is up to date") {
		t.Errorf("run --pull always:\n%s", out)
	}
	// push -a: every tag of the repository
	d.must("tag", ref, addr+"/team/bb:2")
	out = d.must("push", "-a", addr+"/team/bb")
	if !strings.Contains(out, "1: digest: ") || !strings.Contains(out, "2: digest: ") {
		t.Errorf("push -a:\n%s", out)
	}
}

// TestEngineRegistryTokenAuth: the Bearer token flow for real, through
// the daemon: a token server in the test issues tokens for minidock's
// registry behind a gate (anyone may pull, bob may push). An anonymous
// push is denied; docker login with a wrong password fails with the token
// server's message, with the right one succeeds and keeps the credentials
// in the CLI's config.json; docker push then pulls them from there into
// X-Registry-Auth; docker pull and minidock login + push do the same.
func TestEngineRegistryTokenAuth(t *testing.T) {
	requireDockerCLI(t)
	tokens := peers.NewTokenServer(t, "bob", "hunter2")
	srv, err := server.New(server.Options{Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	gated := httptest.NewServer(tokens.Gate(srv))
	t.Cleanup(gated.Close)
	host := strings.TrimPrefix(gated.URL, "http://")

	e := newEngine(t)
	e.importBusybox("bb:1")
	ref := host + "/team/app:1"
	d := e.dockerWithConfig()
	d.must("tag", "bb:1", ref)
	if out, code := d.run("", "push", ref); code == 0 || !strings.Contains(out, "denied: requested access to the resource is denied") {
		t.Errorf("anonymous push: exit %d:\n%s", code, out)
	}
	if out, code := d.run("nope-nope\n", "login", "-u", "bob", "--password-stdin", host); code == 0 || !strings.Contains(out, "incorrect username or password") {
		t.Errorf("login with a wrong password: exit %d:\n%s", code, out)
	}
	if out, code := d.run("hunter2\n", "login", "-u", "bob", "--password-stdin", host); code != 0 || !strings.Contains(out, "Login Succeeded") {
		t.Fatalf("login: exit %d:\n%s", code, out)
	}
	cfg, _ := os.ReadFile(filepath.Join(d.dir, "config.json"))
	if !strings.Contains(string(cfg), base64.StdEncoding.EncodeToString([]byte("bob:hunter2"))) {
		t.Errorf("docker's config.json after login:\n%s", cfg)
	}
	out := d.must("push", ref)
	if !strings.Contains(out, ": Pushed") {
		t.Errorf("push after login:\n%s", out)
	}
	asked := strings.Join(tokens.Requests(), "\n")
	if !strings.Contains(asked, "repository:team/app:pull,push") {
		t.Errorf("no token asked for push: %q", asked)
	}
	d.must("rmi", ref)
	if out = d.must("pull", ref); !strings.Contains(out, "Downloaded newer image") {
		t.Errorf("pull after login:\n%s", out)
	}

	// minidock's CLI keeps credentials the same way.
	cfgDir := t.TempDir()
	if out, code := e.minidockWithConfig(cfgDir, "hunter2\n", "login", "-u", "bob", "--password-stdin", host); code != 0 || !strings.Contains(out, "Login Succeeded") {
		t.Fatalf("minidock login: exit %d: %s", code, out)
	}
	e.mustCLI("tag", ref, host+"/team/other:1")
	if out, code := e.minidockWithConfig(cfgDir, "", "push", host+"/team/other:1"); code != 0 || !strings.Contains(out, "Mounted from team/app") {
		t.Errorf("minidock push with stored credentials: exit %d:\n%s", code, out)
	}
	if out, code := e.minidockWithConfig(cfgDir, "", "logout", host); code != 0 || !strings.Contains(out, "Removing login credentials for "+host) {
		t.Errorf("minidock logout: exit %d: %s", code, out)
	}
	e.mustCLI("tag", ref, host+"/team/third:1")
	if out, code := e.minidockWithConfig(cfgDir, "", "push", host+"/team/third:1"); code == 0 || !strings.Contains(out, "denied") {
		t.Errorf("push after logout: exit %d:\n%s", code, out)
	}
	if strings.Contains(e.log(), "hunter2") {
		t.Errorf("the daemon's log shows the password:\n%s", e.log())
	}
}

// TestEngineRegistryBadInput: bad input through the daemon, each a clear
// error, the store unchanged: an unknown repository (404, "pull access
// denied"), an unknown tag (404, manifest unknown), a layer whose bytes
// do not match its digest (the stream's error names it), wrong
// credentials (401 with the registry's message, for POST /auth and a
// pull), invalid references and digests (400), unknown query parameters
// (400 naming them), a bad X-Registry-Auth, a push of a tag the store
// lacks (404); and the docker CLI's words for the first.
func TestEngineRegistryBadInput(t *testing.T) {
	good := testimage.Make(t, 81, 2, 64<<10, true, false, "amd64")
	bad := testimage.Make(t, 82, 2, 64<<10, true, false, "amd64")
	root := t.TempDir()
	srv, err := server.New(server.Options{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	badDigest := digest.FromBytes(bad.Layers[1]).String() // the layer served corrupt
	faulty := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/blobs/"+badDigest) {
			peers.Corrupt(w, r, srv)
			return
		}
		srv.ServeHTTP(w, r)
	}))
	t.Cleanup(faulty.Close)
	host := strings.TrimPrefix(faulty.URL, "http://")
	testimage.PushRaw(t, host, "good", "1", good)
	testimage.PushRaw(t, host, "corrupt", "1", bad)

	hash, _ := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	htpasswd := filepath.Join(t.TempDir(), "htpasswd")
	os.WriteFile(htpasswd, []byte("alice:"+string(hash)+"\n"), 0o600)
	authHost := registryServe(t, "", "--htpasswd", htpasswd)

	e := newEngine(t)
	if st, _, msg := e.pullRaw("fromImage="+host+"/good&tag=1", nil); st != 200 {
		t.Fatalf("pull of a good image: %d %s", st, msg)
	}
	before := e.storeState()
	cases := []struct {
		name, query string
		auth        *api.AuthConfig
		status      int
		want        string
	}{
		{"unknown repository", "fromImage=" + host + "/nosuch&tag=1", nil, 404, "pull access denied for " + host + "/nosuch, repository does not exist or may require 'docker login'"},
		{"unknown tag", "fromImage=" + host + "/good&tag=nosuch", nil, 404, "manifest for " + host + "/good:nosuch not found: manifest unknown"},
		{"digest mismatch", "fromImage=" + host + "/corrupt&tag=1", nil, 200, "digest mismatch for blob " + badDigest},
		{"no credentials", "fromImage=" + authHost + "/x&tag=1", nil, 404, "pull access denied for " + authHost + "/x"},
		{"wrong credentials", "fromImage=" + authHost + "/x&tag=1", &api.AuthConfig{Username: "alice", Password: "wrong-pw"}, 401, "unauthorized: invalid username or password"},
		{"upper case", "fromImage=UPPER/case&tag=1", nil, 400, "repository name must be lowercase"},
		{"bad digest", "fromImage=a&tag=sha256:zz", nil, 400, `bad digest "sha256:zz"`},
		{"unknown parameter", "fromImage=a&tag=1&bogus=1&quiet=1", nil, 400, "unknown query parameter bogus, quiet"},
		{"all tags", "fromImage=" + host + "/good", nil, 400, "tag= is required"},
		{"bad platform", "fromImage=" + host + "/good&tag=1&platform=linux", nil, 400, `invalid platform "linux"`},
		{"registry unreachable", "fromImage=" + peers.FreeAddr(t) + "/x&tag=1", nil, 500, "unreachable"},
	}
	for _, c := range cases {
		st, _, msg := e.pullRaw(c.query, c.auth)
		if st != c.status || !strings.Contains(msg, c.want) {
			t.Errorf("%s: %d %q, want %d and %q", c.name, st, msg, c.status, c.want)
		}
		if strings.Contains(msg, "wrong-pw") {
			t.Errorf("%s: the message shows the password: %s", c.name, msg)
		}
		if after := e.storeState(); strings.Join(after, "\n") != strings.Join(before, "\n") {
			t.Errorf("%s: the store changed:\nbefore %v\nafter  %v", c.name, before, after)
		}
	}

	// X-Registry-Auth that is not base64 JSON
	req, _ := http.NewRequest("POST", "http://d/v1.47/images/create?fromImage="+host+"/good&tag=1", nil)
	req.Header.Set(api.AuthHeader, "!!not-base64!!")
	if resp, err := e.http.Do(req); err != nil || resp.StatusCode != 400 {
		t.Errorf("bad X-Registry-Auth: %v %v", resp.Status, err)
	} else {
		resp.Body.Close()
	}
	// push: a tag the store lacks, unknown parameters
	if st, _, msg := e.streamRaw("POST", "/images/"+host+"/none/push?tag=1", nil); st != 404 || !strings.Contains(msg, "An image does not exist locally with the tag: "+host+"/none") {
		t.Errorf("push of a missing tag: %d %q", st, msg)
	}
	if st, _, msg := e.streamRaw("POST", "/images/"+host+"/good/push?tag=1&all=1", nil); st != 400 || !strings.Contains(msg, "unknown query parameter all") {
		t.Errorf("push with an unknown parameter: %d %q", st, msg)
	}
	// POST /auth
	var ar api.AuthResponse
	e.must(200, "POST", "/auth", api.AuthConfig{Username: "alice", Password: "s3cret", ServerAddress: authHost}, &ar)
	if ar.Status != "Login Succeeded" {
		t.Errorf("auth: %+v", ar)
	}
	if st, body := e.do("POST", "/auth", api.AuthConfig{Username: "alice", Password: "wrong-pw", ServerAddress: authHost}); st != 401 || !strings.Contains(string(body), "invalid username or password") {
		t.Errorf("auth with a wrong password: %d %s", st, body)
	}
	if st, body := e.do("POST", "/auth?x=1", api.AuthConfig{Username: "alice", Password: "s3cret", ServerAddress: authHost}); st != 400 || !strings.Contains(string(body), "unknown query parameter x") {
		t.Errorf("auth with a query: %d %s", st, body)
	}
	// the import (fromSrc) still refuses what it does not do
	if st, body := e.do("POST", "/images/create?fromSrc=-&message=hello", []byte{}); st != 400 || !strings.Contains(string(body), "message") {
		t.Errorf("import with a message: %d %s", st, body)
	}
	if strings.Contains(e.log(), "s3cret") || strings.Contains(e.log(), "wrong-pw") {
		t.Errorf("the daemon's log shows a password:\n%s", e.log())
	}

	if _, err := os.Stat(dockerCLI); err == nil {
		out, code := e.docker("pull", host+"/nosuch:1")
		if code != 1 || !strings.Contains(out, "Error response from daemon: pull access denied for "+host+"/nosuch") {
			t.Errorf("docker pull of an unknown image: exit %d: %s", code, out)
		}
		out, code = e.docker("pull", host+"/corrupt:1")
		if code != 1 || !strings.Contains(out, "digest mismatch for blob "+badDigest) {
			t.Errorf("docker pull of a corrupt layer: exit %d: %s", code, out)
		}
		out, code = e.docker("run", "--rm", host+"/nosuch:1", "true")
		if code != 125 || !strings.Contains(out, "Unable to find image") || !strings.Contains(out, "pull access denied") {
			t.Errorf("docker run of an unknown image: exit %d: %s", code, out)
		}
		if after := e.storeState(); strings.Join(after, "\n") != strings.Join(before, "\n") {
			t.Errorf("docker CLI's bad pulls changed the store")
		}
	}
}

// TestEngineRegistryPlatform: the docker CLI pulls a multi-platform image
// (an OCI index of linux/amd64 and linux/arm64) through the daemon: this
// machine's platform by default, the other with --platform (the
// platform= parameter), by the index's digest too; a platform the index
// lacks is an error naming it.
func TestEngineRegistryPlatform(t *testing.T) {
	requireDockerCLI(t)
	if goruntime.GOARCH != "amd64" {
		t.Skip("the index's default entry is amd64")
	}
	srv, err := server.New(server.Options{Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	host := strings.TrimPrefix(hs.URL, "http://")
	amd := testimage.Make(t, 93, 1, 4<<10, true, true, "amd64") // Docker schema 2
	arm := testimage.Make(t, 94, 1, 4<<10, true, false, "arm64")
	testimage.PushRaw(t, host, "multi", amd.Digest().String(), amd)
	testimage.PushRaw(t, host, "multi", arm.Digest().String(), arm)
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{
		{MediaType: arm.MediaType, Digest: arm.Digest(), Size: int64(len(arm.Manifest)), Platform: &ocispec.Platform{OS: "linux", Architecture: "arm64"}},
		{MediaType: amd.MediaType, Digest: amd.Digest(), Size: int64(len(amd.Manifest)), Platform: &ocispec.Platform{OS: "linux", Architecture: "amd64"}},
	}}
	idx.SchemaVersion = 2
	ib, _ := json.Marshal(idx)
	testimage.PutManifest(t, host, "multi", "1", ib, ocispec.MediaTypeImageIndex)

	e := newEngine(t)
	d := e.dockerWithConfig()
	ref := host + "/multi:1"
	arch := func(ref string) string {
		return strings.TrimSpace(d.must("image", "inspect", "--format", "{{.Architecture}} {{.Id}}", ref))
	}
	d.must("pull", "--platform", "linux/arm64", ref)
	if got := arch(ref); got != "arm64 "+arm.ConfigDigest().String() {
		t.Errorf("pull --platform linux/arm64: %s", got)
	}
	d.must("pull", ref)
	if got := arch(ref); got != "amd64 "+amd.ConfigDigest().String() {
		t.Errorf("pull: %s", got)
	}
	byDigest := host + "/multi@" + digest.FromBytes(ib).String()
	d.must("pull", byDigest)
	if got := d.must("image", "inspect", "--format", "{{json .RepoDigests}}", byDigest); !strings.Contains(got, byDigest) {
		t.Errorf("RepoDigests after a pull by digest: %s", got)
	}
	if out, code := d.run("", "pull", "--platform", "linux/s390x", ref); code != 1 || !strings.Contains(out, "no matching manifest for linux/s390x") {
		t.Errorf("pull --platform linux/s390x: exit %d: %s", code, out)
	}
}

// TestEngineRegistryInsecureAndCerts: a registry that is not on loopback
// is reached over verified HTTPS only, unless the daemon names it in
// --insecure-registry (repeatable: host:port, or a CIDR); an HTTPS one
// with a CA of its own is trusted through <--registry-certs-dir>/<host:port>/ca.crt.
// The registries, `minidock registry serve`, listen on TEST-NET addresses
// the test gives a veth of its own (local addresses: the traffic stays on
// this machine).
func TestEngineRegistryInsecureAndCerts(t *testing.T) {
	link := fmt.Sprintf("mdreg%d", os.Getpid()%100000)
	ipA, ipB := "192.0.2.71", "198.51.100.71"
	if out, err := exec.Command("ip", "link", "add", link, "type", "veth", "peer", "name", link+"p").CombinedOutput(); err != nil {
		t.Fatalf("make a veth pair: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "link", "del", link).Run() })
	for _, cmd := range [][]string{{"addr", "add", ipA + "/32", "dev", link}, {"addr", "add", ipB + "/32", "dev", link}, {"link", "set", link, "up"}} {
		if out, err := exec.Command("ip", cmd...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v %s", cmd, err, out)
		}
	}
	freeOn := func(ip string) string {
		ln, err := net.Listen("tcp", ip+":0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return ln.Addr().String()
	}
	listed := registryServe(t, freeOn(ipA))   // --insecure-registry host:port
	byCIDR := registryServe(t, freeOn(ipB))   // --insecure-registry 198.51.100.0/24
	unlisted := registryServe(t, freeOn(ipA)) // plain HTTP, not named: refused
	caPEM, certPEM, keyPEM, _ := peers.Certificate(t, ipA)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "cert.pem"), certPEM, 0o644)
	os.WriteFile(filepath.Join(dir, "key.pem"), keyPEM, 0o600)
	tlsAddr := registryServe(t, freeOn(ipA), "--tls-cert", filepath.Join(dir, "cert.pem"), "--tls-key", filepath.Join(dir, "key.pem"))
	untrusted := registryServe(t, freeOn(ipA), "--tls-cert", filepath.Join(dir, "cert.pem"), "--tls-key", filepath.Join(dir, "key.pem"))
	certsDir := t.TempDir()
	os.MkdirAll(filepath.Join(certsDir, tlsAddr), 0o755)
	os.WriteFile(filepath.Join(certsDir, tlsAddr, "ca.crt"), caPEM, 0o644)

	// Each gets the image by plain HTTP or over TLS from the test itself.
	ti := testimage.Make(t, 91, 1, 16<<10, true, false, "amd64")
	for _, a := range []string{listed, byCIDR, unlisted} {
		testimage.PushRaw(t, a, "x", "1", ti)
	}
	e := newEngineWith(t, "--insecure-registry", listed, "--insecure-registry", "198.51.100.0/24", "--registry-certs-dir", certsDir)
	e.importBusybox("bb:1")
	e.mustCLI("tag", "bb:1", tlsAddr+"/x:1")
	if out := e.mustCLI("push", tlsAddr+"/x:1"); !strings.Contains(out, "Pushed") {
		t.Errorf("push over HTTPS with certs.d's CA:\n%s", out)
	}
	e.mustCLI("rmi", tlsAddr+"/x:1")
	for _, a := range []string{listed, byCIDR, tlsAddr} {
		if st, _, msg := e.pullRaw("fromImage="+a+"/x&tag=1", nil); st != 200 || msg != "" {
			t.Errorf("pull from %s: %d %s", a, st, msg)
		}
	}
	for a, want := range map[string]string{unlisted: "server gave HTTP response to HTTPS client", untrusted: "certificate signed by unknown authority"} {
		if st, _, msg := e.pullRaw("fromImage="+a+"/x&tag=1", nil); st != 500 || !strings.Contains(msg, want) {
			t.Errorf("pull from %s: %d %q, want %q", a, st, msg, want)
		}
	}
}
