package image

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// RunConfig is the runtime part of an image config (the "config" key of
// the config blob) as Docker writes it: the OCI fields, and the three
// that Docker keeps beside them and OCI does not define. Reading a config
// into ocispec.Image drops those three; the store reads and writes
// configs through RunConfig so that a commit or a build keeps them.
type RunConfig struct {
	ocispec.ImageConfig
	// Healthcheck is HEALTHCHECK's test and timings.
	Healthcheck *HealthConfig `json:",omitempty"`
	// OnBuild holds ONBUILD's triggers, run when the image is used as a
	// build's base.
	OnBuild []string `json:",omitempty"`
	// Shell is SHELL's command line for shell-form instructions.
	Shell []string `json:",omitempty"`
}

// HealthConfig is an image's health check, in Docker's JSON shape
// (durations in nanoseconds).
type HealthConfig struct {
	// Test is ["NONE"], ["CMD", args...] or ["CMD-SHELL", command].
	Test          []string      `json:",omitempty"`
	Interval      time.Duration `json:",omitempty"`
	Timeout       time.Duration `json:",omitempty"`
	StartPeriod   time.Duration `json:",omitempty"`
	StartInterval time.Duration `json:",omitempty"`
	Retries       int           `json:",omitempty"`
}

// dockerImage is a config blob with its runtime config read as RunConfig:
// the outer Config field hides the embedded ocispec.Image's one for
// encoding/json.
type dockerImage struct {
	ocispec.Image
	Config RunConfig `json:"config,omitempty"`
}

// EmptyLayer is the diff ID of a layer tar with no entry (1024 zero
// bytes): a container that changed nothing. Commit adds no such layer;
// the history entry says empty_layer instead, as Docker's does.
const EmptyLayer = digest.Digest("sha256:5f70bf18a086007016e948b04aed3b82103a36bea41755b6cddfaf10ace3c6ef")

// RunConfig returns the runtime config of the image ref resolves to,
// with Docker's Healthcheck, OnBuild and Shell.
func (s *Store) RunConfig(ref string) (*RunConfig, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	img, _, err := s.resolve(ref)
	if err != nil {
		return nil, err
	}
	di, err := s.readDockerImage(img.ID)
	if err != nil {
		return nil, err
	}
	return &di.Config, nil
}

// readDockerImage reads and parses config blob id. Called locked.
func (s *Store) readDockerImage(id digest.Digest) (*dockerImage, error) {
	b, err := s.readBlob(id)
	if err != nil {
		return nil, err
	}
	var di dockerImage
	if err := json.Unmarshal(b, &di); err != nil {
		return nil, fmt.Errorf("parse image config %s: %w", id, err)
	}
	return &di, nil
}

// childConfig makes the config of an image one step on from parent (nil:
// an empty image, FROM scratch): the runtime config of opts (or the
// parent's), with opts.Changes applied; diffID appended to the layers
// unless it is "" or EmptyLayer; one more history entry.
func childConfig(parent *dockerImage, diffID digest.Digest, opts CommitOptions, createdBy string) ([]byte, error) {
	var cfg dockerImage
	if parent != nil {
		cfg = *parent
		cfg.RootFS.DiffIDs = append([]digest.Digest(nil), parent.RootFS.DiffIDs...)
		cfg.History = append([]ocispec.History(nil), parent.History...)
	} else {
		cfg.OS, cfg.Architecture = "linux", runtime.GOARCH
	}
	if opts.RunConfig != nil {
		cfg.Config = *opts.RunConfig
	}
	now := time.Now().UTC()
	cfg.Created = &now
	cfg.Author = opts.Author
	cfg.RootFS.Type = "layers"
	empty := diffID == "" || diffID == EmptyLayer
	if !empty {
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, diffID)
	}
	cfg.History = append(cfg.History, ocispec.History{Created: &now, Author: opts.Author, CreatedBy: createdBy, Comment: opts.Comment, EmptyLayer: empty})
	if err := ApplyChanges(&cfg.Config.ImageConfig, opts.Changes); err != nil {
		return nil, err
	}
	return json.Marshal(cfg)
}

// CreateImage stores an image that has the layers of the image parent
// resolves to (none when parent is "": FROM scratch) and a new config:
// opts.RunConfig (or the parent's) with opts.Changes applied, and one
// more history entry marked empty_layer; its parent is the parent
// image. A build's config-only steps (ENV, CMD, LABEL, ...) make their
// images this way.
func (s *Store) CreateImage(parent string, opts CommitOptions) (*Image, error) {
	refs, err := commitRefs(opts.Ref)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var p *dockerImage
	var parentID digest.Digest
	if parent != "" {
		img, _, err := s.resolve(parent)
		if err != nil {
			return nil, fmt.Errorf("create image: %w", err)
		}
		parentID = img.ID
		if p, err = s.readDockerImage(img.ID); err != nil {
			return nil, fmt.Errorf("create image: %w", err)
		}
	}
	cb, err := childConfig(p, "", opts, opts.CreatedBy)
	if err != nil {
		return nil, fmt.Errorf("create image: %w", err)
	}
	var layers []layerBlob
	if p != nil {
		if layers, err = s.storedLayers(p.RootFS.DiffIDs); err != nil {
			return nil, fmt.Errorf("create image: %w", err)
		}
	}
	img, err := s.addChild(cb, layers, refs, parentID)
	if err != nil {
		return nil, fmt.Errorf("create image: %w", err)
	}
	return img.clone(), nil
}

// storedLayers describes layers whose blobs are in the store already.
func (s *Store) storedLayers(diffIDs []digest.Digest) ([]layerBlob, error) {
	layers := make([]layerBlob, 0, len(diffIDs))
	for _, d := range diffIDs {
		st, err := os.Stat(s.blobPath(d))
		if err != nil {
			return nil, fmt.Errorf("layer blob %s: %w", d, err)
		}
		layers = append(layers, layerBlob{diffID: d, size: st.Size()})
	}
	return layers, nil
}

// commitRefs checks the reference a new image is to be tagged with.
func commitRefs(ref string) ([]string, error) {
	if ref == "" {
		return nil, nil
	}
	r, err := ParseReference(ref)
	if err != nil {
		return nil, err
	}
	if r.Digest != "" {
		return nil, fmt.Errorf("commit: reference %q cannot contain a digest", ref)
	}
	return []string{r.String()}, nil
}
