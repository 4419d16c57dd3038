package daemon

import (
	"context"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"minidock/api"
	"minidock/internal/errdefs"
	"minidock/registry"
)

// PullOptions are the choices of one pull.
type PullOptions struct {
	// Platform is "os/arch[/variant]" to pick from a multi-platform
	// image; "": linux and this machine's architecture.
	Platform string
	// Auth are the credentials of X-Registry-Auth; nil: anonymous.
	Auth *api.AuthConfig
	// Progress receives Docker's progress messages as they happen
	// (Pulling fs layer, Downloading with byte counts, Pull complete,
	// Digest, Status); nil: none.
	Progress func(api.JSONMessage)
}

// PullImage is POST /images/create?fromImage= (`docker pull`): the
// registry client (registry.Client.Pull) resolves ref to a manifest,
// downloads the layers the store lacks, verifies every blob against its
// digest and unpacks it into the image store, then tags the image ref.
// It returns the image ID. A bad reference is 400, an image the registry
// does not have (or will not show) 404, refused credentials 401; on any
// error the store is unchanged.
func (d *Daemon) PullImage(ctx context.Context, ref string, o PullOptions) (string, error) {
	r, err := parseRemoteRef(ref)
	if err != nil {
		return "", err
	}
	opts := registry.PullOptions{Auth: o.Auth, Progress: progressTo(o.Progress)}
	if o.Platform != "" {
		p, err := registry.ParsePlatform(o.Platform)
		if err != nil {
			return "", errdefs.Wrap(errdefs.InvalidParameter, err)
		}
		opts.Platform = &ocispec.Platform{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant}
	}
	img, err := d.registry.Pull(ctx, d.images, r.String(), opts)
	if err != nil {
		return "", registryError(err)
	}
	d.emitImage(r, "pull")
	return img.ID.String(), nil
}
