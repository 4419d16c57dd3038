package server

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// storage is the registry's on-disk state under one root directory:
//
//	blobs/<alg>/<hex>                        every blob and manifest, by content
//	uploads/<id>/data, uploads/<id>/repo     uploads in progress
//	repositories/<name>/_blobs/<alg>/<hex>   empty: the repository may serve that blob
//	repositories/<name>/_manifests/<alg>/<hex>  holds the manifest's media type
//	repositories/<name>/_tags/<tag>          holds the digest the tag points at
//	repositories/<name>/_referrers/<alg>/<subject-hex>/<alg>-<hex>
//	                                         holds the referrer's descriptor (JSON)
//
// Content enters blobs/ only by rename(2) of a complete, verified, fsynced
// file, so a blob is either whole under its name or absent; the links of
// a repository are written the same way (temporary file, fsync, rename).
// Repository subdirectories start with '_', which no name component may,
// so a repository "a" and a repository "a/_blobs" cannot collide.
type storage struct {
	root string
	// mu orders linking and unlinking, so that a blob deleted from its
	// last repository is not removed from blobs/ while another repository
	// links it (blob DELETE against upload or mount).
	mu sync.Mutex
}

func newStorage(root string) (*storage, error) {
	for _, d := range []string{"blobs", "uploads", "repositories"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			return nil, fmt.Errorf("registry storage %q: %w", root, err)
		}
	}
	return &storage{root: root}, nil
}

func (s *storage) blobPath(d digest.Digest) string {
	return filepath.Join(s.root, "blobs", d.Algorithm().String(), d.Encoded())
}

func (s *storage) repoPath(name string, parts ...string) string {
	return filepath.Join(append([]string{s.root, "repositories", filepath.FromSlash(name)}, parts...)...)
}

func (s *storage) blobLink(name string, d digest.Digest) string {
	return s.repoPath(name, "_blobs", d.Algorithm().String(), d.Encoded())
}

func (s *storage) manifestLink(name string, d digest.Digest) string {
	return s.repoPath(name, "_manifests", d.Algorithm().String(), d.Encoded())
}

func (s *storage) tagPath(name, tag string) string {
	return s.repoPath(name, "_tags", tag)
}

func (s *storage) referrersDir(name string, subject digest.Digest) string {
	return s.repoPath(name, "_referrers", subject.Algorithm().String(), subject.Encoded())
}

// hasBlob tells whether repository name may serve blob d.
func (s *storage) hasBlob(name string, d digest.Digest) bool {
	_, err := os.Stat(s.blobLink(name, d))
	if err != nil {
		return false
	}
	_, err = os.Stat(s.blobPath(d))
	return err == nil
}

// blobExists tells whether any repository holds blob d.
func (s *storage) blobExists(d digest.Digest) bool {
	_, err := os.Stat(s.blobPath(d))
	return err == nil
}

// publishBlob moves the complete, verified file tmp to the content address
// of d (unless the content is already there) and links it into
// repository name.
func (s *storage) publishBlob(name string, d digest.Digest, tmp string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	dst := s.blobPath(d)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if _, err := os.Stat(dst); err == nil {
		os.Remove(tmp)
	} else {
		if err := os.Rename(tmp, dst); err != nil {
			return fmt.Errorf("store blob %s: %w", d, err)
		}
		if err := syncDir(filepath.Dir(dst)); err != nil {
			return err
		}
	}
	return writeFileAtomic(s.blobLink(name, d), nil)
}

// linkBlob makes blob d, already stored, visible in repository name
// (a cross-repository mount). It fails when the blob is not stored.
func (s *storage) linkBlob(name string, d digest.Digest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.blobExists(d) {
		return fs.ErrNotExist
	}
	return writeFileAtomic(s.blobLink(name, d), nil)
}

// unlinkBlob removes blob d from repository name, and from blobs/ once no
// repository links it any more.
func (s *storage) unlinkBlob(name string, d digest.Digest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := os.Remove(s.blobLink(name, d)); err != nil {
		return err
	}
	if !s.linkedAnywhere(d) {
		os.Remove(s.blobPath(d))
	}
	return nil
}

// linkedAnywhere tells whether any repository links d as a blob or a
// manifest.
func (s *storage) linkedAnywhere(d digest.Digest) bool {
	found := false
	rel := filepath.Join(d.Algorithm().String(), d.Encoded())
	for _, repo := range s.repositories() {
		for _, kind := range []string{"_blobs", "_manifests"} {
			if _, err := os.Stat(s.repoPath(repo, kind, rel)); err == nil {
				found = true
			}
		}
	}
	return found
}

// repositories lists the names of every repository, sorted.
func (s *storage) repositories() []string {
	var names []string
	top := filepath.Join(s.root, "repositories")
	filepath.WalkDir(top, func(p string, e fs.DirEntry, err error) error {
		if err != nil || !e.IsDir() {
			return nil
		}
		if strings.HasPrefix(e.Name(), "_") {
			if rel, err := filepath.Rel(top, filepath.Dir(p)); err == nil && rel != "." {
				if len(names) == 0 || names[len(names)-1] != filepath.ToSlash(rel) {
					names = append(names, filepath.ToSlash(rel))
				}
			}
			return filepath.SkipDir
		}
		return nil
	})
	sort.Strings(names)
	return uniq(names)
}

func uniq(s []string) []string {
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}

// repoExists tells whether anything was ever pushed to repository name.
func (s *storage) repoExists(name string) bool {
	for _, kind := range []string{"_blobs", "_manifests", "_tags"} {
		if _, err := os.Stat(s.repoPath(name, kind)); err == nil {
			return true
		}
	}
	return false
}

// tags lists the tags of repository name, sorted.
func (s *storage) tags(name string) ([]string, error) {
	ents, err := os.ReadDir(s.repoPath(name, "_tags"))
	if errors.Is(err, fs.ErrNotExist) {
		return []string{}, nil
	}
	if err != nil {
		return nil, err
	}
	out := []string{}
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), ".tmp-") {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out, nil
}

// resolveTag reads the digest a tag points at.
func (s *storage) resolveTag(name, tag string) (digest.Digest, error) {
	b, err := os.ReadFile(s.tagPath(name, tag))
	if err != nil {
		return "", err
	}
	return digest.Parse(strings.TrimSpace(string(b)))
}

// newUploadID makes a random upload session name.
func newUploadID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (s *storage) uploadDir(id string) string { return filepath.Join(s.root, "uploads", id) }

// writeFileAtomic writes data to p (creating its directory): temporary
// file in the same directory, fsync, rename, fsync the directory.
func writeFileAtomic(p string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(p), ".tmp-"+filepath.Base(p)+"-")
	if err != nil {
		return fmt.Errorf("write %q: %w", p, err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(f.Name(), p)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("write %q: %w", p, err)
	}
	return syncDir(filepath.Dir(p))
}

// syncDir fsyncs a directory so that a rename into it is durable.
func syncDir(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("fsync %q: %w", dir, err)
	}
	defer unix.Close(fd)
	if err := unix.Fsync(fd); err != nil {
		return fmt.Errorf("fsync %q: %w", dir, err)
	}
	return nil
}

// copyTo appends r to f (and to h, a hash, when set) and returns the
// number of bytes written.
func copyTo(f *os.File, r io.Reader, h io.Writer) (int64, error) {
	w := io.Writer(f)
	if h != nil {
		w = io.MultiWriter(f, h)
	}
	return io.CopyBuffer(w, r, make([]byte, 256<<10))
}
