package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"minidock/image"
	"minidock/internal/testimage"
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

// loadImage puts an image with uncompressed layers into a store as
// `docker load` would, tagged ref: an image the store holds as its own.
func loadImage(t testing.TB, s *image.Store, ref string, ti *testimage.Image) *image.Image {
	t.Helper()
	if _, err := s.LoadArchive(bytes.NewReader(testimage.DockerArchive(t, ref, ti))); err != nil {
		t.Fatal(err)
	}
	img, err := s.Resolve(ref)
	if err != nil {
		t.Fatal(err)
	}
	return img
}
