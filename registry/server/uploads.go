package server

import (
	"crypto/sha256"
	"encoding"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
)

// An upload is a blob being pushed: uploads/<id>/data grows with each
// PATCH; the PUT that closes it names the digest, which is checked
// against the whole content before the file is renamed into blobs/.
// The running sha256 of the data is kept in memory so a monolithic or
// chunked push is hashed once, on the way in; after a restart (or for
// another algorithm) the file is hashed again at PUT. The state that
// matters is the file, so an upload survives a restart of the server.
type upload struct {
	mu sync.Mutex
	h  hash.Hash // sha256 of data[:n]
	n  int64
}

var uploadIDRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-f0-9]{32}$`) })

// uploadRoute answers /v2/<name>/blobs/uploads/ (POST: start, mount or
// monolithic push) and /v2/<name>/blobs/uploads/<id> (PATCH: a chunk,
// PUT: the last chunk and the digest, GET: progress, DELETE: cancel).
func (s *Server) uploadRoute(w http.ResponseWriter, r *http.Request, name, id string) {
	if id == "" {
		if r.Method != http.MethodPost {
			writeError(w, http.StatusMethodNotAllowed, "UNSUPPORTED", "method "+r.Method+" not allowed on blobs/uploads/")
			return
		}
		s.startUpload(w, r, name)
		return
	}
	if !uploadIDRE().MatchString(id) || !s.uploadOf(name, id) {
		writeError(w, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN", fmt.Sprintf("upload %q not known to repository %q", id, name))
		return
	}
	switch r.Method {
	case http.MethodPatch:
		s.patchUpload(w, r, name, id)
	case http.MethodPut:
		s.finishUpload(w, r, name, id)
	case http.MethodGet:
		s.uploadStatus(w, name, id, http.StatusNoContent)
	case http.MethodDelete:
		s.uploads.Delete(id)
		os.RemoveAll(s.store.uploadDir(id))
		w.WriteHeader(http.StatusNoContent)
	default:
		writeError(w, http.StatusMethodNotAllowed, "UNSUPPORTED", "method "+r.Method+" not allowed on an upload")
	}
}

// uploadOf tells whether upload id exists and belongs to repository name.
func (s *Server) uploadOf(name, id string) bool {
	b, err := os.ReadFile(filepath.Join(s.store.uploadDir(id), "repo"))
	return err == nil && string(b) == name
}

// startUpload answers POST /v2/<name>/blobs/uploads/. With ?mount= it
// links a blob another repository holds (201), or starts an upload when
// it cannot (202); with ?digest= and a body it stores the blob at once
// (201); otherwise it starts an upload session (202).
func (s *Server) startUpload(w http.ResponseWriter, r *http.Request, name string) {
	q := r.URL.Query()
	if m := q.Get("mount"); m != "" {
		d, err := parseDigest(m)
		if err != nil {
			writeError(w, http.StatusBadRequest, "DIGEST_INVALID", err.Error())
			return
		}
		from := q.Get("from")
		if (from == "" && s.store.blobExists(d)) || (from != "" && nameRE().MatchString(from) && s.store.hasBlob(from, d)) {
			if err := s.store.linkBlob(name, d); err == nil {
				blobCreated(w, name, d)
				return
			}
		}
		// Not mountable: an ordinary upload session instead.
	}
	id := newUploadID()
	dir := s.store.uploadDir(id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		writeError(w, http.StatusInternalServerError, "UNKNOWN", err.Error())
		return
	}
	if err := os.WriteFile(filepath.Join(dir, "data"), nil, 0o644); err != nil {
		writeError(w, http.StatusInternalServerError, "UNKNOWN", err.Error())
		return
	}
	if err := writeFileAtomic(filepath.Join(dir, "repo"), []byte(name)); err != nil {
		writeError(w, http.StatusInternalServerError, "UNKNOWN", err.Error())
		return
	}
	s.uploads.Store(id, &upload{h: sha256.New()})
	if q.Get("digest") != "" && q.Get("mount") == "" {
		// Monolithic POST: the whole blob in this request.
		s.finishUpload(w, r, name, id)
		return
	}
	if s.opts.ChunkMinLength > 0 {
		w.Header().Set("OCI-Chunk-Min-Length", strconv.FormatInt(s.opts.ChunkMinLength, 10))
	}
	s.uploadStatus(w, name, id, http.StatusAccepted)
}

// uploadStatus answers with the upload's Location and the Range it has.
func (s *Server) uploadStatus(w http.ResponseWriter, name, id string, status int) {
	st, err := os.Stat(filepath.Join(s.store.uploadDir(id), "data"))
	if err != nil {
		writeError(w, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN", fmt.Sprintf("upload %q: %v", id, err))
		return
	}
	w.Header().Set("Location", "/v2/"+name+"/blobs/uploads/"+id)
	w.Header().Set("Docker-Upload-UUID", id)
	w.Header().Set("Range", fmt.Sprintf("0-%d", max(st.Size()-1, 0)))
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(status)
}

// state returns the in-memory state of upload id, rebuilt (unhashed) if
// the server restarted since the upload began.
func (s *Server) state(id string) *upload {
	u, _ := s.uploads.LoadOrStore(id, &upload{h: sha256.New(), n: -1})
	return u.(*upload)
}

// appendChunk appends the request body to the upload. A Content-Range
// ("start-end") must start where the data ends, else 416 (the client asks
// GET for the Range and resumes from there).
func (s *Server) appendChunk(w http.ResponseWriter, r *http.Request, name, id string, u *upload) bool {
	p := filepath.Join(s.store.uploadDir(id), "data")
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		writeError(w, http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN", fmt.Sprintf("upload %q: %v", id, err))
		return false
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		writeError(w, http.StatusInternalServerError, "UNKNOWN", err.Error())
		return false
	}
	if cr := r.Header.Get("Content-Range"); cr != "" {
		start, _, ok := parseContentRange(cr)
		if !ok || start != st.Size() {
			w.Header().Set("Location", "/v2/"+name+"/blobs/uploads/"+id)
			w.Header().Set("Range", fmt.Sprintf("0-%d", max(st.Size()-1, 0)))
			writeError(w, http.StatusRequestedRangeNotSatisfiable, "BLOB_UPLOAD_INVALID",
				fmt.Sprintf("chunk %q does not start at the end of the upload (%d bytes)", cr, st.Size()))
			return false
		}
	}
	var h io.Writer
	if u.n == st.Size() {
		h = u.h
	} else {
		u.n = -1 // out of step: hash the file at the end
	}
	n, err := copyTo(f, r.Body, h)
	if u.n >= 0 {
		u.n += n
	}
	if err != nil {
		// What was written stays: the client may resume from the Range.
		writeError(w, http.StatusBadRequest, "BLOB_UPLOAD_INVALID", fmt.Sprintf("upload %q: reading the chunk: %v", id, err))
		return false
	}
	if r.ContentLength >= 0 && n != r.ContentLength {
		writeError(w, http.StatusBadRequest, "SIZE_INVALID", fmt.Sprintf("chunk of %d bytes announced, %d received", r.ContentLength, n))
		return false
	}
	return true
}

func parseContentRange(s string) (start, end int64, ok bool) {
	s = strings.TrimPrefix(strings.TrimSpace(s), "bytes ")
	a, b, found := strings.Cut(s, "-")
	if !found {
		return 0, 0, false
	}
	start, err1 := strconv.ParseInt(a, 10, 64)
	end, err2 := strconv.ParseInt(strings.Split(b, "/")[0], 10, 64)
	return start, end, err1 == nil && err2 == nil && start >= 0 && end >= start
}

// patchUpload answers PATCH: one chunk (with Content-Range) or a stream.
func (s *Server) patchUpload(w http.ResponseWriter, r *http.Request, name, id string) {
	u := s.state(id)
	u.mu.Lock()
	defer u.mu.Unlock()
	if !s.appendChunk(w, r, name, id, u) {
		return
	}
	s.uploadStatus(w, name, id, http.StatusAccepted)
}

// finishUpload answers PUT ?digest= (and a monolithic POST): append the
// body, check the whole content against the digest, fsync, and rename it
// into blobs/; a mismatch is 400 DIGEST_INVALID and the upload is gone.
func (s *Server) finishUpload(w http.ResponseWriter, r *http.Request, name, id string) {
	u := s.state(id)
	u.mu.Lock()
	defer u.mu.Unlock()
	d, err := parseDigest(r.URL.Query().Get("digest"))
	if err != nil {
		writeError(w, http.StatusBadRequest, "DIGEST_INVALID", err.Error())
		return
	}
	if !s.appendChunk(w, r, name, id, u) {
		return
	}
	dir := s.store.uploadDir(id)
	data := filepath.Join(dir, "data")
	got, err := s.contentDigest(data, d.Algorithm(), u)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "UNKNOWN", err.Error())
		return
	}
	if got != d {
		s.uploads.Delete(id)
		os.RemoveAll(dir)
		writeError(w, http.StatusBadRequest, "DIGEST_INVALID", fmt.Sprintf("digest mismatch: expected %s, content is %s", d, got))
		return
	}
	if err := s.store.publishBlob(name, d, data); err != nil {
		writeError(w, http.StatusInternalServerError, "UNKNOWN", err.Error())
		return
	}
	s.uploads.Delete(id)
	os.RemoveAll(dir)
	blobCreated(w, name, d)
}

// contentDigest fsyncs the upload's data and returns its digest with
// algorithm alg, from the running hash when it covers the whole file.
func (s *Server) contentDigest(p string, alg digest.Algorithm, u *upload) (digest.Digest, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return "", fmt.Errorf("fsync upload: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		return "", err
	}
	if alg == digest.SHA256 && u.n == st.Size() {
		// Sum on a copy of the state, so a retried PUT still works.
		c := sha256.New()
		b, _ := u.h.(encoding.BinaryMarshaler).MarshalBinary()
		c.(encoding.BinaryUnmarshaler).UnmarshalBinary(b)
		return digest.NewDigest(alg, c), nil
	}
	if !alg.Available() {
		return "", fmt.Errorf("digest algorithm %q not available", alg)
	}
	return alg.FromReader(f)
}

// blobCreated answers 201 with the blob's Location.
func blobCreated(w http.ResponseWriter, name string, d digest.Digest) {
	w.Header().Set("Location", "/v2/"+name+"/blobs/"+d.String())
	w.Header().Set("Docker-Content-Digest", d.String())
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
}

// removeStaleUploads deletes uploads untouched for longer than age.
func (s *storage) removeStaleUploads(age time.Duration) {
	ents, err := os.ReadDir(filepath.Join(s.root, "uploads"))
	if err != nil {
		return
	}
	for _, e := range ents {
		st, err := os.Stat(filepath.Join(s.uploadDir(e.Name()), "data"))
		if errors.Is(err, fs.ErrNotExist) || (err == nil && time.Since(st.ModTime()) > age) {
			os.RemoveAll(s.uploadDir(e.Name()))
		}
	}
}
