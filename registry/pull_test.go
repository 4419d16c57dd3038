package registry

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"minidock/image"
	"minidock/internal/testimage"
	"minidock/registry/server"
)

// TestPull pulls a 3-layer gzip image from minidock's server into a store:
// the layers are unpacked (the whiteout of layer 1 hides layer 0's file in
// a mounted rootfs), the image is tagged and knows its repo digest; a
// second image sharing the base layers downloads only its own; pulling
// again is "up to date".
func TestPull(t *testing.T) {
	_, host := startServer(t, server.Options{}, nil)
	ti := testimage.Make(t, 1, 3, 64<<10, true, false, "amd64")
	testimage.PushRaw(t, host, "team/app", "1", ti)
	store := newStore(t)
	c := testClient(Options{})
	var pl progressLog
	img, err := c.Pull(ctxT(t), store, host+"/team/app:1", PullOptions{Progress: pl.fn})
	if err != nil {
		t.Fatal(err)
	}
	if img.ID != digest.FromBytes(ti.Config) {
		t.Errorf("image ID %s, want the config's digest %s", img.ID, digest.FromBytes(ti.Config))
	}
	if want := []string{host + "/team/app:1"}; len(img.Refs) != 1 || img.Refs[0] != want[0] {
		t.Errorf("refs %v, want %v", img.Refs, want)
	}
	if rd := img.RepoDigests(); len(rd) != 1 || rd[0] != host+"/team/app@"+ti.Digest().String() {
		t.Errorf("repo digests %v, want %s", rd, host+"/team/app@"+ti.Digest().String())
	}
	if pl.count("Pull complete") != 3 || !pl.has("Status: Downloaded newer image") || !pl.has("Downloading") {
		t.Errorf("progress:\n%s", pl.String())
	}
	for i, chain := range image.ChainIDs(ti.DiffIDs) {
		b, err := os.ReadFile(filepath.Join(store.LayerDiffPath(chain), "layer"+string(rune('0'+i)), "data"))
		if err != nil || !bytes.Equal(b, testimage.RandomBytes(100+int64(i), 64<<10)) {
			t.Errorf("layer %d: data not unpacked right: %v", i, err)
		}
	}
	// A rootfs of the image: the whiteout hides etc/hostname.
	rfs, err := store.PrepareRootfs("c1", host+"/team/app:1")
	if err != nil {
		t.Fatal(err)
	}
	merged, err := store.Mount("c1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(merged, "layer2", "data")); err != nil {
		t.Errorf("rootfs lacks layer2/data: %v", err)
	}
	if _, err := os.Stat(filepath.Join(merged, "etc", "motd")); !os.IsNotExist(err) {
		t.Errorf("etc/motd should be whited out by layer 1, stat: %v", err)
	}
	_ = rfs
	if err := store.Unmount("c1"); err != nil {
		t.Fatal(err)
	}
	if err := store.RemoveRootfs("c1"); err != nil {
		t.Fatal(err)
	}

	// By digest: the same image, nothing downloaded.
	var pl2 progressLog
	if _, err := c.Pull(ctxT(t), store, host+"/team/app@"+ti.Digest().String(), PullOptions{Progress: pl2.fn}); err != nil {
		t.Fatal(err)
	}
	if !pl2.has("Status: Image is up to date") || pl2.has("Downloading") {
		t.Errorf("pull by digest of a present image:\n%s", pl2.String())
	}
	// Again by tag: up to date.
	var pl3 progressLog
	if _, err := c.Pull(ctxT(t), store, host+"/team/app:1", PullOptions{Progress: pl3.fn}); err != nil {
		t.Fatal(err)
	}
	if !pl3.has("Status: Image is up to date") {
		t.Errorf("second pull:\n%s", pl3.String())
	}

	// The source survives a restart of the store (image/sources.json).
	reopened, err := image.Open(store.Root())
	if err != nil {
		t.Fatal(err)
	}
	if again, err := reopened.Resolve(host + "/team/app@" + ti.Digest().String()); err != nil || again.ID != img.ID || len(again.RepoDigests()) != 1 {
		t.Errorf("after reopening the store: %v, %v", again, err)
	}

	// An image with the same first two layers and a new third: two
	// "Already exists", one download.
	other := testimage.Make(t, 2, 3, 32<<10, true, false, "amd64")
	ti2 := &testimage.Image{Layers: [][]byte{ti.Layers[0], ti.Layers[1], other.Layers[2]}, MediaType: ti.MediaType}
	var cfg ocispec.Image
	json.Unmarshal(ti.Config, &cfg)
	cfg.RootFS.DiffIDs[2] = other.DiffIDs[2]
	ti2.Config, _ = json.Marshal(cfg)
	var m ocispec.Manifest
	json.Unmarshal(ti.Manifest, &m)
	m.Layers[2] = ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromBytes(other.Layers[2]), Size: int64(len(other.Layers[2]))}
	m.Config = ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(ti2.Config), Size: int64(len(ti2.Config))}
	ti2.Manifest, _ = json.Marshal(m)
	testimage.PushRaw(t, host, "team/app", "2", ti2)
	var pl4 progressLog
	if _, err := c.Pull(ctxT(t), store, host+"/team/app:2", PullOptions{Progress: pl4.fn}); err != nil {
		t.Fatal(err)
	}
	if pl4.count("Already exists") != 2 || pl4.count("Pull complete") != 1 {
		t.Errorf("pull sharing two layers:\n%s", pl4.String())
	}
}

// TestPullIndex resolves an OCI index (and a Docker manifest list) to the
// platform's manifest: linux/amd64 by default, arm64 when asked, and a
// clear error for a platform the index lacks.
func TestPullIndex(t *testing.T) {
	_, host := startServer(t, server.Options{}, nil)
	amd := testimage.Make(t, 3, 1, 4<<10, true, true, "amd64") // Docker schema2
	arm := testimage.Make(t, 4, 1, 4<<10, true, false, "arm64")
	testimage.PushRaw(t, host, "multi", amd.Digest().String(), amd)
	testimage.PushRaw(t, host, "multi", arm.Digest().String(), arm)
	for _, mt := range []string{ocispec.MediaTypeImageIndex, image.MediaTypeDockerManifestList} {
		idx := ocispec.Index{MediaType: mt, Manifests: []ocispec.Descriptor{
			{MediaType: arm.MediaType, Digest: arm.Digest(), Size: int64(len(arm.Manifest)), Platform: &ocispec.Platform{OS: "linux", Architecture: "arm64"}},
			{MediaType: amd.MediaType, Digest: amd.Digest(), Size: int64(len(amd.Manifest)), Platform: &ocispec.Platform{OS: "linux", Architecture: "amd64"}},
		}}
		idx.SchemaVersion = 2
		ib, _ := json.Marshal(idx)
		tag := strings.NewReplacer("/", "-", ".", "-", "+", "-").Replace(mt)
		testimage.PutManifest(t, host, "multi", tag, ib, mt)
		store := newStore(t)
		c := testClient(Options{})
		img, err := c.Pull(ctxT(t), store, host+"/multi:"+tag, PullOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if img.ID != digest.FromBytes(amd.Config) {
			t.Errorf("%s: pulled %s, want the amd64 image %s", mt, img.ID, digest.FromBytes(amd.Config))
		}
		if rd := img.RepoDigests(); len(rd) != 1 || !strings.HasSuffix(rd[0], "@"+digest.FromBytes(ib).String()) {
			t.Errorf("%s: repo digest %v should name the index", mt, rd)
		}
		img, err = c.Pull(ctxT(t), store, host+"/multi:"+tag, PullOptions{Platform: &ocispec.Platform{OS: "linux", Architecture: "arm64"}})
		if err != nil {
			t.Fatal(err)
		}
		if img.ID != digest.FromBytes(arm.Config) {
			t.Errorf("%s: pulled %s for arm64, want %s", mt, img.ID, digest.FromBytes(arm.Config))
		}
		before := storeFiles(t, store)
		_, err = c.Pull(ctxT(t), store, host+"/multi:"+tag, PullOptions{Platform: &ocispec.Platform{OS: "linux", Architecture: "s390x"}})
		if err == nil || !strings.Contains(err.Error(), "no matching manifest for linux/s390x") {
			t.Errorf("%s: pull for s390x: %v", mt, err)
		}
		if after := storeFiles(t, store); strings.Join(before, "\n") != strings.Join(after, "\n") {
			t.Errorf("failed pull changed the store")
		}
	}
}

// TestPushPulled pushes a pulled image back: to another repository of the
// same registry the layers are mounted, not uploaded, and the manifest is
// the one pulled (same digest); to another registry it goes as stored
// (uncompressed layers), and pulls back as the same image.
func TestPushPulled(t *testing.T) {
	_, host := startServer(t, server.Options{}, nil)
	_, host2 := startServer(t, server.Options{}, nil)
	ti := testimage.Make(t, 5, 2, 32<<10, true, false, "amd64")
	testimage.PushRaw(t, host, "src/app", "1", ti)
	store := newStore(t)
	c := testClient(Options{})
	img, err := c.Pull(ctxT(t), store, host+"/src/app:1", PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Tag(img.ID.String(), host+"/dst/app:copy"); err != nil {
		t.Fatal(err)
	}
	var pl progressLog
	res, err := c.Push(ctxT(t), store, host+"/dst/app:copy", PushOptions{Progress: pl.fn})
	if err != nil {
		t.Fatal(err)
	}
	if res.Digest != ti.Digest() {
		t.Errorf("pushed %s, want the pulled manifest %s", res.Digest, ti.Digest())
	}
	if pl.count("Mounted from src/app") != 2 || pl.has("Pushing") {
		t.Errorf("push to the same registry should mount both layers:\n%s", pl.String())
	}
	// Pushed again: everything exists.
	var pl2 progressLog
	if _, err := c.Push(ctxT(t), store, host+"/dst/app:copy", PushOptions{Progress: pl2.fn}); err != nil {
		t.Fatal(err)
	}
	if pl2.count("Layer already exists") != 2 {
		t.Errorf("second push:\n%s", pl2.String())
	}

	// To another registry: as stored.
	if err := store.Tag(img.ID.String(), host2+"/other:1"); err != nil {
		t.Fatal(err)
	}
	var pl3 progressLog
	res, err = c.Push(ctxT(t), store, host2+"/other:1", PushOptions{Progress: pl3.fn})
	if err != nil {
		t.Fatal(err)
	}
	if res.Digest != img.Manifest || pl3.count("Pushed") != 2 {
		t.Errorf("push to another registry: %s (store manifest %s)\n%s", res.Digest, img.Manifest, pl3.String())
	}
	// And to a second repository there: mounted from the first.
	store.Tag(img.ID.String(), host2+"/other2:1")
	var pl4 progressLog
	if _, err := c.Push(ctxT(t), store, host2+"/other2:1", PushOptions{Progress: pl4.fn}); err != nil {
		t.Fatal(err)
	}
	if pl4.count("Mounted from other") != 2 {
		t.Errorf("second repository of the same registry:\n%s", pl4.String())
	}
	store2 := newStore(t)
	back, err := c.Pull(ctxT(t), store2, host2+"/other:1", PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if back.ID != img.ID || back.Manifest != img.Manifest {
		t.Errorf("pulled back %s/%s, pushed %s/%s", back.ID, back.Manifest, img.ID, img.Manifest)
	}

	// A tag the store lacks.
	_, err = c.Push(ctxT(t), store, host+"/nothing:here", PushOptions{})
	if err == nil || !strings.Contains(err.Error(), "An image does not exist locally with the tag: "+host+"/nothing") {
		t.Errorf("push of a missing tag: %v", err)
	}
}

// TestPushChunked pushes to a server that asks for chunks of at least
// 64 KiB (OCI-Chunk-Min-Length): the client sends PATCHes.
func TestPushChunked(t *testing.T) {
	var patches countingHandler
	_, host := startServer(t, server.Options{ChunkMinLength: 64 << 10}, patches.wrap)
	src := newStore(t)
	ti := testimage.Make(t, 6, 1, 200<<10, false, false, "amd64")
	loadImage(t, src, host+"/chunked:1", ti)
	c := testClient(Options{})
	if _, err := c.Push(ctxT(t), src, host+"/chunked:1", PushOptions{}); err != nil {
		t.Fatal(err)
	}
	if n := patches.count("PATCH"); n < 3 {
		t.Errorf("%d PATCH requests for a 200 KiB layer in 64 KiB chunks, want >= 3", n)
	}
	dst := newStore(t)
	img, err := c.Pull(ctxT(t), dst, host+"/chunked:1", PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if img.ID != digest.FromBytes(ti.Config) {
		t.Errorf("pulled %s, want %s", img.ID, digest.FromBytes(ti.Config))
	}
}
