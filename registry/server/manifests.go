package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// manifestFields are the parts of an image manifest or index that the
// registry reads: what it references, and what the referrers API lists.
type manifestFields struct {
	MediaType    string               `json:"mediaType"`
	ArtifactType string               `json:"artifactType"`
	Config       *ocispec.Descriptor  `json:"config"`
	Layers       []ocispec.Descriptor `json:"layers"`
	Manifests    []ocispec.Descriptor `json:"manifests"`
	Subject      *ocispec.Descriptor  `json:"subject"`
	Annotations  map[string]string    `json:"annotations"`
}

// manifestRoute answers GET, HEAD, PUT and DELETE
// /v2/<name>/manifests/<tag or digest>.
func (s *Server) manifestRoute(w http.ResponseWriter, r *http.Request, name, ref string) {
	isDigest := strings.Contains(ref, ":")
	if !isDigest && !tagRE().MatchString(ref) {
		writeError(w, http.StatusBadRequest, "TAG_INVALID", fmt.Sprintf("invalid tag %q", ref))
		return
	}
	var d digest.Digest
	if isDigest {
		var err error
		if d, err = parseDigest(ref); err != nil {
			writeError(w, http.StatusBadRequest, "DIGEST_INVALID", err.Error())
			return
		}
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		s.getManifest(w, r, name, ref, d)
	case http.MethodPut:
		s.putManifest(w, r, name, ref, d)
	case http.MethodDelete:
		s.deleteManifest(w, name, ref, d)
	default:
		writeError(w, http.StatusMethodNotAllowed, "UNSUPPORTED", "method "+r.Method+" not allowed on a manifest")
	}
}

// getManifest serves a manifest with the media type it was pushed with.
func (s *Server) getManifest(w http.ResponseWriter, r *http.Request, name, ref string, d digest.Digest) {
	if !s.store.repoExists(name) {
		writeError(w, http.StatusNotFound, "NAME_UNKNOWN", fmt.Sprintf("repository %q not known to registry", name))
		return
	}
	if d == "" {
		var err error
		if d, err = s.store.resolveTag(name, ref); err != nil {
			writeError(w, http.StatusNotFound, "MANIFEST_UNKNOWN", fmt.Sprintf("manifest tagged %q not known to repository %q", ref, name))
			return
		}
	}
	mt, err := os.ReadFile(s.store.manifestLink(name, d))
	if err != nil {
		writeError(w, http.StatusNotFound, "MANIFEST_UNKNOWN", fmt.Sprintf("manifest %s not known to repository %q", d, name))
		return
	}
	b, err := os.ReadFile(s.store.blobPath(d))
	if err != nil {
		writeError(w, http.StatusNotFound, "MANIFEST_UNKNOWN", fmt.Sprintf("manifest %s: %v", d, err))
		return
	}
	w.Header().Set("Content-Type", string(mt))
	w.Header().Set("Docker-Content-Digest", d.String())
	w.Header().Set("Etag", `"`+d.String()+`"`)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		w.Write(b)
	}
}

// putManifest stores a manifest: at most 4 MiB of JSON, matching the
// digest it is pushed by, whose config and layers (or, for an index,
// manifests) the repository holds; then tags it when pushed by tag (or
// with ?tag=), and records it as a referrer of its subject.
func (s *Server) putManifest(w http.ResponseWriter, r *http.Request, name, ref string, d digest.Digest) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxManifestSize+1))
	if err != nil {
		writeError(w, http.StatusBadRequest, "MANIFEST_INVALID", fmt.Sprintf("reading manifest: %v", err))
		return
	}
	if len(body) > maxManifestSize {
		writeError(w, http.StatusRequestEntityTooLarge, "SIZE_INVALID", fmt.Sprintf("manifest larger than %d bytes", maxManifestSize))
		return
	}
	var m manifestFields
	if err := json.Unmarshal(body, &m); err != nil {
		writeError(w, http.StatusBadRequest, "MANIFEST_INVALID", fmt.Sprintf("manifest is not JSON: %v", err))
		return
	}
	mt := r.Header.Get("Content-Type")
	if i := strings.IndexByte(mt, ';'); i >= 0 {
		mt = strings.TrimSpace(mt[:i])
	}
	if mt == "" {
		mt = m.MediaType
	}
	if m.MediaType != "" && mt != m.MediaType {
		writeError(w, http.StatusBadRequest, "MANIFEST_INVALID", fmt.Sprintf("Content-Type %q differs from the manifest's mediaType %q", mt, m.MediaType))
		return
	}
	if mt == "" {
		writeError(w, http.StatusBadRequest, "MANIFEST_INVALID", "manifest has no media type (Content-Type or mediaType)")
		return
	}
	alg := digest.Canonical
	if d != "" {
		alg = d.Algorithm()
	}
	got := alg.FromBytes(body)
	if d != "" && got != d {
		writeError(w, http.StatusBadRequest, "DIGEST_INVALID", fmt.Sprintf("digest mismatch: pushed as %s, content is %s", d, got))
		return
	}
	if missing := s.missingReferences(name, &m); missing != "" {
		writeError(w, http.StatusBadRequest, "MANIFEST_BLOB_UNKNOWN", fmt.Sprintf("manifest references %s, which repository %q does not hold", missing, name))
		return
	}
	tmp, err := os.CreateTemp(filepath.Join(s.store.root, "uploads"), ".manifest-")
	if err == nil {
		_, err = tmp.Write(body)
		if err == nil {
			err = tmp.Sync()
		}
		tmp.Close()
	}
	if err == nil {
		err = s.publishManifest(name, got, tmp.Name(), mt)
	}
	if err != nil {
		os.Remove(tmp.Name())
		writeError(w, http.StatusInternalServerError, "UNKNOWN", err.Error())
		return
	}
	tags := r.URL.Query()["tag"]
	if d == "" {
		tags = append([]string{ref}, tags...)
	}
	for _, t := range tags {
		if !tagRE().MatchString(t) {
			writeError(w, http.StatusBadRequest, "TAG_INVALID", fmt.Sprintf("invalid tag %q", t))
			return
		}
		if err := writeFileAtomic(s.store.tagPath(name, t), []byte(got.String())); err != nil {
			writeError(w, http.StatusInternalServerError, "UNKNOWN", err.Error())
			return
		}
		w.Header().Add("OCI-Tag", t)
	}
	if m.Subject != nil {
		if err := s.addReferrer(name, got, mt, int64(len(body)), &m); err != nil {
			writeError(w, http.StatusInternalServerError, "UNKNOWN", err.Error())
			return
		}
		w.Header().Set("OCI-Subject", m.Subject.Digest.String())
	}
	w.Header().Set("Location", "/v2/"+name+"/manifests/"+got.String())
	w.Header().Set("Docker-Content-Digest", got.String())
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
}

// publishManifest stores the manifest's bytes as a blob and links it into
// the repository with its media type.
func (s *Server) publishManifest(name string, d digest.Digest, tmp, mediaType string) error {
	st := s.store
	st.mu.Lock()
	defer st.mu.Unlock()
	dst := st.blobPath(d)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if _, err := os.Stat(dst); err == nil {
		os.Remove(tmp)
	} else if err := os.Rename(tmp, dst); err != nil {
		return fmt.Errorf("store manifest %s: %w", d, err)
	} else if err := syncDir(filepath.Dir(dst)); err != nil {
		return err
	}
	return writeFileAtomic(st.manifestLink(name, d), []byte(mediaType))
}

// missingReferences names the first descriptor of m that the repository
// lacks: the config and layers of an image manifest (except layers meant
// to be fetched elsewhere: with URLs or non-distributable), or the
// manifests of an index. The subject may be missing (it can be pushed
// later).
func (s *Server) missingReferences(name string, m *manifestFields) string {
	if m.Config != nil && m.Config.Digest != "" && !s.store.hasBlob(name, m.Config.Digest) {
		return "config " + m.Config.Digest.String()
	}
	for _, l := range m.Layers {
		if len(l.URLs) > 0 || strings.Contains(l.MediaType, "nondistributable") || strings.Contains(l.MediaType, "foreign") {
			continue
		}
		if !s.store.hasBlob(name, l.Digest) {
			return "layer " + l.Digest.String()
		}
	}
	for _, c := range m.Manifests {
		if _, err := os.Stat(s.store.manifestLink(name, c.Digest)); err != nil {
			return "manifest " + c.Digest.String()
		}
	}
	return ""
}

// deleteManifest removes a tag (by tag), or a manifest with every tag
// pointing at it and its referrer entry (by digest).
func (s *Server) deleteManifest(w http.ResponseWriter, name, ref string, d digest.Digest) {
	if d == "" {
		if err := os.Remove(s.store.tagPath(name, ref)); err != nil {
			writeError(w, http.StatusNotFound, "MANIFEST_UNKNOWN", fmt.Sprintf("tag %q not known to repository %q", ref, name))
			return
		}
		w.WriteHeader(http.StatusAccepted)
		return
	}
	link := s.store.manifestLink(name, d)
	if _, err := os.Stat(link); errors.Is(err, fs.ErrNotExist) {
		writeError(w, http.StatusNotFound, "MANIFEST_UNKNOWN", fmt.Sprintf("manifest %s not known to repository %q", d, name))
		return
	}
	tags, _ := s.store.tags(name)
	for _, t := range tags {
		if td, err := s.store.resolveTag(name, t); err == nil && td == d {
			os.Remove(s.store.tagPath(name, t))
		}
	}
	if b, err := os.ReadFile(s.store.blobPath(d)); err == nil {
		var m manifestFields
		if json.Unmarshal(b, &m) == nil && m.Subject != nil {
			os.Remove(filepath.Join(s.store.referrersDir(name, m.Subject.Digest), referrerFile(d)))
		}
	}
	s.store.mu.Lock()
	err := os.Remove(link)
	if err == nil && !s.store.linkedAnywhere(d) {
		os.Remove(s.store.blobPath(d))
	}
	s.store.mu.Unlock()
	if err != nil {
		writeError(w, http.StatusInternalServerError, "UNKNOWN", err.Error())
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

func referrerFile(d digest.Digest) string { return d.Algorithm().String() + "-" + d.Encoded() }

// addReferrer records manifest d (with a subject) under its subject, as
// the descriptor the referrers API returns: its artifactType, or else its
// config's media type.
func (s *Server) addReferrer(name string, d digest.Digest, mediaType string, size int64, m *manifestFields) error {
	desc := ocispec.Descriptor{MediaType: mediaType, Digest: d, Size: size, ArtifactType: m.ArtifactType, Annotations: m.Annotations}
	if desc.ArtifactType == "" && m.Config != nil {
		desc.ArtifactType = m.Config.MediaType
	}
	b, err := json.Marshal(desc)
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(s.store.referrersDir(name, m.Subject.Digest), referrerFile(d)), b)
}

// referrers answers GET /v2/<name>/referrers/<digest>[?artifactType=]:
// an image index of the manifests whose subject is that digest.
func (s *Server) referrers(w http.ResponseWriter, r *http.Request, name, ref string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		writeError(w, http.StatusMethodNotAllowed, "UNSUPPORTED", "referrers is GET only")
		return
	}
	subject, err := parseDigest(ref)
	if err != nil {
		writeError(w, http.StatusBadRequest, "DIGEST_INVALID", err.Error())
		return
	}
	filter := r.URL.Query().Get("artifactType")
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{}}
	idx.SchemaVersion = 2
	dir := s.store.referrersDir(name, subject)
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".tmp-") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		var desc ocispec.Descriptor
		if json.Unmarshal(b, &desc) != nil {
			continue
		}
		if filter != "" && desc.ArtifactType != filter {
			continue
		}
		idx.Manifests = append(idx.Manifests, desc)
	}
	if filter != "" {
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	var buf bytes.Buffer
	json.NewEncoder(&buf).Encode(idx)
	w.Header().Set("Content-Type", ocispec.MediaTypeImageIndex)
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		w.Write(buf.Bytes())
	}
}
