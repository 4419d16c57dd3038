package registry

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"minidock/image"
	"minidock/internal/peers"
	"minidock/internal/testimage"
	"minidock/registry/server"
)

// skopeo runs skopeo, failing the test on error.
func skopeo(t *testing.T, args ...string) []byte {
	t.Helper()
	if _, err := exec.LookPath("skopeo"); err != nil {
		t.Skip("skopeo not installed")
	}
	out, err := exec.Command("skopeo", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("skopeo %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// skopeoPut writes an image as a docker-archive and copies it with skopeo
// into a registry (skopeo compresses the layers with gzip on the way).
func skopeoPut(t *testing.T, ti *testimage.Image, dest string) {
	t.Helper()
	arch := filepath.Join(t.TempDir(), "image.tar")
	if err := os.WriteFile(arch, testimage.DockerArchive(t, "x:1", ti), 0o644); err != nil {
		t.Fatal(err)
	}
	skopeo(t, "copy", "--quiet", "--dest-tls-verify=false", "docker-archive:"+arch, "docker://"+dest)
}

// checkRootfs mounts a rootfs of the image and looks at its files: every
// layer's data, and layer 0's etc/motd hidden by layer 1's whiteout.
func checkRootfs(t *testing.T, store *image.Store, ref string, layers int) {
	t.Helper()
	if _, err := store.PrepareRootfs("peer", ref); err != nil {
		t.Fatal(err)
	}
	defer store.RemoveRootfs("peer")
	merged, err := store.Mount("peer")
	if err != nil {
		t.Fatal(err)
	}
	defer store.Unmount("peer")
	for i := 0; i < layers; i++ {
		if _, err := os.Stat(filepath.Join(merged, "layer"+string(rune('0'+i)), "data")); err != nil {
			t.Errorf("rootfs of %s: %v", ref, err)
		}
	}
	if _, err := os.Stat(filepath.Join(merged, "etc", "motd")); !os.IsNotExist(err) {
		t.Errorf("rootfs of %s: etc/motd not whited out: %v", ref, err)
	}
}

// TestDockerRegistry uses Debian's docker-registry (distribution 2.8) as
// the reference server: skopeo puts a multi-layer image in it, minidock
// pulls it into a store and mounts its rootfs; minidock pushes (a mount
// to another repository, and an image of its own) and pulls back; skopeo
// reads what minidock pushed.
func TestDockerRegistry(t *testing.T) {
	reg := peers.StartDockerRegistry(t)
	ti := testimage.Make(t, 40, 3, 128<<10, false, false, "amd64")
	skopeoPut(t, ti, reg.Addr+"/team/multi:1")

	store := newStore(t)
	c := testClient(Options{})
	img, err := c.Pull(ctxT(t), store, reg.Addr+"/team/multi:1", PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if img.ID != digest.FromBytes(ti.Config) {
		t.Errorf("pulled image %s, want %s", img.ID, digest.FromBytes(ti.Config))
	}
	checkRootfs(t, store, reg.Addr+"/team/multi:1", 3)

	store.Tag(img.ID.String(), reg.Addr+"/team/copy:1")
	var pl progressLog
	res, err := c.Push(ctxT(t), store, reg.Addr+"/team/copy:1", PushOptions{Progress: pl.fn})
	if err != nil {
		t.Fatal(err)
	}
	if pl.count("Mounted from team/multi") != 3 || res.Digest != img.Sources[0].Digest {
		t.Errorf("push to another repository: %s (pulled %s)\n%s", res.Digest, img.Sources[0].Digest, pl.String())
	}

	own := testimage.Make(t, 41, 2, 64<<10, false, false, "amd64")
	loadImage(t, store, reg.Addr+"/own:1", own)
	if _, err := c.Push(ctxT(t), store, reg.Addr+"/own:1", PushOptions{}); err != nil {
		t.Fatal(err)
	}
	back, err := c.Pull(ctxT(t), newStore(t), reg.Addr+"/own:1", PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if back.ID != digest.FromBytes(own.Config) {
		t.Errorf("pulled back %s, want %s", back.ID, digest.FromBytes(own.Config))
	}
	var inspect struct{ Layers []string }
	json.Unmarshal(skopeo(t, "inspect", "--tls-verify=false", "docker://"+reg.Addr+"/own:1"), &inspect)
	if len(inspect.Layers) != 2 {
		t.Errorf("skopeo inspect of minidock's push: layers %v", inspect.Layers)
	}
}

// TestOwnServerPeers: minidock's server, pushed to by skopeo, minidock
// and dockerd, pulled from by minidock, skopeo and dockerd (which also
// runs a container of the image minidock pushed).
func TestOwnServerPeers(t *testing.T) {
	_, addr := startServer(t, server.Options{}, nil)
	c := testClient(Options{})

	// skopeo -> minidock's server -> minidock
	ti := testimage.Make(t, 50, 3, 128<<10, false, false, "amd64")
	skopeoPut(t, ti, addr+"/from/skopeo:1")
	store := newStore(t)
	if _, err := c.Pull(ctxT(t), store, addr+"/from/skopeo:1", PullOptions{}); err != nil {
		t.Fatal(err)
	}
	checkRootfs(t, store, addr+"/from/skopeo:1", 3)

	// minidock -> minidock's server -> skopeo
	bb := testimage.WithBusybox(t, 51)
	loadImage(t, store, addr+"/from/minidock:1", bb)
	if _, err := c.Push(ctxT(t), store, addr+"/from/minidock:1", PushOptions{}); err != nil {
		t.Fatal(err)
	}
	oci := filepath.Join(t.TempDir(), "oci")
	skopeo(t, "copy", "--quiet", "--src-tls-verify=false", "docker://"+addr+"/from/minidock:1", "oci:"+oci+":x")
	idx, _ := os.ReadFile(filepath.Join(oci, "index.json"))
	if !strings.Contains(string(idx), "application/vnd.oci.image.manifest.v1+json") {
		t.Errorf("skopeo's copy of minidock's push: index %s", idx)
	}

	// dockerd pulls both and runs minidock's; pushes one of its own.
	d := peers.StartDockerd(t, addr)
	d.MustCLI("pull", "-q", addr+"/from/minidock:1")
	d.MustCLI("pull", "-q", addr+"/from/skopeo:1")
	id := strings.TrimSpace(string(d.MustCLI("image", "inspect", "--format", "{{.Id}}", addr+"/from/minidock:1")))
	if id != digest.FromBytes(bb.Config).String() {
		t.Errorf("dockerd's image ID %s, want %s", id, digest.FromBytes(bb.Config))
	}
	if out := d.MustCLI("run", "--rm", "--network", "none", addr+"/from/minidock:1", "cat", "/layer1/data"); len(out) != 256<<10 {
		t.Errorf("docker run of minidock's push printed %d bytes, want %d", len(out), 256<<10)
	}
	d.MustCLI("tag", addr+"/from/skopeo:1", addr+"/from/docker:1")
	d.MustCLI("push", addr+"/from/docker:1")
	img, err := c.Pull(ctxT(t), newStore(t), addr+"/from/docker:1", PullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if img.ID != digest.FromBytes(ti.Config) {
		t.Errorf("pulled dockerd's push as %s, want %s", img.ID, digest.FromBytes(ti.Config))
	}
}
