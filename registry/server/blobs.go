package server

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"strconv"
)

// blobRoute answers GET, HEAD and DELETE /v2/<name>/blobs/<digest>.
// GET supports Range requests (http.ServeContent).
func (s *Server) blobRoute(w http.ResponseWriter, r *http.Request, name, ref string) {
	d, err := parseDigest(ref)
	if err != nil {
		writeError(w, http.StatusBadRequest, "DIGEST_INVALID", err.Error())
		return
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		if !s.store.hasBlob(name, d) {
			writeError(w, http.StatusNotFound, "BLOB_UNKNOWN", fmt.Sprintf("blob %s not known to repository %q", d, name))
			return
		}
		f, err := os.Open(s.store.blobPath(d))
		if err != nil {
			writeError(w, http.StatusNotFound, "BLOB_UNKNOWN", fmt.Sprintf("blob %s: %v", d, err))
			return
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil {
			writeError(w, http.StatusInternalServerError, "UNKNOWN", err.Error())
			return
		}
		w.Header().Set("Docker-Content-Digest", d.String())
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Etag", `"`+d.String()+`"`)
		w.Header().Set("Cache-Control", "max-age=31536000")
		if r.Method == http.MethodHead {
			w.Header().Set("Content-Length", strconv.FormatInt(st.Size(), 10))
			w.Header().Set("Accept-Ranges", "bytes")
			w.WriteHeader(http.StatusOK)
			return
		}
		http.ServeContent(w, r, "", st.ModTime(), f)
	case http.MethodDelete:
		if err := s.store.unlinkBlob(name, d); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				writeError(w, http.StatusNotFound, "BLOB_UNKNOWN", fmt.Sprintf("blob %s not known to repository %q", d, name))
				return
			}
			writeError(w, http.StatusInternalServerError, "UNKNOWN", err.Error())
			return
		}
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusAccepted)
	default:
		writeError(w, http.StatusMethodNotAllowed, "UNSUPPORTED", "method "+r.Method+" not allowed on a blob")
	}
}
