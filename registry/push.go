package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"minidock/image"
)

// PushOptions are the choices of one push.
type PushOptions struct {
	// Auth are the user's credentials for the registry; nil: anonymous.
	Auth *AuthConfig
	// Progress receives Docker-style progress messages; nil: none.
	Progress ProgressFunc
}

// PushResult is what a push made, as Docker's aux message has it.
type PushResult struct {
	Tag    string
	Digest digest.Digest
	Size   int
}

// pushPlan is a manifest to push and the blobs it needs.
type pushPlan struct {
	manifest  []byte
	mediaType string
	digest    digest.Digest
	blobs     []pushBlob // layers, then the config
}

// pushBlob is one blob of a plan: where it may come from.
type pushBlob struct {
	desc      ocispec.Descriptor
	id        string        // progress id ("" for the config: not shown)
	local     digest.Digest // store blob holding these bytes, or "" (mount only)
	mountFrom string        // repository path on the same registry that has it
}

// errNotMountable says a plan needs a blob that can be neither found on
// the registry, mounted nor uploaded.
var errNotMountable = errors.New("blob cannot be mounted and is not held locally")

// Push uploads the image tagged ref ("localhost:5000/team/app:1") to its
// registry:
//
//  1. the plan (planAsPulled, planAsStored): the manifest to send and its
//     blobs. An image pulled from this registry is sent as it was pulled
//     (same bytes, same digest), its layers found or mounted there; any
//     other is sent as the store holds it (uncompressed layers);
//  2. pushBlobs: for each blob, HEAD to skip what the registry has, a
//     cross-repository mount when a repository of that registry is known
//     to hold it, else an upload (uploadBlob: POST, then PUT, or PATCH
//     chunks when the registry asks for them), a few at a time;
//  3. PUT /v2/<name>/manifests/<tag>.
//
// The registry's repository is then recorded as a source of the image,
// so a later push to another repository of it mounts instead of uploading.
func (c *Client) Push(ctx context.Context, store *image.Store, refStr string, opts PushOptions) (*PushResult, error) {
	ref, err := image.ParseReference(refStr)
	if err != nil {
		return nil, err
	}
	if ref.Digest != "" {
		return nil, fmt.Errorf("push %s: a reference with a digest cannot be pushed; push a tag", refStr)
	}
	img, err := store.Resolve(ref.String())
	if err != nil {
		if errors.Is(err, image.ErrNotFound) {
			return nil, refused(ErrNotFound, fmt.Errorf("An image does not exist locally with the tag: %s", ref.FamiliarName()))
		}
		return nil, err
	}
	rep := newReporter(opts.Progress)
	rep.status("", "The push refers to repository ["+ref.Name()+"]")

	plans := []func() (*pushPlan, error){}
	for _, src := range img.Sources {
		if sref, err := image.ParseReference(src.Name); err == nil && sref.Domain == ref.Domain && src.Manifest != img.Manifest {
			src, sref := src, sref
			plans = append(plans, func() (*pushPlan, error) { return planAsPulled(store, img, src, sref.Path) })
		}
	}
	plans = append(plans, func() (*pushPlan, error) { return planAsStored(store, img, ref.Domain) })

	var plan *pushPlan
	var r *repository
	for _, planFn := range plans {
		if plan, err = planFn(); err != nil {
			return nil, fmt.Errorf("push %s: %w", ref.FamiliarString(), err)
		}
		if r, err = c.repository(ctx, ref, opts.Auth, "pull", "push"); err != nil {
			return nil, err
		}
		for _, b := range plan.blobs {
			if b.mountFrom != "" && b.mountFrom != ref.Path {
				r.scopes = appendNew(r.scopes, scope(b.mountFrom, "pull"))
			}
		}
		err = c.pushBlobs(ctx, r, store, plan, rep)
		if !errors.Is(err, errNotMountable) {
			break
		}
	}
	if err != nil {
		return nil, pushError(ref, opts.Auth, err)
	}
	if err := r.putManifest(ctx, ref.Tag, plan); err != nil {
		return nil, pushError(ref, opts.Auth, err)
	}
	if err := store.AddSource(img.Manifest, image.Source{Name: ref.Name(), Digest: plan.digest, Manifest: plan.digest}); err != nil {
		return nil, err
	}
	res := &PushResult{Tag: ref.Tag, Digest: plan.digest, Size: len(plan.manifest)}
	rep.status("", fmt.Sprintf("%s: digest: %s size: %d", res.Tag, res.Digest, res.Size))
	rep.aux(res)
	return res, nil
}

func appendNew(list []string, s string) []string {
	for _, v := range list {
		if v == s {
			return list
		}
	}
	return append(list, s)
}

// pushError words a refusal as Docker does.
func pushError(ref image.Reference, auth *AuthConfig, err error) error {
	var re *Error
	if errors.As(err, &re) && (re.Status == http.StatusUnauthorized || re.Status == http.StatusForbidden) {
		if _, _, ok := auth.Credentials(); ok {
			return refused(ErrUnauthorized, fmt.Errorf("push %s: unauthorized: %s", ref.FamiliarString(), re.Message()))
		}
		return refused(ErrUnauthorized, fmt.Errorf("push %s: denied: requested access to the resource is denied (%s)", ref.FamiliarString(), re.Message()))
	}
	return fmt.Errorf("push %s: %w", ref.FamiliarString(), err)
}

// planAsStored sends the store's own manifest: the config and the
// uncompressed layer tars, each a blob of the store. Layers may be
// mounted from a repository of the same registry the image was pushed
// to before in this form.
func planAsStored(store *image.Store, img *image.Image, domain string) (*pushPlan, error) {
	raw, err := store.ReadBlob(img.Manifest)
	if err != nil {
		return nil, err
	}
	from := ""
	for _, src := range img.Sources {
		if sref, err := image.ParseReference(src.Name); err == nil && sref.Domain == domain && src.Manifest == img.Manifest {
			from = sref.Path
		}
	}
	p, err := newPlan(raw)
	if err != nil {
		return nil, err
	}
	for i := range p.blobs {
		p.blobs[i].local = p.blobs[i].desc.Digest
		p.blobs[i].mountFrom = from
	}
	return p, nil
}

// planAsPulled sends the registry's manifest the image was pulled with:
// the same config (held locally) and the compressed layers, which only
// the registry has: they must be there or be mountable from repository
// from, else the plan fails with errNotMountable.
func planAsPulled(store *image.Store, img *image.Image, src image.Source, from string) (*pushPlan, error) {
	raw, err := store.ReadBlob(src.Manifest)
	if err != nil {
		return nil, err
	}
	p, err := newPlan(raw)
	if err != nil {
		return nil, err
	}
	for i := range p.blobs {
		p.blobs[i].mountFrom = from
		if p.blobs[i].desc.Digest == img.ID {
			p.blobs[i].local = img.ID
		}
	}
	return p, nil
}

// newPlan reads a manifest's blobs into a plan: the layers (progress ids
// as Docker shows them), then the config.
func newPlan(raw []byte) (*pushPlan, error) {
	var m struct {
		MediaType string               `json:"mediaType"`
		Config    ocispec.Descriptor   `json:"config"`
		Layers    []ocispec.Descriptor `json:"layers"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("parse manifest: %w", err)
	}
	mt := m.MediaType
	if mt == "" {
		mt = ocispec.MediaTypeImageManifest
	}
	p := &pushPlan{manifest: raw, mediaType: mt, digest: digest.FromBytes(raw)}
	for _, l := range m.Layers {
		p.blobs = append(p.blobs, pushBlob{desc: l, id: shortID(l.Digest)})
	}
	p.blobs = append(p.blobs, pushBlob{desc: m.Config})
	return p, nil
}

// pushBlobs makes every blob of the plan present in the repository, at
// most Options.MaxConcurrentUploads at a time; the config goes last.
func (c *Client) pushBlobs(ctx context.Context, r *repository, store *image.Store, p *pushPlan, rep *reporter) error {
	layers, config := p.blobs[:len(p.blobs)-1], p.blobs[len(p.blobs)-1]
	for _, b := range layers {
		rep.status(b.id, "Preparing")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, c.opts.MaxConcurrentUploads)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	seen := map[digest.Digest]bool{}
	for _, b := range layers {
		if seen[b.desc.Digest] {
			continue // the same layer twice: once is enough
		}
		seen[b.desc.Digest] = true
		wg.Add(1)
		go func(b pushBlob) {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			default:
				rep.status(b.id, "Waiting")
				select {
				case sem <- struct{}{}:
				case <-ctx.Done():
					return
				}
			}
			defer func() { <-sem }()
			if err := r.pushBlob(ctx, store, b, rep); err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
				cancel()
			}
		}(b)
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return r.pushBlob(ctx, store, config, rep)
}

// pushBlob makes one blob present: HEAD, else mount, else upload.
func (r *repository) pushBlob(ctx context.Context, store *image.Store, b pushBlob, rep *reporter) error {
	say := func(status string) {
		if b.id != "" { // the config is not shown, as in Docker
			rep.status(b.id, status)
		}
	}
	have, err := r.blobExists(ctx, b.desc.Digest)
	if err != nil {
		return err
	}
	if have {
		say("Layer already exists")
		return nil
	}
	if b.local == "" && b.mountFrom == "" {
		return errNotMountable
	}
	from := b.mountFrom
	if from == r.ref.Path {
		from = "" // it was there: nothing to mount from
	}
	mounted, loc, minChunk, err := r.startUpload(ctx, b.desc.Digest, from)
	if err != nil {
		return err
	}
	if mounted {
		say("Mounted from " + from)
		return nil
	}
	if b.local == "" {
		r.cancelUpload(ctx, loc)
		return errNotMountable
	}
	if err := r.uploadBlob(ctx, store, b, loc, minChunk, rep); err != nil {
		return fmt.Errorf("upload blob %s: %w", b.desc.Digest, err)
	}
	say("Pushed")
	return nil
}

// blobExists is HEAD /v2/<name>/blobs/<digest>.
func (r *repository) blobExists(ctx context.Context, d digest.Digest) (bool, error) {
	resp, err := r.c.do(ctx, r.h, request{method: http.MethodHead, url: r.url("blobs", d.String()), auth: r.auth, scopes: r.scopes})
	if err != nil {
		return false, err
	}
	switch resp.StatusCode {
	case http.StatusOK:
		resp.Body.Close()
		return true, nil
	case http.StatusNotFound:
		resp.Body.Close()
		return false, nil
	}
	return false, errorFrom(resp)
}

// startUpload is POST /v2/<name>/blobs/uploads/, with ?mount=&from= to
// ask for a cross-repository mount. 201: mounted. 202: an upload session
// at Location, and the smallest chunk the registry takes when it says.
func (r *repository) startUpload(ctx context.Context, d digest.Digest, from string) (mounted bool, loc string, minChunk int64, err error) {
	u := r.h.base + "/v2/" + r.ref.Path + "/blobs/uploads/"
	if from != "" {
		u += "?" + url.Values{"mount": {d.String()}, "from": {from}}.Encode()
	}
	resp, err := r.c.do(ctx, r.h, request{method: http.MethodPost, url: u, auth: r.auth, scopes: r.scopes,
		body: func() io.Reader { return http.NoBody }, length: 0})
	if err != nil {
		return false, "", 0, err
	}
	switch resp.StatusCode {
	case http.StatusCreated:
		resp.Body.Close()
		return true, "", 0, nil
	case http.StatusAccepted:
		resp.Body.Close()
		loc, err := r.location(resp)
		if err != nil {
			return false, "", 0, err
		}
		minChunk, _ := strconv.ParseInt(resp.Header.Get("OCI-Chunk-Min-Length"), 10, 64)
		return false, loc, minChunk, nil
	}
	return false, "", 0, errorFrom(resp)
}

// location resolves a response's Location against the request's URL.
func (r *repository) location(resp *http.Response) (string, error) {
	l := resp.Header.Get("Location")
	if l == "" {
		return "", fmt.Errorf("%s %s: %s without a Location", resp.Request.Method, redact(resp.Request.URL.String()), resp.Status)
	}
	u, err := resp.Request.URL.Parse(l)
	if err != nil {
		return "", fmt.Errorf("bad Location %q: %w", l, err)
	}
	return u.String(), nil
}

// withDigest adds ?digest= to an upload location (keeping its query).
func withDigest(loc string, d digest.Digest) string {
	u, err := url.Parse(loc)
	if err != nil {
		return loc
	}
	q := u.Query()
	q.Set("digest", d.String())
	u.RawQuery = q.Encode()
	return u.String()
}

// cancelUpload is DELETE of an upload session, best effort.
func (r *repository) cancelUpload(ctx context.Context, loc string) {
	if resp, err := r.c.do(ctx, r.h, request{method: http.MethodDelete, url: loc, auth: r.auth, scopes: r.scopes}); err == nil {
		resp.Body.Close()
	}
}

// uploadBlob sends a store blob to an upload session: in one PUT
// ?digest= with the whole body, or, when the registry gave a minimum
// chunk length, as PATCH chunks of that length (Content-Range) and a
// closing PUT ?digest= without a body.
func (r *repository) uploadBlob(ctx context.Context, store *image.Store, b pushBlob, loc string, minChunk int64, rep *reporter) error {
	f, err := store.OpenBlob(b.local)
	if err != nil {
		return err
	}
	defer f.Close()
	size := b.desc.Size
	var sent int64
	section := func(off, n int64) func() io.Reader {
		return func() io.Reader {
			return &countingReader{r: io.NewSectionReader(f, off, n), fn: func(k int64) {
				if b.id != "" {
					rep.bytes(b.id, "Pushing", off+k, size)
				}
			}}
		}
	}
	octets := map[string]string{"Content-Type": "application/octet-stream"}
	if minChunk > 0 && size > minChunk {
		for sent < size {
			n := min(minChunk, size-sent)
			hdr := map[string]string{"Content-Type": "application/octet-stream", "Content-Range": fmt.Sprintf("%d-%d", sent, sent+n-1)}
			resp, err := r.c.do(ctx, r.h, request{method: http.MethodPatch, url: loc, header: hdr, body: section(sent, n), length: n, auth: r.auth, scopes: r.scopes})
			if err != nil {
				return err
			}
			if resp.StatusCode != http.StatusAccepted {
				return errorFrom(resp)
			}
			resp.Body.Close()
			if loc, err = r.location(resp); err != nil {
				return err
			}
			sent += n
		}
		resp, err := r.c.do(ctx, r.h, request{method: http.MethodPut, url: withDigest(loc, b.desc.Digest), header: octets,
			body: func() io.Reader { return http.NoBody }, length: 0, auth: r.auth, scopes: r.scopes})
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusCreated {
			return errorFrom(resp)
		}
		resp.Body.Close()
		return nil
	}
	resp, err := r.c.do(ctx, r.h, request{method: http.MethodPut, url: withDigest(loc, b.desc.Digest), header: octets,
		body: section(0, size), length: size, auth: r.auth, scopes: r.scopes})
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusCreated {
		return errorFrom(resp)
	}
	resp.Body.Close()
	return nil
}

// countingReader reports how much was read.
type countingReader struct {
	r  io.Reader
	n  int64
	fn func(int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if n > 0 {
		c.fn(c.n)
	}
	return n, err
}

// putManifest is PUT /v2/<name>/manifests/<tag> with the manifest's media
// type; the registry's Docker-Content-Digest must be ours.
func (r *repository) putManifest(ctx context.Context, tag string, p *pushPlan) error {
	resp, err := r.c.do(ctx, r.h, request{method: http.MethodPut, url: r.url("manifests", tag),
		header: map[string]string{"Content-Type": p.mediaType},
		body:   func() io.Reader { return bytes.NewReader(p.manifest) }, length: int64(len(p.manifest)),
		auth: r.auth, scopes: r.scopes})
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		return errorFrom(resp)
	}
	resp.Body.Close()
	if d := resp.Header.Get("Docker-Content-Digest"); d != "" && d != p.digest.String() {
		return fmt.Errorf("PUT manifest %s: the registry stored it as %s", p.digest, d)
	}
	return nil
}
