package server

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/crypto/bcrypt"
)

// TestMain lets the test binary be `minidock registry` for the tests that
// run the server as a process of its own (to kill it).
func TestMain(m *testing.M) {
	if os.Getenv("MINIDOCK_TEST_REGISTRY") == "1" {
		os.Exit(Main(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// serverProcess runs `registry serve` as a child process on root and
// returns its address and the process.
func serverProcess(t *testing.T, root string, extra ...string) (string, *exec.Cmd) {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"serve", "--addr", "127.0.0.1:0", "--root", root, "--quiet"}, extra...)...)
	cmd.Env = append(os.Environ(), "MINIDOCK_TEST_REGISTRY=1")
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	select {
	case l := <-lines:
		i := strings.Index(l, "serving http://")
		if i < 0 {
			t.Fatalf("registry serve said %q", l)
		}
		go func() {
			for range lines {
			}
		}()
		return strings.Fields(l[i+len("serving http://"):])[0], cmd
	case <-time.After(10 * time.Second):
		t.Fatal("registry serve did not start")
	}
	return "", nil
}

func do(t *testing.T, method, url string, body io.Reader, hdr ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// TestKilledServer kills the server (SIGKILL) with one upload half sent
// by PATCH and another cut off in the middle of its PUT: after a restart
// on the same root, the blob finished before is whole, the cut one is
// not visible, every file under blobs/ has the digest it is named by, and
// the half upload can be finished where it stopped.
func TestKilledServer(t *testing.T) {
	root := t.TempDir()
	addr, cmd := serverProcess(t, root)
	base := "http://" + addr + "/v2/crash/blobs/"
	done := make([]byte, 1<<20)
	rand.Read(done)
	dd := digest.FromBytes(done)
	resp := do(t, "POST", base+"uploads/?digest="+dd.String(), bytes.NewReader(done))
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("monolithic POST: %s", resp.Status)
	}
	// Half of a chunked upload.
	half := make([]byte, 2<<20)
	rand.Read(half)
	hd := digest.FromBytes(half)
	resp = do(t, "POST", base+"uploads/", nil)
	loc := resp.Header.Get("Location")
	resp = do(t, "PATCH", "http://"+addr+loc, bytes.NewReader(half[:1<<20]), "Content-Range", fmt.Sprintf("0-%d", 1<<20-1))
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("PATCH: %s", resp.Status)
	}
	loc = resp.Header.Get("Location")
	// A PUT whose body stops half way: the server is killed meanwhile.
	cut := make([]byte, 4<<20)
	rand.Read(cut)
	cd := digest.FromBytes(cut)
	resp = do(t, "POST", base+"uploads/", nil)
	pr, pw := io.Pipe()
	go func() {
		pw.Write(cut[:2<<20])
		time.Sleep(300 * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		time.Sleep(300 * time.Millisecond)
		pw.CloseWithError(io.ErrUnexpectedEOF)
	}()
	req, _ := http.NewRequest("PUT", "http://"+addr+resp.Header.Get("Location")+"?digest="+cd.String(), pr)
	req.ContentLength = int64(len(cut))
	if r, err := http.DefaultClient.Do(req); err == nil {
		r.Body.Close()
		t.Fatalf("the PUT cut off by the kill answered %s", r.Status)
	}
	cmd.Wait()

	addr, _ = serverProcess(t, root)
	base = "http://" + addr + "/v2/crash/blobs/"
	resp, err := http.Get(base + dd.String())
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !bytes.Equal(got, done) {
		t.Errorf("the finished blob after the restart: %s, %d bytes", resp.Status, len(got))
	}
	if r := do(t, "HEAD", base+cd.String(), nil); r.StatusCode != http.StatusNotFound {
		t.Errorf("the blob cut off: HEAD %s, want 404", r.Status)
	}
	filepath.WalkDir(filepath.Join(root, "blobs"), func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return nil
		}
		b, _ := os.ReadFile(p)
		alg := filepath.Base(filepath.Dir(p))
		if d := digest.Algorithm(alg).FromBytes(b); d.Encoded() != e.Name() {
			t.Errorf("%s holds content %s", p, d)
		}
		return nil
	})
	// The upload sent half survives, and finishes.
	resp = do(t, "GET", "http://"+addr+loc, nil)
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Range") != fmt.Sprintf("0-%d", 1<<20-1) {
		t.Fatalf("half upload after the restart: %s, Range %q", resp.Status, resp.Header.Get("Range"))
	}
	resp = do(t, "PUT", "http://"+addr+loc+"?digest="+hd.String(), bytes.NewReader(half[1<<20:]), "Content-Range", fmt.Sprintf("%d-%d", 1<<20, 2<<20-1))
	if resp.StatusCode != http.StatusCreated {
		t.Errorf("finishing the half upload after a restart: %s", resp.Status)
	}
	if r := do(t, "HEAD", base+hd.String(), nil); r.StatusCode != http.StatusOK {
		t.Errorf("HEAD of the resumed blob: %s", r.Status)
	}
}

// TestServeAuth runs `registry serve --htpasswd`: requests without the
// right credentials get 401 with a Basic challenge.
func TestServeAuth(t *testing.T) {
	hash, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	ht := filepath.Join(t.TempDir(), "htpasswd")
	os.WriteFile(ht, []byte("# users\nalice:"+string(hash)+"\n"), 0o600)
	addr, _ := serverProcess(t, t.TempDir(), "--htpasswd", ht)
	resp := do(t, "GET", "http://"+addr+"/v2/", nil)
	if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic ") {
		t.Errorf("anonymous: %s %q", resp.Status, resp.Header.Get("WWW-Authenticate"))
	}
	req, _ := http.NewRequest("GET", "http://"+addr+"/v2/", nil)
	req.SetBasicAuth("alice", "pw")
	if r, err := http.DefaultClient.Do(req); err != nil || r.StatusCode != http.StatusOK {
		t.Errorf("with the password: %v %v", r, err)
	}
	req.SetBasicAuth("alice", "nope")
	if r, err := http.DefaultClient.Do(req); err != nil || r.StatusCode != http.StatusUnauthorized {
		t.Errorf("with a wrong password: %v %v", r, err)
	}
	// A file with a hash that is not bcrypt is refused, naming the line.
	os.WriteFile(ht, []byte("bob:{SHA}xyz\n"), 0o600)
	if _, err := LoadHtpasswd(ht); err == nil || !strings.Contains(err.Error(), ":1: user \"bob\"") {
		t.Errorf("non-bcrypt htpasswd: %v", err)
	}
}

// TestListings checks tags and catalog pagination (n, last, Link).
func TestListings(t *testing.T) {
	srv, _ := New(Options{Root: t.TempDir()})
	for _, repo := range []string{"b/one", "a/two", "c"} {
		for _, tag := range []string{"v3", "v1", "v2"} {
			cfg := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)
			d := digest.FromBytes(cfg)
			tmp, _ := os.CreateTemp(filepath.Join(srv.store.root, "uploads"), "t")
			tmp.Write(cfg)
			tmp.Close()
			srv.store.publishBlob(repo, d, tmp.Name())
			m := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":[]}`, d, len(cfg))
			rec := httpRecord(srv, "PUT", "/v2/"+repo+"/manifests/"+tag, m, "application/vnd.oci.image.manifest.v1+json")
			if rec.Code != http.StatusCreated {
				t.Fatalf("PUT: %d %s", rec.Code, rec.Body)
			}
		}
	}
	rec := httpRecord(srv, "GET", "/v2/b/one/tags/list?n=2", "", "")
	if body := strings.TrimSpace(rec.Body.String()); body != `{"name":"b/one","tags":["v1","v2"]}` || rec.Header().Get("Link") != `</v2/b/one/tags/list?last=v2&n=2>; rel="next"` {
		t.Errorf("tags page 1: %s, Link %q", body, rec.Header().Get("Link"))
	}
	rec = httpRecord(srv, "GET", "/v2/b/one/tags/list?n=2&last=v2", "", "")
	if body := strings.TrimSpace(rec.Body.String()); body != `{"name":"b/one","tags":["v3"]}` || rec.Header().Get("Link") != "" {
		t.Errorf("tags page 2: %s, Link %q", body, rec.Header().Get("Link"))
	}
	rec = httpRecord(srv, "GET", "/v2/_catalog", "", "")
	if body := strings.TrimSpace(rec.Body.String()); body != `{"repositories":["a/two","b/one","c"]}` {
		t.Errorf("catalog: %s", body)
	}
	rec = httpRecord(srv, "GET", "/v2/_catalog?n=1&last=a/two", "", "")
	if body := strings.TrimSpace(rec.Body.String()); body != `{"repositories":["b/one"]}` {
		t.Errorf("catalog page: %s", body)
	}
	if rec := httpRecord(srv, "GET", "/v2/nosuch/tags/list", "", ""); rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), "NAME_UNKNOWN") {
		t.Errorf("tags of an unknown repository: %d %s", rec.Code, rec.Body)
	}
	if rec := httpRecord(srv, "GET", "/v2/UPPER/tags/list", "", ""); rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "NAME_INVALID") {
		t.Errorf("invalid name: %d %s", rec.Code, rec.Body)
	}
}

func httpRecord(h http.Handler, method, path, body, ctype string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}
