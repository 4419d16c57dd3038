package image

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"minidock/archive"
)

// TestContainerLifecycle walks the path of `docker import`, `run`,
// `diff`, `export`, `commit`, `rm`, `rmi` on a real overlay mount.
func TestContainerLifecycle(t *testing.T) {
	s := newStore(t)
	img, err := s.Import(bytes.NewReader(busyboxTar(t)), "busybox", []string{`CMD ["/bin/sh"]`, "ENV PATH=/bin"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Resolve("busybox:latest")
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != img.ID || !reflect.DeepEqual(got.Refs, []string{"docker.io/library/busybox:latest"}) {
		t.Fatalf("Resolve = %s %v", got.ID, got.Refs)
	}
	if !reflect.DeepEqual(got.Config.Config.Cmd, []string{"/bin/sh"}) || len(got.DiffIDs) != 1 || got.ChainIDs[0] != got.DiffIDs[0] {
		t.Fatalf("imported image: cmd %v diffs %v chains %v", got.Config.Config.Cmd, got.DiffIDs, got.ChainIDs)
	}
	for _, ref := range []string{img.ID.String(), img.ID.Encoded(), img.ID.Encoded()[:12], "docker.io/library/busybox", "busybox@" + img.Manifest.String()} {
		if r, err := s.Resolve(ref); err != nil || r.ID != img.ID {
			t.Errorf("Resolve(%q) = %v", ref, err)
		}
	}
	if _, err := s.Resolve("nosuch"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Resolve(nosuch) = %v", err)
	}
	if _, err := os.Stat(filepath.Join(s.LayerDiffPath(img.ChainIDs[0]), "bin/busybox")); err != nil {
		t.Fatalf("layer not unpacked: %v", err)
	}

	rfs, err := s.PrepareRootfs("c1", "busybox")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.PrepareRootfs("c1", "busybox"); err == nil {
		t.Error("second PrepareRootfs for c1 accepted")
	}
	if _, err := s.PrepareRootfs("../x", "busybox"); err == nil {
		t.Error("container ID ../x accepted")
	}
	merged, err := s.Mount("c1")
	if err != nil {
		t.Fatal(err)
	}
	if merged != rfs.Merged {
		t.Fatalf("Mount = %q, want %q", merged, rfs.Merged)
	}
	if _, err := s.Mount("c1"); err != nil {
		t.Fatalf("second Mount: %v", err)
	}
	os.WriteFile(filepath.Join(merged, "etc/motd"), []byte("hello\n"), 0o644)
	if err := os.Remove(filepath.Join(merged, "etc/group")); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(merged, "etc/passwd"), []byte("root:x:0:0::/:/bin/sh\n"), 0o644)

	changes, err := s.Diff("c1")
	if err != nil {
		t.Fatal(err)
	}
	var cs []string
	for _, c := range changes {
		cs = append(cs, c.Kind.String()+" "+c.Path)
	}
	if want := []string{"C /etc", "D /etc/group", "A /etc/motd", "C /etc/passwd"}; !reflect.DeepEqual(cs, want) {
		t.Errorf("Diff = %q, want %q", cs, want)
	}

	var exp bytes.Buffer
	if err := s.Export("c1", &exp); err != nil {
		t.Fatal(err)
	}
	names := tarContents(t, exp.Bytes())
	if names["etc/motd"] != "hello\n" || names["bin/busybox"] == "" {
		t.Error("export lacks etc/motd or bin/busybox")
	}
	if _, ok := names["etc/group"]; ok {
		t.Error("export has the deleted etc/group")
	}

	c2img, err := s.Commit("c1", CommitOptions{Ref: "mine:v2", Comment: "test", Changes: []string{"ENV GREETING=hello"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(c2img.DiffIDs) != 2 || c2img.DiffIDs[0] != img.DiffIDs[0] {
		t.Fatalf("committed image diff IDs %v", c2img.DiffIDs)
	}
	if want := digest.FromString(c2img.DiffIDs[0].String() + " " + c2img.DiffIDs[1].String()); c2img.ChainIDs[1] != want {
		t.Errorf("chain ID %s, want %s", c2img.ChainIDs[1], want)
	}
	if env := c2img.Config.Config.Env; !reflect.DeepEqual(env, []string{"PATH=/bin", "GREETING=hello"}) {
		t.Errorf("committed env %v", env)
	}
	if h := c2img.Config.History; len(h) != 2 || h[1].Comment != "test" {
		t.Errorf("committed history %+v", h)
	}
	if err := s.Unmount("c1"); err != nil {
		t.Fatal(err)
	}

	// A container of the committed image sees the changes, the deletion
	// included (the whiteout went through a .wh. tar entry and back).
	if _, err := s.PrepareRootfs("c2", "mine:v2"); err != nil {
		t.Fatal(err)
	}
	m2, err := s.Mount("c2")
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(m2, "etc/motd")); string(b) != "hello\n" {
		t.Errorf("c2 etc/motd = %q", b)
	}
	if _, err := os.Stat(filepath.Join(m2, "etc/group")); !os.IsNotExist(err) {
		t.Errorf("c2 sees the deleted etc/group: %v", err)
	}
	// Export of an unmounted rootfs mounts it for the time of the export.
	if err := s.Unmount("c2"); err != nil {
		t.Fatal(err)
	}
	exp.Reset()
	if err := s.Export("c2", &exp); err != nil {
		t.Fatal(err)
	}
	if tarContents(t, exp.Bytes())["etc/motd"] != "hello\n" {
		t.Error("export of unmounted c2 lacks etc/motd")
	}

	// Removing: the image in use is refused, then everything goes.
	if _, err := s.Remove("busybox", false); !errors.Is(err, ErrConflict) {
		t.Fatalf("Remove of an image in use: %v", err)
	}
	for _, c := range []string{"c1", "c2"} {
		if err := s.RemoveRootfs(c); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Rootfs("c1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Rootfs after RemoveRootfs: %v", err)
	}
	items, err := s.Remove("busybox", false)
	if err != nil {
		t.Fatal(err)
	}
	// busybox is mine:v2's parent (it was committed from it): as in
	// Docker, the tag goes and the image stays, untagged, until its child
	// goes.
	if len(items) != 1 || items[0].Untagged != "busybox:latest" {
		t.Errorf("Remove(busybox) = %+v", items)
	}
	if _, err := os.Stat(s.LayerDiffPath(img.ChainIDs[0])); err != nil {
		t.Errorf("shared base layer removed while mine:v2 uses it: %v", err)
	}
	items, err = s.Remove("mine:v2", false)
	if err != nil {
		t.Fatal(err)
	}
	// untagged, the image, its untagged parent (busybox), two layers
	if len(items) != 5 || items[0].Untagged != "mine:v2" || items[2].Deleted != img.ID {
		t.Errorf("Remove(mine:v2) = %+v", items)
	}
	if n := len(s.List()); n != 0 {
		t.Errorf("%d images left", n)
	}
	storeIsEmpty(t, s)
}

// tarContents maps a tarball's regular files to their content.
func tarContents(t testing.TB, data []byte) map[string]string {
	out := map[string]string{}
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if err != nil {
			return out
		}
		var b bytes.Buffer
		b.ReadFrom(tr)
		out[strings.TrimPrefix(h.Name, "./")] = b.String()
	}
}

func TestRefCountingAndTags(t *testing.T) {
	s := newStore(t)
	base := layerTar(t, tfile{"a", "1"})
	top1 := layerTar(t, tfile{"b", "2"})
	top2 := layerTar(t, tfile{"c", "3"})
	if _, err := s.LoadArchive(bytes.NewReader(dockerArchive(t, []string{"one:latest"}, nil, base, top1))); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LoadArchive(bytes.NewReader(dockerArchive(t, []string{"two:latest"}, nil, base, top2))); err != nil {
		t.Fatal(err)
	}
	one, _ := s.Resolve("one")
	two, _ := s.Resolve("two")
	if one.ChainIDs[0] != two.ChainIDs[0] || one.ChainIDs[1] == two.ChainIDs[1] {
		t.Fatal("the two images do not share exactly their base layer")
	}
	refs, err := s.LayerRefs()
	if err != nil {
		t.Fatal(err)
	}
	if refs[one.ChainIDs[0]] != 2 || refs[one.ChainIDs[1]] != 1 || refs[two.ChainIDs[1]] != 1 || len(refs) != 3 {
		t.Errorf("LayerRefs = %v", refs)
	}
	if err := s.Tag("one", "localhost:5000/one:v1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Tag("one", "bad@sha256:"+strings.Repeat("0", 64)); err == nil {
		t.Error("tag with a digest accepted")
	}
	// By ID with two references: refused without force.
	if _, err := s.Remove(one.ID.String(), false); !errors.Is(err, ErrConflict) {
		t.Errorf("Remove by ID of a twice-tagged image: %v", err)
	}
	if items, err := s.Remove("one", false); err != nil || len(items) != 1 || items[0].Untagged != "one:latest" {
		t.Errorf("untag one: %+v %v", items, err)
	}
	// The store reopened from disk sees the same state.
	s2, err := Open(s.Root())
	if err != nil {
		t.Fatal(err)
	}
	if r, err := s2.Resolve("localhost:5000/one:v1"); err != nil || r.ID != one.ID {
		t.Fatalf("reopened store: %v", err)
	}
	if _, err := s2.Resolve("one"); !errors.Is(err, ErrNotFound) {
		t.Errorf("untagged ref still resolves after reopen: %v", err)
	}
	items, err := s2.Remove("localhost:5000/one:v1", false)
	if err != nil {
		t.Fatal(err)
	}
	want := []DeleteItem{{Untagged: "localhost:5000/one:v1"}, {Deleted: one.ID}, {Deleted: one.ChainIDs[1]}}
	if !reflect.DeepEqual(items, want) {
		t.Errorf("Remove = %+v, want %+v", items, want)
	}
	if _, err := os.Stat(s2.LayerDiffPath(one.ChainIDs[0])); err != nil {
		t.Error("base layer shared with two was removed")
	}
	// Force-removing an image in use keeps what the container needs.
	if _, err := s2.PrepareRootfs("ctr", "two"); err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Remove("two", true); err != nil {
		t.Fatal(err)
	}
	m, err := s2.Mount("ctr")
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(m, "c")); string(b) != "3" {
		t.Errorf("container of a force-removed image: c = %q", b)
	}
	if _, err := s2.Commit("ctr", CommitOptions{Ref: "three"}); err != nil {
		t.Errorf("commit of a container whose image was force-removed: %v", err)
	}
	if err := s2.RemoveRootfs("ctr"); err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Remove("three", false); err != nil {
		t.Fatal(err)
	}
	storeIsEmpty(t, s2)
}

func TestHostileImportLeavesNothing(t *testing.T) {
	s := newStore(t)
	evil := layerTarRaw(t, "ok", "../escape")
	_, err := s.Import(bytes.NewReader(evil), "evil", nil)
	var ue *archive.UnpackError
	if !errors.As(err, &ue) || ue.Entry != "../escape" {
		t.Fatalf("hostile import: %v", err)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(s.Root()), "escape")); err == nil {
		t.Error("file written outside the layer")
	}
	if _, err := s.Resolve("evil"); !errors.Is(err, ErrNotFound) {
		t.Errorf("hostile image stored: %v", err)
	}
	storeIsEmpty(t, s)
}

// layerTarRaw builds a tarball whose entry names are used as given.
func layerTarRaw(t testing.TB, names ...string) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		tw.WriteHeader(&tar.Header{Name: n, Typeflag: tar.TypeReg, Mode: 0o644, Size: 1})
		tw.Write([]byte("x"))
	}
	tw.Close()
	return buf.Bytes()
}

// TestCorruptArchives checks that every blob is verified against its
// digest when read from an archive, that the error names both digests,
// and that nothing of a bad archive is stored.
func TestCorruptArchives(t *testing.T) {
	s := newStore(t)
	layer := layerTar(t, tfile{"hello", "world"})
	good := dockerArchive(t, []string{"x:1"}, nil, layer)
	evilLayer := layerTar(t, tfile{"hello", "WORLD"})

	// Docker archive, layer named without digest: caught by the diff ID.
	bad := rewriteTar(t, good, func(n string, b []byte) []byte {
		if n == "0/layer.tar" {
			return evilLayer
		}
		return b
	})
	_, err := s.LoadArchive(bytes.NewReader(bad))
	wantBoth(t, err, digest.FromBytes(layer), digest.FromBytes(evilLayer))

	// Our own archive (names state digests): caught by the name, both in
	// the Docker reading (manifest.json) and the OCI one (index.json).
	if _, err := s.LoadArchive(bytes.NewReader(good)); err != nil {
		t.Fatal(err)
	}
	var saved bytes.Buffer
	if err := s.Save([]string{"x:1"}, &saved); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Remove("x:1", false); err != nil {
		t.Fatal(err)
	}
	storeIsEmpty(t, s)
	layerName := "blobs/sha256/" + digest.FromBytes(layer).Encoded()
	tampered := rewriteTar(t, saved.Bytes(), func(n string, b []byte) []byte {
		if n == layerName {
			return evilLayer
		}
		return b
	})
	_, err = s.LoadArchive(bytes.NewReader(tampered))
	wantBoth(t, err, digest.FromBytes(layer), digest.FromBytes(evilLayer))
	ociOnly := rewriteTar(t, tampered, func(n string, b []byte) []byte {
		if n == "manifest.json" || n == "repositories" {
			return nil
		}
		return b
	})
	_, err = s.LoadArchive(bytes.NewReader(ociOnly))
	wantBoth(t, err, digest.FromBytes(layer), digest.FromBytes(evilLayer))
	if !strings.Contains(fmt.Sprint(err), "expected") {
		t.Errorf("OCI path error %v", err)
	}
	// A hostile layer inside an archive, and a manifest.json pointing
	// outside the archive: refused, nothing stored or written.
	_, err = s.LoadArchive(bytes.NewReader(dockerArchive(t, []string{"evil:1"}, nil, layer, layerTarRaw(t, "ok", "a/../../escape"))))
	var ue *archive.UnpackError
	if !errors.As(err, &ue) || ue.Entry != "a/../../escape" {
		t.Errorf("hostile layer in an archive: %v", err)
	}
	outside := rewriteTar(t, good, func(n string, b []byte) []byte {
		if n == "manifest.json" {
			return []byte(`[{"Config":"../../../etc/passwd","RepoTags":["x:2"],"Layers":[]}]`)
		}
		return b
	})
	if _, err := s.LoadArchive(bytes.NewReader(outside)); err == nil || !strings.Contains(err.Error(), "no file") {
		t.Errorf("manifest.json naming ../../../etc/passwd: %v", err)
	}
	// Not an archive at all.
	if _, err := s.LoadArchive(bytes.NewReader(layer)); err == nil || !strings.Contains(err.Error(), "manifest.json") {
		t.Errorf("plain layer loaded as an archive: %v", err)
	}
	if n := len(s.List()); n != 0 {
		t.Errorf("%d images stored from bad archives", n)
	}
	storeIsEmpty(t, s)
}

func wantBoth(t testing.TB, err error, a, b digest.Digest) {
	t.Helper()
	if err == nil {
		t.Fatal("corrupt archive accepted")
	}
	if !strings.Contains(err.Error(), a.String()) || !strings.Contains(err.Error(), b.String()) || !strings.Contains(err.Error(), "mismatch") {
		t.Errorf("error %q does not name both %s and %s", err, a, b)
	}
}

// manyLayers is a Docker archive of an image with n layers: layer i
// adds file f<i> and rewrites "top".
func manyLayers(t testing.TB, n int) []byte {
	layers := make([][]byte, n)
	for i := range layers {
		layers[i] = layerTar(t, tfile{fmt.Sprintf("f%d", i), fmt.Sprint(i)}, tfile{"top", fmt.Sprint(i)})
	}
	return dockerArchive(t, []string{fmt.Sprintf("layers:%d", n)}, nil, layers...)
}

func TestFortyLayerImage(t *testing.T) {
	s := newStore(t)
	if _, err := s.LoadArchive(bytes.NewReader(manyLayers(t, 40))); err != nil {
		t.Fatal(err)
	}
	rfs, err := s.PrepareRootfs("deep", "layers:40")
	if err != nil {
		t.Fatal(err)
	}
	// the container's init layer on top, then the image's 40 short links
	if len(rfs.Lower) != 41 || filepath.Base(rfs.Lower[0]) != "init" || !strings.HasSuffix(filepath.Dir(rfs.Lower[1]), "/overlay/l") {
		t.Fatalf("lower dirs %v", rfs.Lower)
	}
	m, err := s.Mount("deep")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 40; i++ {
		if _, err := os.Stat(filepath.Join(m, fmt.Sprintf("f%d", i))); err != nil {
			t.Errorf("layer %d: %v", i, err)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(m, "top")); string(b) != "39" {
		t.Errorf("top = %q, want the last layer's", b)
	}
	if err := s.RemoveRootfs("deep"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Remove("layers:40", false); err != nil {
		t.Fatal(err)
	}
	storeIsEmpty(t, s)
}
