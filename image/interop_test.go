package image

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/opencontainers/go-digest"

	"minidock/archive"
	"minidock/internal/testutil"
)

// umociImage builds an OCI layout with umoci: a busybox layer, then a
// layer that adds /two and deletes /etc/group (a whiteout), and a config
// with a Cmd and an Env. It returns the layout dir and the config digest.
func umociImage(t *testing.T, dir string) (string, digest.Digest) {
	lay := filepath.Join(dir, "lay")
	run(t, "umoci", "init", "--layout", lay)
	run(t, "umoci", "new", "--image", lay+":latest")
	b1 := filepath.Join(dir, "b1")
	run(t, "umoci", "unpack", "--image", lay+":latest", b1)
	testutil.MakeBusyboxRootfs(t, filepath.Join(b1, "rootfs"))
	os.WriteFile(filepath.Join(b1, "rootfs/hello"), []byte("hi\n"), 0o644)
	run(t, "umoci", "repack", "--image", lay+":latest", b1)
	b2 := filepath.Join(dir, "b2")
	run(t, "umoci", "unpack", "--image", lay+":latest", b2)
	os.Remove(filepath.Join(b2, "rootfs/etc/group"))
	os.WriteFile(filepath.Join(b2, "rootfs/two"), []byte("2\n"), 0o644)
	run(t, "umoci", "repack", "--image", lay+":latest", b2)
	run(t, "umoci", "config", "--image", lay+":latest", "--config.cmd", "/bin/echo", "--config.cmd", "hi", "--config.env", "FOO=bar")
	cfg := run(t, "skopeo", "inspect", "--raw", "--config", "oci:"+lay+":latest")
	return lay, digest.FromBytes(cfg)
}

// TestInteropLoad loads what umoci and skopeo write: a umoci OCI layout
// (tarred), and skopeo's docker-archive: and oci-archive: copies of it.
func TestInteropLoad(t *testing.T) {
	needTools(t)
	s := newStore(t)
	dir := t.TempDir()
	lay, cfgDigest := umociImage(t, dir)
	var layTar bytes.Buffer
	if err := archive.WriteTree(&layTar, lay); err != nil {
		t.Fatal(err)
	}
	dockerTar := filepath.Join(dir, "d.tar")
	ociTar := filepath.Join(dir, "o.tar")
	run(t, "skopeo", "--insecure-policy", "copy", "oci:"+lay+":latest", "docker-archive:"+dockerTar+":busybox:1.0")
	run(t, "skopeo", "--insecure-policy", "copy", "oci:"+lay+":latest", "oci-archive:"+ociTar+":busybox:oci")

	load := func(name string, r *bytes.Reader) []Loaded {
		t.Helper()
		l, err := s.LoadArchive(r)
		if err != nil {
			t.Fatalf("load %s: %v", name, err)
		}
		return l
	}
	if got := load("umoci layout", bytes.NewReader(layTar.Bytes())); !reflect.DeepEqual(got, []Loaded{{ID: cfgDigest}}) {
		t.Errorf("umoci layout loaded as %+v, want untagged %s", got, cfgDigest)
	}
	for _, c := range []struct{ file, ref string }{{dockerTar, "docker.io/library/busybox:1.0"}, {ociTar, "docker.io/library/busybox:oci"}} {
		b, err := os.ReadFile(c.file)
		if err != nil {
			t.Fatal(err)
		}
		if got := load(c.file, bytes.NewReader(b)); !reflect.DeepEqual(got, []Loaded{{Ref: c.ref, ID: cfgDigest}}) {
			t.Errorf("%s loaded as %+v, want %s %s", c.file, got, c.ref, cfgDigest)
		}
	}
	if n := len(s.List()); n != 1 {
		t.Errorf("%d images, want the same one three times", n)
	}
	img, err := s.Resolve("busybox:1.0")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(img.Config.Config.Cmd, []string{"/bin/echo", "hi"}) || !slices.Contains(img.Config.Config.Env, "FOO=bar") || len(img.DiffIDs) != 2 {
		t.Fatalf("loaded config: cmd %v env %v layers %d", img.Config.Config.Cmd, img.Config.Config.Env, len(img.DiffIDs))
	}
	if _, err := s.PrepareRootfs("u", "busybox:oci"); err != nil {
		t.Fatal(err)
	}
	m, err := s.Mount("u")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"bin/busybox", "hello", "two"} {
		if _, err := os.Stat(filepath.Join(m, f)); err != nil {
			t.Errorf("rootfs lacks %s: %v", f, err)
		}
	}
	if _, err := os.Stat(filepath.Join(m, "etc/group")); !os.IsNotExist(err) {
		t.Errorf("umoci's whiteout of etc/group not applied: %v", err)
	}
	if err := s.RemoveRootfs("u"); err != nil {
		t.Fatal(err)
	}
}

// TestInteropSave saves a two-layer image (with a whiteout) and has skopeo
// and umoci read the archive back: same layers, same config.
func TestInteropSave(t *testing.T) {
	needTools(t)
	s := newStore(t)
	if _, err := s.Import(bytes.NewReader(busyboxTar(t)), "busybox", []string{`CMD ["/bin/echo", "saved"]`}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.PrepareRootfs("c", "busybox"); err != nil {
		t.Fatal(err)
	}
	m, err := s.Mount("c")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(m, "two"), []byte("2\n"), 0o644)
	os.Remove(filepath.Join(m, "etc/group"))
	img, err := s.Commit("c", CommitOptions{Ref: "saved:v1", Changes: []string{"ENV X=1"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveRootfs("c"); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	archive := filepath.Join(dir, "saved.tar")
	f, err := os.Create(archive)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Save([]string{"saved:v1"}, f); err != nil {
		t.Fatal(err)
	}
	f.Close()

	wantLayers := []string{img.DiffIDs[0].String(), img.DiffIDs[1].String()}
	for _, src := range []string{"docker-archive:" + archive, "oci-archive:" + archive + ":v1"} {
		var info struct {
			Layers []string
			Env    []string
		}
		if err := json.Unmarshal(run(t, "skopeo", "inspect", src), &info); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(info.Layers, wantLayers) || !slices.Contains(info.Env, "X=1") {
			t.Errorf("skopeo inspect %s: layers %v env %v, want %v", src, info.Layers, info.Env, wantLayers)
		}
		if cfg := run(t, "skopeo", "inspect", "--raw", "--config", src); digest.FromBytes(cfg) != img.ID {
			t.Errorf("skopeo inspect --config %s: config digest %s, want %s", src, digest.FromBytes(cfg), img.ID)
		}
	}
	// The store itself is an OCI layout that skopeo reads.
	if cfg := run(t, "skopeo", "inspect", "--raw", "--config", "oci:"+filepath.Join(s.Root(), "image")+":docker.io/library/saved:v1"); digest.FromBytes(cfg) != img.ID {
		t.Errorf("skopeo reading the store as an OCI layout: config %s, want %s", digest.FromBytes(cfg), img.ID)
	}
	out := filepath.Join(dir, "copied")
	run(t, "skopeo", "--insecure-policy", "copy", "docker-archive:"+archive, "dir:"+out)
	for _, d := range append(img.DiffIDs, img.ID) {
		if _, err := os.Stat(filepath.Join(out, d.Encoded())); err != nil {
			t.Errorf("skopeo copy to dir: blob %s missing", d)
		}
	}

	layout := filepath.Join(dir, "layout")
	os.Mkdir(layout, 0o755)
	run(t, "tar", "-xf", archive, "-C", layout)
	bundle := filepath.Join(dir, "bundle")
	run(t, "umoci", "unpack", "--image", layout+":v1", bundle)
	if b, _ := os.ReadFile(filepath.Join(bundle, "rootfs/two")); string(b) != "2\n" {
		t.Errorf("umoci rootfs: two = %q", b)
	}
	if _, err := os.Stat(filepath.Join(bundle, "rootfs/etc/group")); !os.IsNotExist(err) {
		t.Errorf("umoci rootfs has the deleted etc/group: %v", err)
	}
	if _, err := os.Stat(filepath.Join(bundle, "rootfs/bin/busybox")); err != nil {
		t.Errorf("umoci rootfs: %v", err)
	}
	var spec struct {
		Process struct {
			Args []string
			Env  []string
		}
	}
	b, _ := os.ReadFile(filepath.Join(bundle, "config.json"))
	json.Unmarshal(b, &spec)
	if !reflect.DeepEqual(spec.Process.Args, []string{"/bin/echo", "saved"}) || !slices.Contains(spec.Process.Env, "X=1") {
		t.Errorf("umoci config.json process: %+v", spec.Process)
	}

	// And our own store reads it back to the same image.
	s2 := newStore(t)
	data, _ := os.ReadFile(archive)
	got, err := s2.LoadArchive(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, []Loaded{{Ref: "docker.io/library/saved:v1", ID: img.ID}}) {
		t.Errorf("reloaded %+v", got)
	}
}
