package registry

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"mime"
	"net/http"
	"runtime"
	"strings"
	"sync"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"minidock/image"
)

// PullOptions are the choices of one pull.
type PullOptions struct {
	// Platform picks the manifest from an index; nil: linux and this
	// machine's architecture.
	Platform *ocispec.Platform
	// Auth are the user's credentials for the registry; nil: anonymous.
	Auth *AuthConfig
	// Progress receives Docker-style progress messages; nil: none.
	Progress ProgressFunc
}

// Maximum size of a manifest or index read (as Docker), and of a config.
const (
	maxManifestSize = 4 << 20
	maxConfigSize   = 8 << 20
)

// Accepted manifest media types, sent in Accept.
var manifestTypes = []string{
	ocispec.MediaTypeImageIndex,
	ocispec.MediaTypeImageManifest,
	image.MediaTypeDockerManifestList,
	image.MediaTypeDockerManifest,
}

// repository is one repository of one registry, with the credentials and
// token scopes used for it.
type repository struct {
	c      *Client
	h      *host
	ref    image.Reference
	auth   *AuthConfig
	scopes []string
}

// repository reaches ref's registry and prepares requests to its
// repository with the given token actions ("pull", "push").
func (c *Client) repository(ctx context.Context, ref image.Reference, auth *AuthConfig, actions ...string) (*repository, error) {
	h, err := c.host(ctx, registryHost(ref.Domain))
	if err != nil {
		return nil, err
	}
	return &repository{c: c, h: h, ref: ref, auth: auth, scopes: []string{scope(ref.Path, actions...)}}, nil
}

func (r *repository) url(kind, ref string) string {
	return r.h.base + "/v2/" + r.ref.Path + "/" + kind + "/" + ref
}

// Pull downloads the image ref names ("busybox", "localhost:5000/team/app:1",
// "name@sha256:…") into store, and returns it:
//
//  1. fetchManifest: GET /v2/<name>/manifests/<tag|digest>; an index is
//     resolved to the platform's manifest (pickPlatform), fetched the same way;
//  2. fetchConfig: GET /v2/<name>/blobs/<config digest>, verified;
//  3. downloadLayers: GET each layer the store lacks (image.Store.HasLayer),
//     a few at a time, each streamed through a digest check and gunzip
//     into the unpacker (downloadLayer);
//  4. image.Store.AddPulled puts the layers in place and tags the image.
//
// Every byte is checked against the digest that named it before anything
// enters the store; on any error the store is unchanged.
func (c *Client) Pull(ctx context.Context, store *image.Store, refStr string, opts PullOptions) (*image.Image, error) {
	ref, err := image.ParseReference(refStr)
	if err != nil {
		return nil, err
	}
	platform := ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH}
	if opts.Platform != nil {
		platform = *opts.Platform
	}
	rep := newReporter(opts.Progress)
	r, err := c.repository(ctx, ref, opts.Auth, "pull")
	if err != nil {
		return nil, err
	}
	tagOrDigest := ref.Tag
	if ref.Digest != "" {
		tagOrDigest = ref.Digest.String()
	}
	top, err := r.fetchManifest(ctx, tagOrDigest)
	if err != nil {
		return nil, pullError(ref, opts.Auth, err)
	}
	// The first message, once the registry has answered (as Docker's):
	// an HTTP layer that sends its 200 on the first message can still
	// answer a missing image or a refusal with an error status.
	rep.status(tagOrDigest, "Pulling from "+ref.Path)
	m := top
	if top.isIndex() {
		desc, err := pickPlatform(top.Manifests, platform)
		if err != nil {
			return nil, fmt.Errorf("pull %s: %w", ref.FamiliarString(), err)
		}
		if m, err = r.fetchManifest(ctx, desc.Digest.String()); err != nil {
			return nil, pullError(ref, opts.Auth, err)
		}
		if m.isIndex() {
			return nil, fmt.Errorf("pull %s: index %s leads to another index for %s", ref.FamiliarString(), top.digest, platformString(platform))
		}
	}
	if m.Config.Digest == "" {
		return nil, fmt.Errorf("pull %s: manifest %s (%s) has no config: not an image", ref.FamiliarString(), m.digest, m.mediaType)
	}

	if img, err := store.Resolve(ref.String()); err == nil {
		for _, src := range img.Sources {
			if src.Name == ref.Name() && src.Digest == top.digest && src.Manifest == m.digest {
				rep.status("", "Digest: "+top.digest.String())
				rep.status("", "Status: Image is up to date for "+ref.FamiliarString())
				return img, nil
			}
		}
	}

	config, diffIDs, err := r.fetchConfig(ctx, m)
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", ref.FamiliarString(), err)
	}
	staged, err := c.downloadLayers(ctx, r, store, m.Layers, diffIDs, rep)
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", ref.FamiliarString(), err)
	}
	pulled := image.Pulled{
		Config:   config,
		Layers:   staged,
		Source:   image.Source{Name: ref.Name(), Digest: top.digest, Manifest: m.digest},
		Manifest: m.raw,
	}
	if ref.Tag != "" {
		pulled.Ref = image.Reference{Domain: ref.Domain, Path: ref.Path, Tag: ref.Tag}.String()
	}
	img, err := store.AddPulled(pulled)
	if err != nil {
		return nil, fmt.Errorf("pull %s: %w", ref.FamiliarString(), err)
	}
	rep.status("", "Digest: "+top.digest.String())
	rep.status("", "Status: Downloaded newer image for "+ref.FamiliarString())
	return img, nil
}

// pullError says why a manifest could not be had, as Docker does: a
// repository the registry does not know, or may not show to this user,
// is "pull access denied"; a tag it lacks is "manifest ... not found".
func pullError(ref image.Reference, auth *AuthConfig, err error) error {
	var re *Error
	if !errors.As(err, &re) {
		return fmt.Errorf("pull %s: %w", ref.FamiliarString(), err)
	}
	_, _, hasCreds := auth.Credentials()
	switch {
	case re.Code() == "MANIFEST_UNKNOWN" || (re.Status == http.StatusNotFound && re.Code() == ""):
		return refused(ErrNotFound, fmt.Errorf("manifest for %s not found: manifest unknown: %s", ref.FamiliarString(), re.Message()))
	case re.Status == http.StatusUnauthorized && hasCreds:
		return refused(ErrUnauthorized, fmt.Errorf("pull %s: unauthorized: %s", ref.FamiliarString(), re.Message()))
	case re.Status == http.StatusUnauthorized || re.Status == http.StatusForbidden || re.Code() == "NAME_UNKNOWN":
		return refused(ErrNotFound, fmt.Errorf("pull access denied for %s, repository does not exist or may require 'docker login': %s", ref.FamiliarName(), re.Message()))
	}
	return fmt.Errorf("pull %s: %w", ref.FamiliarString(), err)
}

// manifest is a manifest or index as fetched: its bytes, media type and
// digest, and the descriptors in it.
type manifest struct {
	raw       []byte
	mediaType string
	digest    digest.Digest
	Config    ocispec.Descriptor   `json:"config"`
	Layers    []ocispec.Descriptor `json:"layers"`
	Manifests []ocispec.Descriptor `json:"manifests"`
	MediaType string               `json:"mediaType"`
	Schema    int                  `json:"schemaVersion"`
}

func (m *manifest) isIndex() bool {
	return m.mediaType == ocispec.MediaTypeImageIndex || m.mediaType == image.MediaTypeDockerManifestList
}

// fetchManifest is GET /v2/<name>/manifests/<ref>: at most 4 MiB of JSON
// of a known media type; fetched by digest, its bytes must have that
// digest; fetched by tag, the digest is computed (and must match the
// registry's Docker-Content-Digest).
func (r *repository) fetchManifest(ctx context.Context, ref string) (*manifest, error) {
	resp, err := r.c.do(ctx, r.h, request{method: http.MethodGet, url: r.url("manifests", ref),
		header: map[string]string{"Accept": strings.Join(manifestTypes, ", ")}, auth: r.auth, scopes: r.scopes})
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, errorFrom(resp)
	}
	defer resp.Body.Close()
	what := "GET " + redact(r.url("manifests", ref))
	ctype, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if ctype == "text/html" {
		return nil, fmt.Errorf("%s: the registry answered an HTML page (%s), not a manifest", what, resp.Header.Get("Content-Type"))
	}
	if resp.ContentLength > maxManifestSize {
		return nil, fmt.Errorf("%s: manifest of %d bytes is over the %d byte limit", what, resp.ContentLength, maxManifestSize)
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxManifestSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if len(raw) > maxManifestSize {
		return nil, fmt.Errorf("%s: manifest is over the %d byte limit", what, maxManifestSize)
	}
	m := &manifest{raw: raw}
	if err := json.Unmarshal(raw, m); err != nil {
		return nil, fmt.Errorf("%s: manifest is not JSON (%s): %v", what, snippet(raw), err)
	}
	if want, err := digest.Parse(ref); err == nil {
		if got := want.Algorithm().FromBytes(raw); got != want {
			return nil, fmt.Errorf("%s: digest mismatch: expected %s, content is %s", what, want, got)
		}
		m.digest = want
	} else {
		m.digest = digest.FromBytes(raw)
		if hd, err := digest.Parse(resp.Header.Get("Docker-Content-Digest")); err == nil && hd.Algorithm() == digest.SHA256 && hd != m.digest {
			return nil, fmt.Errorf("%s: the registry says the manifest is %s, its content is %s", what, hd, m.digest)
		}
	}
	m.mediaType = m.MediaType
	if m.mediaType == "" {
		m.mediaType = ctype
	}
	switch {
	case m.mediaType == ocispec.MediaTypeImageIndex || m.mediaType == image.MediaTypeDockerManifestList ||
		m.mediaType == ocispec.MediaTypeImageManifest || m.mediaType == image.MediaTypeDockerManifest:
	case m.Manifests != nil && m.Config.Digest == "":
		m.mediaType = ocispec.MediaTypeImageIndex
	case m.Config.Digest != "" && m.Schema == 2:
		m.mediaType = ocispec.MediaTypeImageManifest
	case m.Schema == 1:
		return nil, fmt.Errorf("%s: Docker image manifest schema 1 is not supported (deprecated; push the image again with a newer client)", what)
	default:
		return nil, fmt.Errorf("%s: unsupported manifest media type %q", what, m.mediaType)
	}
	return m, nil
}

// pickPlatform chooses an index's manifest for a platform: same OS and
// architecture, and the variant when one is asked for.
func pickPlatform(descs []ocispec.Descriptor, p ocispec.Platform) (ocispec.Descriptor, error) {
	var seen []string
	for _, d := range descs {
		if d.Platform == nil {
			continue
		}
		seen = append(seen, platformString(*d.Platform))
		if d.Platform.OS == p.OS && d.Platform.Architecture == p.Architecture &&
			(p.Variant == "" || d.Platform.Variant == p.Variant) {
			return d, nil
		}
	}
	return ocispec.Descriptor{}, fmt.Errorf("no matching manifest for %s in the manifest list entries (it has: %s)", platformString(p), strings.Join(seen, ", "))
}

func platformString(p ocispec.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// ParsePlatform reads "os/arch[/variant]" (docker pull --platform).
func ParsePlatform(s string) (ocispec.Platform, error) {
	parts := strings.Split(strings.ToLower(s), "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return ocispec.Platform{}, fmt.Errorf("invalid platform %q: want os/arch[/variant]", s)
	}
	p := ocispec.Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return p, nil
}

// fetchConfig is GET of the config blob, checked against its descriptor,
// and its layer diff IDs, one per layer of the manifest.
func (r *repository) fetchConfig(ctx context.Context, m *manifest) ([]byte, []digest.Digest, error) {
	if m.Config.Size > maxConfigSize {
		return nil, nil, fmt.Errorf("config %s: %d bytes is over the %d byte limit", m.Config.Digest, m.Config.Size, maxConfigSize)
	}
	body, err := r.openBlob(ctx, m.Config)
	if err != nil {
		return nil, nil, err
	}
	defer body.Close()
	b, err := io.ReadAll(newVerifier(body, m.Config, nil))
	if err != nil {
		return nil, nil, err
	}
	var cfg ocispec.Image
	if err := json.Unmarshal(b, &cfg); err != nil {
		return nil, nil, fmt.Errorf("config %s: %w", m.Config.Digest, err)
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return nil, nil, fmt.Errorf("config %s lists %d layers, manifest %s %d", m.Config.Digest, len(cfg.RootFS.DiffIDs), m.digest, len(m.Layers))
	}
	return b, cfg.RootFS.DiffIDs, nil
}

// openBlob is GET /v2/<name>/blobs/<digest> (following a redirect to
// storage elsewhere), checking the announced length against the
// descriptor.
func (r *repository) openBlob(ctx context.Context, d ocispec.Descriptor) (io.ReadCloser, error) {
	if err := d.Digest.Validate(); err != nil {
		return nil, fmt.Errorf("blob %q: %w", d.Digest, err)
	}
	resp, err := r.c.do(ctx, r.h, request{method: http.MethodGet, url: r.url("blobs", d.Digest.String()), auth: r.auth, scopes: r.scopes})
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("blob %s: %w", d.Digest, errorFrom(resp))
	}
	if resp.ContentLength >= 0 && resp.ContentLength != d.Size {
		resp.Body.Close()
		return nil, fmt.Errorf("blob %s: the registry sends %d bytes, the manifest says %d", d.Digest, resp.ContentLength, d.Size)
	}
	return resp.Body, nil
}

// verifier passes a blob through, hashing and counting it; at its end it
// checks the size and digest against the descriptor, and a mismatch
// becomes the read error, so that whoever consumes the stream (the
// unpacker) fails and keeps nothing.
type verifier struct {
	r        io.Reader
	want     ocispec.Descriptor
	h        hash.Hash
	n        int64
	err      error // sticky: the verdict once reached
	progress func(n int64)
}

func newVerifier(r io.Reader, want ocispec.Descriptor, progress func(int64)) *verifier {
	return &verifier{r: r, want: want, h: want.Digest.Algorithm().Hash(), progress: progress}
}

func (v *verifier) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	n, err := v.r.Read(p)
	v.n += int64(n)
	v.h.Write(p[:n])
	if v.progress != nil && n > 0 {
		v.progress(v.n)
	}
	switch {
	case v.n > v.want.Size:
		v.err = fmt.Errorf("blob %s: more than the %d bytes the manifest says", v.want.Digest, v.want.Size)
	case err == io.EOF && v.n < v.want.Size, errors.Is(err, io.ErrUnexpectedEOF):
		v.err = fmt.Errorf("blob %s truncated: %d of %d bytes received", v.want.Digest, v.n, v.want.Size)
	case err == io.EOF:
		if got := digest.NewDigest(v.want.Digest.Algorithm(), v.h); got != v.want.Digest {
			v.err = fmt.Errorf("digest mismatch for blob %s: content is %s", v.want.Digest, got)
		} else {
			v.err = io.EOF
		}
	case err != nil:
		v.err = fmt.Errorf("blob %s: %w", v.want.Digest, err)
	}
	if v.err != nil {
		return n, v.err
	}
	return n, nil
}

// verified reads what is left and reports the verdict: nil when the whole
// blob arrived and matched.
func (v *verifier) verified() error {
	io.Copy(io.Discard, v)
	if v.err == io.EOF {
		return nil
	}
	return v.err
}

// downloadLayers fetches the layers the store lacks, at most
// Options.MaxConcurrentDownloads at a time; the first failure cancels the
// others and everything staged is discarded.
func (c *Client) downloadLayers(ctx context.Context, r *repository, store *image.Store, layers []ocispec.Descriptor, diffIDs []digest.Digest, rep *reporter) ([]*image.StagedLayer, error) {
	chains := image.ChainIDs(diffIDs)
	staged := make([]*image.StagedLayer, len(layers))
	var todo []int
	for i, l := range layers {
		if store.HasLayer(chains[i], diffIDs[i]) {
			rep.status(shortID(l.Digest), "Already exists")
			continue
		}
		rep.status(shortID(l.Digest), "Pulling fs layer")
		todo = append(todo, i)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, c.opts.MaxConcurrentDownloads)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	for _, i := range todo {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			default:
				rep.status(shortID(layers[i].Digest), "Waiting")
				select {
				case sem <- struct{}{}:
				case <-ctx.Done():
					return
				}
			}
			defer func() { <-sem }()
			l, err := r.downloadLayer(ctx, store, layers[i], diffIDs[i], rep)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				if firstErr == nil {
					firstErr = err
				}
				cancel()
				return
			}
			staged[i] = l
		}(i)
	}
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	if firstErr != nil {
		for _, l := range staged {
			if l != nil {
				l.Discard()
			}
		}
		return nil, firstErr
	}
	return staged, nil
}

// downloadLayer streams one layer: GET the blob, through the verifier,
// through gunzip when it is compressed, into image.Store.StageLayer,
// which unpacks it and checks the uncompressed digest (the diff ID).
func (r *repository) downloadLayer(ctx context.Context, store *image.Store, desc ocispec.Descriptor, diffID digest.Digest, rep *reporter) (*image.StagedLayer, error) {
	id := shortID(desc.Digest)
	if strings.Contains(desc.MediaType, "foreign") || strings.Contains(desc.MediaType, "nondistributable") {
		return nil, fmt.Errorf("layer %s: %s layers (fetched from elsewhere) are not supported", desc.Digest, desc.MediaType)
	}
	body, err := r.openBlob(ctx, desc)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	v := newVerifier(body, desc, func(n int64) { rep.bytes(id, "Downloading", n, desc.Size) })
	tarStream, err := decompressed(v)
	var l *image.StagedLayer
	if err == nil {
		l, err = store.StageLayer(diffID, tarStream)
	}
	// Whatever went wrong, a blob that does not match its digest is the
	// cause to report; and a stage that went well still needs the verdict.
	if verr := v.verified(); verr != nil {
		if l != nil {
			l.Discard()
		}
		return nil, verr
	}
	if err != nil {
		return nil, fmt.Errorf("layer %s: %w", desc.Digest, err)
	}
	rep.status(id, "Verifying Checksum")
	rep.status(id, "Download complete")
	rep.status(id, "Pull complete")
	return l, nil
}

// decompressed sniffs a layer's first bytes: gzip is inflated on the fly,
// a plain tar passes through, zstd is refused.
func decompressed(r io.Reader) (io.Reader, error) {
	br := bufio.NewReaderSize(r, 256<<10)
	magic, _ := br.Peek(4)
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("gunzip: %w", err)
		}
		return zr, nil
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return nil, errors.New("zstd-compressed layers are not supported")
	}
	return br, nil
}
