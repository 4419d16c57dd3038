package daemon

import (
	"context"
	"sort"
	"strings"

	"minidock/api"
	"minidock/image"
	"minidock/internal/errdefs"
	"minidock/registry"
)

// PushOptions are the choices of one push.
type PushOptions struct {
	// Auth are the credentials of X-Registry-Auth; nil: anonymous.
	Auth *api.AuthConfig
	// Progress receives Docker's progress messages (Preparing, Pushing
	// with byte counts, Pushed, Layer already exists, Mounted from, the
	// digest line and the aux {"Tag","Digest","Size"}); nil: none.
	Progress func(api.JSONMessage)
}

// PushImage is POST /images/{name}/push?tag= (`docker push`): the
// registry client (registry.Client.Push) uploads the blobs the registry
// lacks (or mounts them from a repository that has them), then the
// manifest. An empty tag pushes every tag the store holds for the
// repository name, one after the other, as Docker does. A tag the store
// lacks is 404, refused credentials 401.
func (d *Daemon) PushImage(ctx context.Context, name, tag string, o PushOptions) error {
	repo, err := parseRemoteRef(name)
	if err != nil {
		return err
	}
	last := name[strings.LastIndexByte(name, '/')+1:]
	named := strings.ContainsAny(last, ":@") // name:tag or name@digest
	var refs []image.Reference
	switch {
	case repo.Digest != "":
		return errdefs.Invalidf("push %s: a digest cannot be pushed; push a tag", name)
	case named && tag != "":
		return errdefs.Invalidf("push %s: the name has a tag already, and tag=%s is given", name, tag)
	case named:
		refs = []image.Reference{repo}
	case tag != "":
		r, err := parseRemoteRef(repo.Name() + ":" + tag)
		if err != nil {
			return err
		}
		refs = []image.Reference{r}
	default:
		if refs = d.tagsOf(repo.Name()); len(refs) == 0 {
			return errdefs.NotFoundf("An image does not exist locally with the tag: %s", repo.FamiliarName())
		}
	}
	for _, r := range refs {
		_, err := d.registry.Push(ctx, d.images, r.String(), registry.PushOptions{Auth: o.Auth, Progress: progressTo(o.Progress)})
		if err != nil {
			return registryError(err)
		}
		d.emitImage(r, "push")
	}
	return nil
}

// tagsOf lists the store's tags of repository name ("localhost:5000/app"),
// sorted.
func (d *Daemon) tagsOf(name string) []image.Reference {
	var out []image.Reference
	for _, img := range d.images.List() {
		for _, s := range img.Refs {
			if r, err := image.ParseReference(s); err == nil && r.Name() == name && r.Tag != "" && r.Digest == "" {
				out = append(out, r)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Tag < out[j].Tag })
	return out
}
