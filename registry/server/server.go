// Package server is minidock's registry server (`minidock registry serve`):
// the OCI distribution API (/v2/) over a directory of content-addressed
// files. Blobs and manifests are stored once by digest; repositories hold
// links to them; tags name manifest digests. See docs/registry.md.
package server

import (
	_ "crypto/sha512" // sha512 digests (go-digest needs the hash linked in)
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"path"
	"regexp"
	"strings"
	"sync"

	"github.com/opencontainers/go-digest"
)

// Options configure a Server.
type Options struct {
	// Root is the storage directory (created if missing).
	Root string
	// Users maps user names to bcrypt password hashes (an htpasswd file,
	// see LoadHtpasswd). Empty: anyone may pull and push.
	Users map[string][]byte
	// ChunkMinLength, when set, is announced to clients starting an upload
	// (OCI-Chunk-Min-Length), asking them for chunks of at least that size.
	ChunkMinLength int64
	// Log receives one line per request; nil discards.
	Log *log.Logger
}

// Server serves the distribution API. It is an http.Handler.
type Server struct {
	opts    Options
	store   *storage
	uploads sync.Map // upload id -> *upload (in-progress hashing state)
}

// New opens the storage under opts.Root.
func New(opts Options) (*Server, error) {
	st, err := newStorage(opts.Root)
	if err != nil {
		return nil, err
	}
	return &Server{opts: opts, store: st}, nil
}

// Maximum size of a manifest accepted by PUT (as Docker's registry).
const maxManifestSize = 4 << 20

// nameRE is the grammar of a repository name (distribution spec).
var nameRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$`)
})

// tagRE is the grammar of a tag.
var tagRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`) })

// ServeHTTP routes a request: /v2/, /v2/_catalog, and
// /v2/<name>/{blobs/uploads/[<id>], blobs/<digest>, manifests/<ref>,
// tags/list, referrers/<digest>}. The name may hold slashes; what follows
// it never does, so the route is read from the end of the path.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rw := &statusWriter{ResponseWriter: w, status: 200}
	w = rw
	defer func() {
		if s.opts.Log != nil {
			s.opts.Log.Printf("%s %s %d", r.Method, r.URL.RequestURI(), rw.status)
		}
	}()
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	if !s.authorized(w, r) {
		return
	}
	p := r.URL.Path
	if p == "/v2" || p == "/v2/" {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			writeError(w, http.StatusMethodNotAllowed, "UNSUPPORTED", "method "+r.Method+" not allowed on /v2/")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte("{}"))
		return
	}
	if !strings.HasPrefix(p, "/v2/") {
		writeError(w, http.StatusNotFound, "NOT_FOUND", "no such endpoint "+p)
		return
	}
	if p == "/v2/_catalog" {
		s.catalog(w, r)
		return
	}
	rest, last := path.Split(strings.TrimPrefix(p, "/v2/"))
	var name, kind string
	for _, k := range []string{"/blobs/uploads/", "/blobs/", "/manifests/", "/referrers/", "/tags/"} {
		if strings.HasSuffix("/"+rest, k) {
			name, kind = strings.TrimSuffix("/"+rest, k), k
			name = strings.TrimPrefix(name, "/")
			break
		}
	}
	if kind == "" || (kind == "/tags/" && last != "list") {
		writeError(w, http.StatusNotFound, "NOT_FOUND", "no such endpoint "+p)
		return
	}
	if !nameRE().MatchString(name) || len(name) > 255 {
		writeError(w, http.StatusBadRequest, "NAME_INVALID", fmt.Sprintf("invalid repository name %q", name))
		return
	}
	switch kind {
	case "/blobs/uploads/":
		s.uploadRoute(w, r, name, last)
	case "/blobs/":
		s.blobRoute(w, r, name, last)
	case "/manifests/":
		s.manifestRoute(w, r, name, last)
	case "/referrers/":
		s.referrers(w, r, name, last)
	case "/tags/":
		s.tagList(w, r, name)
	}
}

// statusWriter remembers the status code for the request log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// apiError is one entry of the distribution API's error body.
type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Detail  any    `json:"detail,omitempty"`
}

// writeError answers {"errors":[{"code","message"}]} with status.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Del("Content-Length")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(struct {
		Errors []apiError `json:"errors"`
	}{[]apiError{{Code: code, Message: msg}}})
}

// parseDigest checks a digest from the URL or query: a known algorithm
// and a well-formed hex part.
func parseDigest(s string) (digest.Digest, error) {
	d, err := digest.Parse(s)
	if err != nil {
		return "", fmt.Errorf("invalid digest %q: %v", s, err)
	}
	return d, nil
}

// paginate applies the n and last query parameters of a listing and
// sets the Link header for the next page.
func paginate(w http.ResponseWriter, r *http.Request, all []string) ([]string, bool) {
	q := r.URL.Query()
	list := all
	if last := q.Get("last"); last != "" {
		i := 0
		for i < len(list) && list[i] <= last {
			i++
		}
		list = list[i:]
	}
	if ns := q.Get("n"); ns != "" {
		var n int
		if _, err := fmt.Sscanf(ns, "%d", &n); err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, "PAGINATION_NUMBER_INVALID", fmt.Sprintf("invalid n=%q", ns))
			return nil, false
		}
		if n < len(list) {
			list = list[:n]
			if n > 0 {
				next := *r.URL
				nq := next.Query()
				nq.Set("last", list[n-1])
				next.RawQuery = nq.Encode()
				w.Header().Set("Link", fmt.Sprintf("<%s>; rel=\"next\"", next.RequestURI()))
			}
		}
	}
	return list, true
}

// tagList answers GET /v2/<name>/tags/list[?n=&last=].
func (s *Server) tagList(w http.ResponseWriter, r *http.Request, name string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		writeError(w, http.StatusMethodNotAllowed, "UNSUPPORTED", "tags/list is GET only")
		return
	}
	if !s.store.repoExists(name) {
		writeError(w, http.StatusNotFound, "NAME_UNKNOWN", fmt.Sprintf("repository %q not known to registry", name))
		return
	}
	tags, err := s.store.tags(name)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "UNKNOWN", err.Error())
		return
	}
	page, ok := paginate(w, r, tags)
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}{name, page})
}

// catalog answers GET /v2/_catalog[?n=&last=].
func (s *Server) catalog(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		writeError(w, http.StatusMethodNotAllowed, "UNSUPPORTED", "_catalog is GET only")
		return
	}
	page, ok := paginate(w, r, s.store.repositories())
	if !ok {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(struct {
		Repositories []string `json:"repositories"`
	}{page})
}
