package registry

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"math/rand"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"minidock/archive"
	"minidock/image"
	"minidock/internal/testutil"
	"minidock/registry/server"
)

// newStore opens an image store on a fresh data root (root: unpacking
// layers makes whiteout devices and sets owners), and checks at the end
// that no mount was left.
func newStore(t testing.TB) *image.Store {
	t.Helper()
	testutil.RequireRoot(t)
	root := filepath.Join(t.TempDir(), "data")
	s, err := image.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if left := testutil.MountsUnder(t, root); len(left) > 0 {
			t.Errorf("mounts leaked: %v", left)
		}
	})
	return s
}

// storeFiles lists every path under a store's root, to show that a
// failed pull changed nothing.
func storeFiles(t testing.TB, s *image.Store) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(s.Root(), func(p string, e fs.DirEntry, err error) error {
		if err == nil {
			out = append(out, strings.TrimPrefix(p, s.Root()))
		}
		return nil
	})
	sort.Strings(out)
	return out
}

// startServer runs minidock's registry server in the test process on
// 127.0.0.1, wrapped by wrap when given (fault injection, token auth).
func startServer(t testing.TB, opts server.Options, wrap func(http.Handler) http.Handler) (*httptest.Server, string) {
	t.Helper()
	if opts.Root == "" {
		opts.Root = t.TempDir()
	}
	srv, err := server.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	var h http.Handler = srv
	if wrap != nil {
		h = wrap(h)
	}
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	u, _ := url.Parse(ts.URL)
	return ts, u.Host
}

// progressLog collects progress messages.
type progressLog struct {
	mu   sync.Mutex
	msgs []Progress
}

func (p *progressLog) fn(m Progress) {
	p.mu.Lock()
	p.msgs = append(p.msgs, m)
	p.mu.Unlock()
}

// has tells whether a message with this status (prefix) was sent.
func (p *progressLog) has(status string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range p.msgs {
		if strings.HasPrefix(m.Status, status) {
			return true
		}
	}
	return false
}

func (p *progressLog) count(status string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, m := range p.msgs {
		if strings.HasPrefix(m.Status, status) {
			n++
		}
	}
	return n
}

func (p *progressLog) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var b strings.Builder
	for _, m := range p.msgs {
		j, _ := json.Marshal(m)
		b.Write(j)
		b.WriteByte('\n')
	}
	return b.String()
}

// testImage is an image as a registry holds it: blobs and a manifest.
type testImage struct {
	layers    [][]byte // as sent (gzip or plain tar)
	diffIDs   []digest.Digest
	config    []byte
	manifest  []byte
	mediaType string
}

func (ti *testImage) digest() digest.Digest { return digest.FromBytes(ti.manifest) }

// layerFiles builds a layer tar of files (a name ending in / is a
// directory; a body of "\x00wh" writes a whiteout entry for the name).
func layerFiles(t testing.TB, files map[string][]byte) []byte {
	t.Helper()
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		body := files[n]
		h := &tar.Header{Name: n, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body)), ModTime: time.Unix(1700000000, 0)}
		if strings.HasSuffix(n, "/") {
			h.Typeflag, h.Mode, h.Size = tar.TypeDir, 0o755, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write(body)
	}
	tw.Close()
	return buf.Bytes()
}

// randomBytes is n bytes of a seeded generator, half of them compressible.
func randomBytes(seed int64, n int) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	for i := 0; i < n; i += 2048 {
		for j := i; j < min(i+1024, n); j++ {
			b[j] = 'a' + byte(j%7)
		}
	}
	return b
}

// makeImage builds an image of n layers: layer i holds layer<i>/data of
// size bytes; layer 0 also etc/motd, which layer 1 deletes with a
// whiteout. gz compresses the layers; docker uses Docker's media types.
func makeImage(t testing.TB, seed int64, n, size int, gz, docker bool, arch string) *testImage {
	t.Helper()
	ti := &testImage{}
	cfg := ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: arch}, RootFS: ocispec.RootFS{Type: "layers"}}
	cfg.Config.Cmd = []string{"/bin/sh"}
	cfg.Config.Labels = map[string]string{"seed": fmt.Sprint(seed)}
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest}
	m.SchemaVersion = 2
	layerMT, configMT := ocispec.MediaTypeImageLayer, ocispec.MediaTypeImageConfig
	if gz {
		layerMT = ocispec.MediaTypeImageLayerGzip
	}
	if docker {
		m.MediaType, layerMT, configMT = image.MediaTypeDockerManifest, image.MediaTypeDockerLayer, image.MediaTypeDockerConfig
	}
	for i := 0; i < n; i++ {
		files := map[string][]byte{
			fmt.Sprintf("layer%d/", i):     nil,
			fmt.Sprintf("layer%d/data", i): randomBytes(seed*100+int64(i), size),
		}
		switch i {
		case 0:
			files["etc/"] = nil
			files["etc/motd"] = []byte("minidock\n")
		case 1:
			files["etc/"] = nil
			files["etc/.wh.motd"] = []byte{}
		}
		plain := layerFiles(t, files)
		ti.diffIDs = append(ti.diffIDs, digest.FromBytes(plain))
		blob := plain
		if gz {
			var buf bytes.Buffer
			zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
			zw.Write(plain)
			zw.Close()
			blob = buf.Bytes()
		}
		ti.layers = append(ti.layers, blob)
		m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: layerMT, Digest: digest.FromBytes(blob), Size: int64(len(blob))})
	}
	cfg.RootFS.DiffIDs = ti.diffIDs
	ti.config, _ = json.Marshal(cfg)
	m.Config = ocispec.Descriptor{MediaType: configMT, Digest: digest.FromBytes(ti.config), Size: int64(len(ti.config))}
	ti.manifest, _ = json.Marshal(m)
	ti.mediaType = m.MediaType
	return ti
}

// pushRaw puts an image into a registry by plain HTTP (POST + PUT per
// blob, then the manifest), as any client would: the test's own way in,
// independent of the client under test.
func pushRaw(t testing.TB, host, repo, tag string, ti *testImage) {
	t.Helper()
	for _, b := range append(append([][]byte{}, ti.layers...), ti.config) {
		putBlob(t, host, repo, b)
	}
	putManifest(t, host, repo, tag, ti.manifest, ti.mediaType)
}

func putBlob(t testing.TB, host, repo string, b []byte) {
	t.Helper()
	resp, err := http.Post("http://"+host+"/v2/"+repo+"/blobs/uploads/", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST upload: %s", resp.Status)
	}
	loc, _ := resp.Request.URL.Parse(resp.Header.Get("Location"))
	q := loc.Query()
	q.Set("digest", digest.FromBytes(b).String())
	loc.RawQuery = q.Encode()
	req, _ := http.NewRequest(http.MethodPut, loc.String(), bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT blob: %s", resp.Status)
	}
}

func putManifest(t testing.TB, host, repo, ref string, body []byte, mt string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, "http://"+host+"/v2/"+repo+"/manifests/"+ref, bytes.NewReader(body))
	req.Header.Set("Content-Type", mt)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT manifest %s: %s %s", ref, resp.Status, msg)
	}
}

// testClient is a Client with short timeouts, for tests.
func testClient(opts Options) *Client {
	if opts.ResponseTimeout == 0 {
		opts.ResponseTimeout = 10 * time.Second
	}
	if opts.IdleTimeout == 0 {
		opts.IdleTimeout = 10 * time.Second
	}
	if opts.CertsDir == "" {
		opts.CertsDir = "/nonexistent"
	}
	return NewClient(opts)
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// countingHandler counts requests by method.
type countingHandler struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *countingHandler) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		if c.n == nil {
			c.n = map[string]int{}
		}
		c.n[r.Method]++
		c.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

func (c *countingHandler) count(method string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[method]
}

// dockerArchive is an image with uncompressed layers as `docker save`
// writes it (manifest.json, config, layer tars), tagged ref.
func dockerArchive(t testing.TB, ref string, ti *testImage) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name string, b []byte) {
		tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(b))})
		tw.Write(b)
	}
	var names []string
	for i, l := range ti.layers {
		if bytes.HasPrefix(l, []byte{0x1f, 0x8b}) {
			t.Fatal("dockerArchive wants uncompressed layers")
		}
		n := fmt.Sprintf("%d/layer.tar", i)
		add(n, l)
		names = append(names, n)
	}
	add("config.json", ti.config)
	mj, _ := json.Marshal([]map[string]any{{"Config": "config.json", "RepoTags": []string{ref}, "Layers": names}})
	add("manifest.json", mj)
	tw.Close()
	return buf.Bytes()
}

// loadImage puts an image with uncompressed layers into a store as
// `docker load` would, tagged ref: an image the store holds as its own.
func loadImage(t testing.TB, s *image.Store, ref string, ti *testImage) *image.Image {
	t.Helper()
	if _, err := s.LoadArchive(bytes.NewReader(dockerArchive(t, ref, ti))); err != nil {
		t.Fatal(err)
	}
	img, err := s.Resolve(ref)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// busyboxImage is makeImage's uncompressed image with a busybox root
// filesystem as an extra first layer, so that engines can run it.
func busyboxImage(t testing.TB, seed int64) *testImage {
	t.Helper()
	ti := makeImage(t, seed, 2, 256<<10, false, false, "amd64")
	dir := filepath.Join(t.TempDir(), "rootfs")
	testutil.MakeBusyboxRootfs(t, dir)
	var buf bytes.Buffer
	if err := archive.WriteTree(&buf, dir); err != nil {
		t.Fatal(err)
	}
	ti.layers = append([][]byte{buf.Bytes()}, ti.layers...)
	ti.diffIDs = append([]digest.Digest{digest.FromBytes(buf.Bytes())}, ti.diffIDs...)
	var cfg ocispec.Image
	json.Unmarshal(ti.config, &cfg)
	cfg.RootFS.DiffIDs = ti.diffIDs
	ti.config, _ = json.Marshal(cfg)
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest,
		Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(ti.config), Size: int64(len(ti.config))}}
	m.SchemaVersion = 2
	for _, l := range ti.layers {
		m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: digest.FromBytes(l), Size: int64(len(l))})
	}
	ti.manifest, _ = json.Marshal(m)
	return ti
}
