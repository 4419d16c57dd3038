package build

import (
	"context"
	"io"

	"minidock/image"
)

// Backend is what the builder asks of the engine: images, containers and
// commits, the engine's own parts; the builder only puts them in a loop.
// The daemon implements it with its plain Go methods; build's tests with
// the real image store, overlay mounts and runc.
type Backend interface {
	// GetImage finds the image ref names (name[:tag], name@digest or an
	// ID), pulling it when the store lacks it or opts.Pull is set, and
	// writes the pull's progress messages to opts.Out.
	GetImage(ctx context.Context, ref string, opts GetImageOptions) (*Image, error)

	// CreateContainer makes a container of cfg, not started, with its
	// root filesystem (cfg.Image's layers under a new upper dir)
	// mounted, and returns its ID and the host path of that root. The
	// builder writes COPY's files and WORKDIR's directories there.
	CreateContainer(ctx context.Context, cfg ContainerConfig) (*Container, error)

	// RunContainer starts container id, copies what its process writes
	// to stdout and stderr to out, waits for it to exit, and returns its
	// exit code. Cancelling ctx kills it.
	RunContainer(ctx context.Context, id string, out io.Writer) (exitCode int, err error)

	// CommitContainer stores the changes of container id as one more
	// layer on its image, and a new image with c's config and one more
	// history entry; it records c.CacheKeys for CachedImage. A container
	// that changed nothing adds no layer (the entry is empty_layer).
	CommitContainer(ctx context.Context, id string, c Commit) (imageID string, err error)

	// RemoveContainer removes container id: its process if one is left,
	// its mount, its upper dir, its record.
	RemoveContainer(ctx context.Context, id string) error

	// CreateImage stores an image with the layers of image parent ("":
	// none, FROM scratch), c's config and one more history entry marked
	// empty_layer, and records c.CacheKeys: a step that changes only the
	// config (ENV, CMD, LABEL, ...).
	CreateImage(ctx context.Context, parent string, c Commit) (imageID string, err error)

	// CachedImage returns the ID of the image a step with cache key key
	// made, or "" when the store holds none.
	CachedImage(ctx context.Context, key string) (imageID string, err error)

	// TagImage points reference ref at image id.
	TagImage(ctx context.Context, id, ref string) error
}

// GetImageOptions are GetImage's options.
type GetImageOptions struct {
	Pull     bool      // pull even when the store has the image (build --pull)
	Platform string    // "" or "linux/amd64" (FROM --platform)
	Out      io.Writer // pull progress, as JSON stream messages
}

// Image is a base image or a step's image, as the builder sees it.
type Image struct {
	ID     string          // "sha256:..."
	Config image.RunConfig // its runtime config
}

// ContainerConfig describes a step's container.
type ContainerConfig struct {
	// Image is the image ID whose layers make the root filesystem; ""
	// is the empty image (FROM scratch).
	Image string
	// Cmd is the process to run (shell and command, or the exec form);
	// nil for a container that is only written into (COPY, WORKDIR).
	Cmd        []string
	Env        []string // the image's ENV, then the build args in scope
	User       string   // USER: name or uid, optional :group
	WorkingDir string   // WORKDIR
	// NetworkMode is "default" (the engine's default network), "host"
	// or "none".
	NetworkMode string
}

// Container is a step's container.
type Container struct {
	ID   string
	Root string // host path of its mounted root filesystem
}

// Commit describes the image a step makes.
type Commit struct {
	Config    image.RunConfig // the new image's runtime config
	Author    string          // MAINTAINER
	CreatedBy string          // the history entry's created_by
	// CacheKeys are the keys CachedImage will find the new image by.
	CacheKeys []string
}
