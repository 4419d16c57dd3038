package image

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	"github.com/opencontainers/go-digest"

	"minidock/archive"
	"minidock/internal/trace"
	"minidock/overlay"
)

// Rootfs is a container's copy-on-write root filesystem: the image's
// layers, read-only and shared, under the container's own upper dir.
type Rootfs struct {
	ContainerID string
	ImageID     digest.Digest
	ChainIDs    []digest.Digest // the image's layer stacks, base first
	// Lower are the layers' short-link paths, top-most first: the
	// lowerdir= list of the overlay mount.
	Lower []string
	// Upper, Work and Merged are <root>/containers/<id>/upper, work and
	// merged: the container's changes, overlayfs's scratch dir, and the
	// mount point of the merged view (the OCI bundle's root.path).
	Upper, Work, Merged string
}

// rootfsRecord is <root>/image/rootfs/<container-id>.json. It pins the
// layers and the config blob: they stay while it exists, even if the
// image is removed (by force) meanwhile.
type rootfsRecord struct {
	ContainerID string          `json:"container_id"`
	ImageID     digest.Digest   `json:"image_id"`
	ChainIDs    []digest.Digest `json:"chain_ids"`
	DiffIDs     []digest.Digest `json:"diff_ids"`
}

var containerIDRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$`) })

func (s *Store) recordPath(id string) string {
	return filepath.Join(s.imageDir, "rootfs", id+".json")
}

func (s *Store) rootfsRecords() ([]rootfsRecord, error) {
	ents, err := os.ReadDir(filepath.Join(s.imageDir, "rootfs"))
	if err != nil {
		return nil, fmt.Errorf("read rootfs records: %w", err)
	}
	var out []rootfsRecord
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".json") || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		r, err := s.readRecord(strings.TrimSuffix(e.Name(), ".json"))
		if err != nil {
			return nil, err
		}
		out = append(out, *r)
	}
	return out, nil
}

func (s *Store) readRecord(id string) (*rootfsRecord, error) {
	if !containerIDRE().MatchString(id) {
		return nil, fmt.Errorf("invalid container ID %q", id)
	}
	b, err := os.ReadFile(s.recordPath(id))
	if os.IsNotExist(err) {
		return nil, fmt.Errorf("no rootfs for container %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("read rootfs record of %s: %w", id, err)
	}
	var r rootfsRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("parse rootfs record of %s: %w", id, err)
	}
	return &r, nil
}

func (s *Store) rootfsOf(r *rootfsRecord) (*Rootfs, error) {
	lower, err := s.lowerDirs(r.ChainIDs)
	if err != nil {
		return nil, fmt.Errorf("rootfs of container %s: %w", r.ContainerID, err)
	}
	dir := filepath.Join(s.ctrDir, r.ContainerID)
	if _, err := os.Stat(filepath.Join(dir, "init")); err == nil {
		lower = append([]string{filepath.Join(dir, "init")}, lower...)
	}
	return &Rootfs{
		ContainerID: r.ContainerID, ImageID: r.ImageID, ChainIDs: r.ChainIDs, Lower: lower,
		Upper: filepath.Join(dir, "upper"), Work: filepath.Join(dir, "work"), Merged: filepath.Join(dir, "merged"),
	}, nil
}

// PrepareRootfs creates the root filesystem of a new container from the
// image ref resolves to: empty upper, work and merged directories, and a
// record that keeps the image's layers alive. A ref of "" is no image (a
// build's FROM scratch): the root holds only the init layer's files. It
// does not mount; see Mount.
func (s *Store) PrepareRootfs(containerID, ref string) (*Rootfs, error) {
	if !containerIDRE().MatchString(containerID) {
		return nil, fmt.Errorf("prepare rootfs: invalid container ID %q", containerID)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := &rootfsRecord{ContainerID: containerID}
	if ref != "" {
		img, _, err := s.resolve(ref)
		if err != nil {
			return nil, fmt.Errorf("prepare rootfs of %s: %w", containerID, err)
		}
		rec.ImageID, rec.ChainIDs, rec.DiffIDs = img.ID, img.ChainIDs, img.DiffIDs
	}
	if _, err := os.Stat(s.recordPath(containerID)); err == nil {
		return nil, fmt.Errorf("prepare rootfs: container %s already has one", containerID)
	}
	rfs, err := s.rootfsOf(rec)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(rfs.Upper), 0o711); err != nil {
		return nil, fmt.Errorf("prepare rootfs of %s: %w", containerID, err)
	}
	for _, d := range []string{rfs.Upper, rfs.Work, rfs.Merged} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return nil, fmt.Errorf("prepare rootfs of %s: %w", containerID, err)
		}
	}
	if err := makeInitLayer(filepath.Join(filepath.Dir(rfs.Upper), "init")); err != nil {
		return nil, fmt.Errorf("prepare rootfs of %s: %w", containerID, err)
	}
	if rfs, err = s.rootfsOf(rec); err != nil {
		return nil, err
	}
	b, _ := json.Marshal(rec)
	if err := writeFileAtomic(s.recordPath(containerID), b); err != nil {
		return nil, err
	}
	return rfs, nil
}

// initFiles are the mount points the daemon binds its own files on.
var initFiles = []string{"etc/hosts", "etc/hostname", "etc/resolv.conf"}

// makeInitLayer makes a container's init layer, as Docker does: a
// read-only layer between the image and the container's upper dir that
// holds the mount points of /etc/hosts, /etc/hostname and
// /etc/resolv.conf, so that the runtime need not create them in the upper
// dir, where they would show in diff and be committed into images.
func makeInitLayer(dir string) error {
	for _, f := range initFiles {
		p := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// Rootfs returns the root filesystem prepared for a container.
func (s *Store) Rootfs(containerID string) (*Rootfs, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec, err := s.readRecord(containerID)
	if err != nil {
		return nil, err
	}
	return s.rootfsOf(rec)
}

// Mount mounts a container's overlay at its Merged dir (see
// overlay.MountOverlay) and returns that path. Mounting a mounted rootfs
// is not an error.
func (s *Store) Mount(containerID string) (string, error) { return s.MountTraced(containerID, nil) }

// MountTraced is Mount with the mount(2) traced to t (a container's trace;
// nil: none).
func (s *Store) MountTraced(containerID string, t *trace.Tracer) (string, error) {
	rfs, err := s.Rootfs(containerID)
	if err != nil {
		return "", err
	}
	if m, err := overlay.IsMounted(rfs.Merged); err != nil || m {
		return rfs.Merged, err
	}
	err = overlay.MountOverlay(overlay.Mount{Lower: rfs.Lower, Upper: rfs.Upper, Work: rfs.Work, Target: rfs.Merged, Trace: t})
	if err != nil {
		return "", fmt.Errorf("mount rootfs of %s: %w", containerID, err)
	}
	return rfs.Merged, nil
}

// Unmount unmounts a container's overlay; unmounted already is fine.
func (s *Store) Unmount(containerID string) error {
	rfs, err := s.Rootfs(containerID)
	if err != nil {
		return err
	}
	if err := overlay.Unmount(rfs.Merged); err != nil {
		return err
	}
	return unmountIDMapped(rfs) // idmap.go: the layers of a remapped container
}

// RemoveRootfs unmounts a container's overlay, deletes its upper, work and
// merged dirs (and <root>/containers/<id> if that is then empty) and its
// record, then removes the layers nothing uses any more.
func (s *Store) RemoveRootfs(containerID string) error {
	rfs, err := s.Rootfs(containerID)
	if err != nil {
		return err
	}
	if err := overlay.Unmount(rfs.Merged); err != nil {
		return fmt.Errorf("remove rootfs of %s: %w", containerID, err)
	}
	if err := unmountIDMapped(rfs); err != nil {
		return fmt.Errorf("remove rootfs of %s: %w", containerID, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range []string{rfs.Upper, rfs.Work, rfs.Merged, filepath.Join(filepath.Dir(rfs.Upper), "init")} {
		if err := os.RemoveAll(d); err != nil {
			return fmt.Errorf("remove rootfs of %s: %w", containerID, err)
		}
	}
	os.Remove(filepath.Dir(rfs.Upper)) // only if empty: the rest is the daemon's
	if err := os.Remove(s.recordPath(containerID)); err != nil {
		return fmt.Errorf("remove rootfs of %s: %w", containerID, err)
	}
	_, err = s.gc()
	return err
}

// Diff lists what a container changed over its image (docker diff),
// reading its upper dir; it works mounted or not.
func (s *Store) Diff(containerID string) ([]overlay.Change, error) {
	rfs, err := s.Rootfs(containerID)
	if err != nil {
		return nil, err
	}
	return overlay.Changes(rfs.Upper, rfs.Lower)
}

// Export writes a container's whole filesystem, as the container sees it,
// to w as a tar (docker export). An unmounted rootfs is mounted for the
// time of the export.
func (s *Store) Export(containerID string, w io.Writer) (err error) {
	rfs, err := s.Rootfs(containerID)
	if err != nil {
		return err
	}
	mounted, err := overlay.IsMounted(rfs.Merged)
	if err != nil {
		return err
	}
	if !mounted {
		if _, err := s.Mount(containerID); err != nil {
			return err
		}
		defer func() {
			if uerr := overlay.Unmount(rfs.Merged); err == nil {
				err = uerr
			}
		}()
	}
	if err := archive.WriteTree(w, rfs.Merged); err != nil {
		return fmt.Errorf("export container %s: %w", containerID, err)
	}
	return nil
}

// CommitOptions describe the image Commit (or CreateImage) makes.
type CommitOptions struct {
	Ref       string   // reference to tag the new image with; may be empty
	Author    string   // config author
	Comment   string   // history comment
	Changes   []string // Dockerfile-like config changes: "CMD [\"sh\"]", "ENV A=b", ...
	CreatedBy string   // history created_by (docker: the container's command); default "minidock commit ID"
	// RunConfig, when set, is the new image's runtime config instead of
	// the parent image's (Changes still apply on top): a build commits
	// the config its instructions made so far.
	RunConfig *RunConfig
	// Filter, when set, rewrites the layer's tar stream before it is
	// stored: the daemon shifts the host ids of a container under
	// --userns-remap back to the container's.
	Filter func(io.Reader) io.Reader
}

// Commit turns a container's changes into a new image: its upper dir
// becomes one more layer (archive.WriteDiff: whiteouts become .wh.
// entries) on top of the container's image, and the image's config, with
// the layer's diff ID appended, a history entry and the changes applied,
// becomes the new config. A container that changed nothing adds no layer
// (EmptyLayer): its history entry is marked empty_layer, as Docker's is.
// The container's image is the new image's parent.
func (s *Store) Commit(containerID string, opts CommitOptions) (*Image, error) {
	refs, err := commitRefs(opts.Ref)
	if err != nil {
		return nil, err
	}
	rfs, err := s.Rootfs(containerID)
	if err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(archive.WriteDiff(pw, rfs.Upper)) }()
	var layer io.Reader = pr
	if opts.Filter != nil {
		layer = opts.Filter(pr)
	}
	tb, err := s.spool(layer)
	pr.CloseWithError(errors.New("spool stopped"))
	if err != nil {
		return nil, fmt.Errorf("commit container %s: %w", containerID, err)
	}
	defer os.Remove(tb.path)

	s.mu.Lock()
	defer s.mu.Unlock()
	var parent *dockerImage // nil: a container of no image (scratch)
	var parentLayers []digest.Digest
	if rfs.ImageID != "" {
		if parent, err = s.readDockerImage(rfs.ImageID); err != nil {
			return nil, fmt.Errorf("commit container %s: %w", containerID, err)
		}
		parentLayers = parent.RootFS.DiffIDs
	}
	createdBy := opts.CreatedBy
	if createdBy == "" {
		createdBy = "minidock commit " + containerID
	}
	nb, err := childConfig(parent, tb.digest, opts, createdBy)
	if err != nil {
		return nil, fmt.Errorf("commit container %s: %w", containerID, err)
	}
	layers, err := s.storedLayers(parentLayers)
	if err != nil {
		return nil, fmt.Errorf("commit container %s: layers of its image: %w", containerID, err)
	}
	if tb.digest != EmptyLayer {
		layers = append(layers, layerBlob{diffID: tb.digest, size: tb.size, temp: tb})
	}
	img, err := s.addChild(nb, layers, refs, rfs.ImageID)
	if err != nil {
		return nil, fmt.Errorf("commit container %s: %w", containerID, err)
	}
	return img.clone(), nil
}
