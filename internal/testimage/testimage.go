// Package testimage makes images for tests and benchmarks of pulls and
// pushes: layers of known files, as a registry holds them (blobs and a
// manifest) or as `docker save` writes them (a docker-archive), and puts
// them into a registry by plain HTTP, independently of the client under
// test. Nothing here is used outside tests.
package testimage

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"minidock/archive"
	"minidock/image"
	"minidock/internal/testutil"
)

// Image is an image as a registry holds it: blobs and a manifest.
type Image struct {
	Layers    [][]byte // as sent (gzip or plain tar)
	DiffIDs   []digest.Digest
	Config    []byte
	Manifest  []byte
	MediaType string
}

// Digest is the manifest's digest.
func (ti *Image) Digest() digest.Digest { return digest.FromBytes(ti.Manifest) }

// ConfigDigest is the config's digest: the image ID an engine gives it.
func (ti *Image) ConfigDigest() digest.Digest { return digest.FromBytes(ti.Config) }

// LayerFiles builds a layer tar of files (a name ending in / is a
// directory).
func LayerFiles(t testing.TB, files map[string][]byte) []byte {
	t.Helper()
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		body := files[n]
		h := &tar.Header{Name: n, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body)), ModTime: time.Unix(1700000000, 0)}
		if strings.HasSuffix(n, "/") {
			h.Typeflag, h.Mode, h.Size = tar.TypeDir, 0o755, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write(body)
	}
	tw.Close()
	return buf.Bytes()
}

// RandomBytes is n bytes of a seeded generator, half of them compressible.
func RandomBytes(seed int64, n int) []byte {
	b := make([]byte, n)
	rand.New(rand.NewSource(seed)).Read(b)
	for i := 0; i < n; i += 2048 {
		for j := i; j < min(i+1024, n); j++ {
			b[j] = 'a' + byte(j%7)
		}
	}
	return b
}

// Make builds an image of n layers: layer i holds layer<i>/data of size
// bytes (RandomBytes(seed*100+i, size)); layer 0 also etc/motd, which
// layer 1 deletes with a whiteout. gz compresses the layers; docker uses
// Docker's media types.
func Make(t testing.TB, seed int64, n, size int, gz, docker bool, arch string) *Image {
	t.Helper()
	ti := &Image{}
	cfg := ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: arch}, RootFS: ocispec.RootFS{Type: "layers"}}
	cfg.Config.Cmd = []string{"/bin/sh"}
	cfg.Config.Labels = map[string]string{"seed": fmt.Sprint(seed)}
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest}
	m.SchemaVersion = 2
	layerMT, configMT := ocispec.MediaTypeImageLayer, ocispec.MediaTypeImageConfig
	if gz {
		layerMT = ocispec.MediaTypeImageLayerGzip
	}
	if docker {
		m.MediaType, layerMT, configMT = image.MediaTypeDockerManifest, image.MediaTypeDockerLayer, image.MediaTypeDockerConfig
	}
	for i := 0; i < n; i++ {
		files := map[string][]byte{
			fmt.Sprintf("layer%d/", i):     nil,
			fmt.Sprintf("layer%d/data", i): RandomBytes(seed*100+int64(i), size),
		}
		switch i {
		case 0:
			files["etc/"] = nil
			files["etc/motd"] = []byte("minidock\n")
		case 1:
			files["etc/"] = nil
			files["etc/.wh.motd"] = []byte{}
		}
		plain := LayerFiles(t, files)
		ti.DiffIDs = append(ti.DiffIDs, digest.FromBytes(plain))
		blob := plain
		if gz {
			var buf bytes.Buffer
			zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
			zw.Write(plain)
			zw.Close()
			blob = buf.Bytes()
		}
		ti.Layers = append(ti.Layers, blob)
		m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: layerMT, Digest: digest.FromBytes(blob), Size: int64(len(blob))})
	}
	cfg.RootFS.DiffIDs = ti.DiffIDs
	ti.Config, _ = json.Marshal(cfg)
	m.Config = ocispec.Descriptor{MediaType: configMT, Digest: digest.FromBytes(ti.Config), Size: int64(len(ti.Config))}
	ti.Manifest, _ = json.Marshal(m)
	ti.MediaType = m.MediaType
	return ti
}

// WithBusybox is Make's uncompressed 2-layer image with a busybox root
// filesystem as an extra first layer, so that engines can run it.
func WithBusybox(t testing.TB, seed int64) *Image {
	t.Helper()
	ti := Make(t, seed, 2, 256<<10, false, false, "amd64")
	dir := filepath.Join(t.TempDir(), "rootfs")
	testutil.MakeBusyboxRootfs(t, dir)
	var buf bytes.Buffer
	if err := archive.WriteTree(&buf, dir); err != nil {
		t.Fatal(err)
	}
	ti.Layers = append([][]byte{buf.Bytes()}, ti.Layers...)
	ti.DiffIDs = append([]digest.Digest{digest.FromBytes(buf.Bytes())}, ti.DiffIDs...)
	var cfg ocispec.Image
	json.Unmarshal(ti.Config, &cfg)
	cfg.RootFS.DiffIDs = ti.DiffIDs
	ti.Config, _ = json.Marshal(cfg)
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest,
		Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(ti.Config), Size: int64(len(ti.Config))}}
	m.SchemaVersion = 2
	for _, l := range ti.Layers {
		m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: digest.FromBytes(l), Size: int64(len(l))})
	}
	ti.Manifest, _ = json.Marshal(m)
	return ti
}

// DockerArchive is an image with uncompressed layers as `docker save`
// writes it (manifest.json, config, layer tars), tagged ref.
func DockerArchive(t testing.TB, ref string, ti *Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name string, b []byte) {
		tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(b))})
		tw.Write(b)
	}
	var names []string
	for i, l := range ti.Layers {
		if bytes.HasPrefix(l, []byte{0x1f, 0x8b}) {
			t.Fatal("DockerArchive wants uncompressed layers")
		}
		n := fmt.Sprintf("%d/layer.tar", i)
		add(n, l)
		names = append(names, n)
	}
	add("config.json", ti.Config)
	mj, _ := json.Marshal([]map[string]any{{"Config": "config.json", "RepoTags": []string{ref}, "Layers": names}})
	add("manifest.json", mj)
	tw.Close()
	return buf.Bytes()
}

// PushRaw puts an image into a registry by plain HTTP (POST + PUT per
// blob, then the manifest), as any client would: the test's own way in,
// independent of the client under test.
func PushRaw(t testing.TB, host, repo, tag string, ti *Image) {
	t.Helper()
	for _, b := range append(append([][]byte{}, ti.Layers...), ti.Config) {
		PutBlob(t, host, repo, b)
	}
	PutManifest(t, host, repo, tag, ti.Manifest, ti.MediaType)
}

// PutBlob uploads one blob: POST, then PUT with the digest.
func PutBlob(t testing.TB, host, repo string, b []byte) {
	t.Helper()
	resp, err := http.Post("http://"+host+"/v2/"+repo+"/blobs/uploads/", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST upload: %s", resp.Status)
	}
	loc, _ := resp.Request.URL.Parse(resp.Header.Get("Location"))
	q := loc.Query()
	q.Set("digest", digest.FromBytes(b).String())
	loc.RawQuery = q.Encode()
	req, _ := http.NewRequest(http.MethodPut, loc.String(), bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT blob: %s", resp.Status)
	}
}

// PutManifest uploads a manifest (or index) under ref, a tag or digest.
func PutManifest(t testing.TB, host, repo, ref string, body []byte, mt string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, "http://"+host+"/v2/"+repo+"/manifests/"+ref, bytes.NewReader(body))
	req.Header.Set("Content-Type", mt)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT manifest %s: %s %s", ref, resp.Status, msg)
	}
}

// WithLayer is ti with one more uncompressed layer of files on top: an
// image that shares all of ti's layers.
func (ti *Image) WithLayer(t testing.TB, files map[string][]byte) *Image {
	t.Helper()
	layer := LayerFiles(t, files)
	out := &Image{
		Layers:  append(append([][]byte{}, ti.Layers...), layer),
		DiffIDs: append(append([]digest.Digest{}, ti.DiffIDs...), digest.FromBytes(layer)),
	}
	var cfg ocispec.Image
	if err := json.Unmarshal(ti.Config, &cfg); err != nil {
		t.Fatal(err)
	}
	cfg.RootFS.DiffIDs = out.DiffIDs
	out.Config, _ = json.Marshal(cfg)
	var m ocispec.Manifest
	if err := json.Unmarshal(ti.Manifest, &m); err != nil {
		t.Fatal(err)
	}
	mt := ocispec.MediaTypeImageLayer
	if m.MediaType == image.MediaTypeDockerManifest {
		mt = image.MediaTypeDockerLayer
	}
	m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(layer), Size: int64(len(layer))})
	m.Config.Digest, m.Config.Size = digest.FromBytes(out.Config), int64(len(out.Config))
	out.Manifest, _ = json.Marshal(m)
	out.MediaType = ti.MediaType
	return out
}
