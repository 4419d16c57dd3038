package image

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"minidock/archive"
	"minidock/internal/testutil"
)

// newStore opens a store on a fresh data root and, at the end of the test,
// checks that no mount was leaked.
func newStore(t testing.TB) *Store {
	t.Helper()
	testutil.RequireRoot(t)
	root := filepath.Join(t.TempDir(), "data")
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if left := testutil.MountsUnder(t, root); len(left) > 0 {
			t.Errorf("mounts leaked: %v", left)
		}
	})
	return s
}

// busyboxTar is a tarball of a busybox root filesystem.
func busyboxTar(t testing.TB) []byte {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "rootfs")
	testutil.MakeBusyboxRootfs(t, dir)
	var buf bytes.Buffer
	if err := archive.WriteTree(&buf, dir); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

type tfile struct{ name, body string }

// layerTar builds a small layer tarball; a name ending in / is a directory.
func layerTar(t testing.TB, files ...tfile) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(f.body)), ModTime: time.Unix(1700000000, 0)}
		if f.name[len(f.name)-1] == '/' {
			h.Typeflag, h.Mode, h.Size = tar.TypeDir, 0o755, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(f.body))
	}
	tw.Close()
	return buf.Bytes()
}

// dockerArchive builds a Docker archive in memory from layer tarballs,
// with old-style names ("<n>/layer.tar", "config.json") that state no
// digest, so only the diff IDs of the config can catch corruption.
func dockerArchive(t testing.TB, tags []string, cmd []string, layers ...[]byte) []byte {
	t.Helper()
	cfg := ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"}, RootFS: ocispec.RootFS{Type: "layers"}}
	cfg.Config.Cmd = cmd
	var names []string
	for i, l := range layers {
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, digest.FromBytes(l))
		names = append(names, fmt.Sprintf("%d/layer.tar", i))
	}
	cb, _ := json.Marshal(cfg)
	mb, _ := json.Marshal([]dockerManifest{{Config: "config.json", RepoTags: tags, Layers: names}})
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name string, b []byte) {
		tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(b))})
		tw.Write(b)
	}
	for i, l := range layers {
		add(names[i], l)
	}
	add("config.json", cb)
	add("manifest.json", mb)
	tw.Close()
	return buf.Bytes()
}

// rewriteTar copies a tarball, letting edit change or drop (nil) each
// file's content.
func rewriteTar(t testing.TB, data []byte, edit func(name string, body []byte) []byte) []byte {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(data))
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		var body bytes.Buffer
		body.ReadFrom(tr)
		b := body.Bytes()
		if h.Typeflag == tar.TypeReg {
			if b = edit(h.Name, b); b == nil {
				continue
			}
			h.Size = int64(len(b))
		}
		tw.WriteHeader(h)
		tw.Write(b)
	}
	tw.Close()
	return buf.Bytes()
}

// storeIsEmpty checks that no layer, short link, blob or temporary file is
// left in the store.
func storeIsEmpty(t testing.TB, s *Store) {
	t.Helper()
	for _, d := range []string{s.layerDir, filepath.Join(s.layerDir, "l"), filepath.Join(s.imageDir, "blobs", "sha256"), filepath.Join(s.imageDir, "tmp"), filepath.Join(s.imageDir, "rootfs"), s.ctrDir} {
		ents, err := os.ReadDir(d)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			if d == s.layerDir && e.Name() == "l" {
				continue
			}
			t.Errorf("left behind: %s", filepath.Join(d, e.Name()))
		}
	}
}

// needTools fails (not skips: interop is part of what is tested) when
// skopeo or umoci is missing.
func needTools(t testing.TB) {
	t.Helper()
	for _, tool := range []string{"skopeo", "umoci"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not installed: apt-get install skopeo umoci", tool)
		}
	}
}

func run(t testing.TB, name string, args ...string) []byte {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return out
}

func equalJSON(t testing.TB, a, b any) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}
