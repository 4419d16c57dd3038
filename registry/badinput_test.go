package registry

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/crypto/bcrypt"

	"minidock/internal/peers"
	"minidock/internal/testimage"
	"minidock/registry/server"
)

// fault makes minidock's server misbehave on requests whose path ends
// with suffix: a real registry with one defect injected.
type fault struct {
	suffix string
	do     func(w http.ResponseWriter, r *http.Request, next http.Handler)
}

func withFaults(faults ...fault) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			for _, f := range faults {
				if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, f.suffix) {
					f.do(w, r, next)
					return
				}
			}
			next.ServeHTTP(w, r)
		})
	}
}

// truncate announces the whole length, sends half and hangs up.
func truncate(w http.ResponseWriter, r *http.Request, next http.Handler) {
	rec := httptest.NewRecorder()
	next.ServeHTTP(rec, r)
	b := rec.Body.Bytes()
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	w.Write(b[:len(b)/2])
	w.(http.Flusher).Flush()
	conn, _, err := http.NewResponseController(w).Hijack()
	if err == nil {
		conn.Close()
	}
}

// hangBody sends the headers and a little, then nothing until the client
// gives up.
func hangBody(w http.ResponseWriter, r *http.Request, next http.Handler) {
	rec := httptest.NewRecorder()
	next.ServeHTTP(rec, r)
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	w.Write(rec.Body.Bytes()[:100])
	w.(http.Flusher).Flush()
	select {
	case <-r.Context().Done():
	case <-time.After(20 * time.Second):
	}
}

// TestPullBadInput: each defect of a registry or of the input is a clear
// error naming what is wrong, and the store is left exactly as it was.
func TestPullBadInput(t *testing.T) {
	// One image per repository, so that no layer of one is already in the
	// store when another is pulled.
	images := map[string]*testimage.Image{}
	for i, repo := range []string{"good", "corrupt", "truncated", "hangbody"} {
		images[repo] = testimage.Make(t, int64(10+i), 2, 300<<10, true, false, "amd64")
	}
	ti := images["good"]
	layerOf := func(repo string) string { return "/" + repo + "/blobs/" + digestOf(images[repo].Layers[1]) }
	big := bytes.Repeat([]byte(" "), 5<<20)
	big[0] = '{'
	big[len(big)-1] = '}'
	faults := withFaults(
		fault{layerOf("corrupt"), peers.Corrupt},
		fault{layerOf("truncated"), truncate},
		fault{layerOf("hangbody"), hangBody},
		fault{"/html/manifests/1", func(w http.ResponseWriter, r *http.Request, _ http.Handler) {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Write([]byte("<html><body>Welcome to nginx!</body></html>"))
		}},
		fault{"/big/manifests/1", func(w http.ResponseWriter, r *http.Request, _ http.Handler) {
			w.Header().Set("Content-Type", "application/vnd.oci.image.Manifest.v1+json")
			w.Write(big)
		}},
		fault{"/hangheaders/manifests/1", func(w http.ResponseWriter, r *http.Request, _ http.Handler) {
			select {
			case <-r.Context().Done():
			case <-time.After(20 * time.Second):
			}
		}},
		fault{"/wrongdigest/manifests/" + ti.Digest().String(), func(w http.ResponseWriter, r *http.Request, _ http.Handler) {
			w.Header().Set("Content-Type", ti.MediaType)
			w.Write(append(append([]byte{}, ti.Manifest...), ' '))
		}},
	)
	_, host := startServer(t, server.Options{}, faults)
	for repo, img := range images {
		testimage.PushRaw(t, host, repo, "1", img)
	}
	hash, _ := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	_, authHost := startServer(t, server.Options{Users: map[string][]byte{"alice": hash}}, nil)

	store := newStore(t)
	c := testClient(Options{ResponseTimeout: 500 * time.Millisecond, IdleTimeout: 500 * time.Millisecond})
	// Something in the store already, which must stay as it is.
	if _, err := c.Pull(ctxT(t), store, host+"/good:1", PullOptions{}); err != nil {
		t.Fatal(err)
	}
	before := storeFiles(t, store)
	cases := []struct {
		name, ref string
		auth      *AuthConfig
		want      string
	}{
		{"upper case", "UPPER/case", nil, "repository name must be lowercase"},
		{"bad digest", "a@sha256:zz", nil, `bad digest "sha256:zz"`},
		{"unknown repository", host + "/nosuch:1", nil, "pull access denied for " + host + "/nosuch, repository does not exist"},
		{"unknown tag", host + "/good:nosuch", nil, "manifest for " + host + "/good:nosuch not found: manifest unknown"},
		{"layer digest mismatch", host + "/corrupt:1", nil, "digest mismatch for blob " + digestOf(images["corrupt"].Layers[1])},
		{"truncated layer", host + "/truncated:1", nil, "blob " + digestOf(images["truncated"].Layers[1]) + " truncated"},
		{"manifest over 4 MiB", host + "/big:1", nil, "manifest is over the 4194304 byte limit"},
		{"HTML answer", host + "/html:1", nil, "answered an HTML page"},
		{"hanging registry", host + "/hangheaders:1", nil, "timeout awaiting response headers"},
		{"registry stops sending", host + "/hangbody:1", nil, "no data for 500ms"},
		{"manifest not matching its digest", host + "/wrongdigest@" + ti.Digest().String(), nil, "digest mismatch: expected " + ti.Digest().String()},
		{"wrong password", authHost + "/x:1", &AuthConfig{Username: "alice", Password: "wrong"}, "unauthorized: invalid username or password"},
		{"no credentials", authHost + "/x:1", nil, "pull access denied for " + authHost + "/x"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			_, err := c.Pull(ctxT(t), store, tc.ref, PullOptions{Auth: tc.auth})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("pull %s: error %v, want one saying %q", tc.ref, err, tc.want)
			}
			if tc.auth != nil && strings.Contains(err.Error(), tc.auth.Password) {
				t.Errorf("the error shows the password: %v", err)
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("took %s", d)
			}
			if after := storeFiles(t, store); strings.Join(after, "\n") != strings.Join(before, "\n") {
				t.Errorf("the failed pull changed the store:\nbefore %v\nafter  %v", before, after)
			}
		})
	}
	if ents, _ := os.ReadDir(filepath.Join(store.Root(), "image", "tmp")); len(ents) > 0 {
		t.Errorf("temporary files left: %v", ents)
	}
	// With the right password it works.
	if _, err := c.Pull(context.Background(), store, authHost+"/x:1", PullOptions{Auth: &AuthConfig{Username: "alice", Password: "s3cret"}}); err == nil || !strings.Contains(err.Error(), `repository "x" not known to registry`) {
		t.Errorf("pull with the right password from an empty registry: %v, want the registry's own not-known message", err)
	}
}

func digestOf(b []byte) string { return digest.FromBytes(b).String() }
