package tests

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"minidock/api"
)

// dockerArchive is a `docker save` archive of one image, tagged ref,
// whose one layer is layer (a tar, gzipped when gz).
func dockerArchive(t *testing.T, ref string, layer []byte, gz bool) []byte {
	t.Helper()
	sum := sha256.Sum256(layer)
	diffID := "sha256:" + hex.EncodeToString(sum[:])
	file := layer
	if gz {
		var b bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
		zw.Write(layer)
		zw.Close()
		file = b.Bytes()
	}
	cfg, _ := json.Marshal(map[string]any{
		"architecture": "amd64", "os": "linux",
		"config": map[string]any{"Cmd": []string{"sh"}},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{diffID}},
	})
	csum := sha256.Sum256(cfg)
	cfgName := hex.EncodeToString(csum[:]) + ".json"
	manifest, _ := json.Marshal([]map[string]any{{"Config": cfgName, "RepoTags": []string{ref}, "Layers": []string{"layer/layer.tar"}}})
	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	for _, f := range []struct {
		name string
		data []byte
	}{{"manifest.json", manifest}, {cfgName, cfg}, {"layer/layer.tar", file}} {
		tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.data)), Typeflag: tar.TypeReg})
		tw.Write(f.data)
	}
	tw.Close()
	return out.Bytes()
}

// sparseLayer is a layer tar, written by GNU tar --sparse (PAX format),
// holding "big": a sparse file of size bytes with "start" at its start
// and "end" at its end.
func sparseLayer(t *testing.T, size int64) []byte {
	t.Helper()
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "big"))
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("start"), 0)
	f.WriteAt([]byte("end"), size-3)
	f.Close()
	out := filepath.Join(t.TempDir(), "layer.tar")
	if b, err := exec.Command("tar", "--sparse", "--format=posix", "-cf", out, "-C", dir, "big").CombinedOutput(); err != nil {
		t.Fatalf("tar --sparse: %v: %s", err, b)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// diskUse is the space the files under dir take (st_blocks).
func diskUse(dir string) int64 {
	var n int64
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil {
			n += fi.Sys().(*syscall.Stat_t).Blocks * 512
		}
		return nil
	})
	return n
}

// A 20 KB image archive holding a 10 GiB sparse file loads as a 10 GiB
// file that takes a few kilobytes of disk (its holes stay holes). With --max-unpack-size 1g the same load is a 413
// that leaves nothing behind.
func TestLoadSparseImage(t *testing.T) {
	const size = 10 << 30
	archive := dockerArchive(t, "sparse:latest", sparseLayer(t, size), false)
	if len(archive) > 32<<10 {
		t.Fatalf("the archive is %d bytes", len(archive))
	}
	e := newEngine(t)
	before := diskUse(e.dataRoot)
	st, body := e.do("POST", "/images/load?quiet=1", archive)
	if st != 200 || !strings.Contains(string(body), "Loaded image: sparse:latest") {
		t.Fatalf("load: %d %s", st, body)
	}
	if grew := diskUse(e.dataRoot) - before; grew > 8<<20 {
		t.Errorf("loading a 20 KB archive took %d MB of disk", grew>>20)
	}
	bigs, _ := filepath.Glob(filepath.Join(e.dataRoot, "overlay", "*", "diff", "big"))
	if len(bigs) != 1 {
		t.Fatalf("layer file: %v", bigs)
	}
	if fi, err := os.Stat(bigs[0]); err != nil || fi.Size() != size {
		t.Errorf("big: %v, %v", fi, err)
	}
	f, _ := os.Open(bigs[0])
	end := make([]byte, 3)
	f.ReadAt(end, size-3)
	f.Close()
	if string(end) != "end" {
		t.Errorf("the end of big: %q", end)
	}

	// the same archive over --max-unpack-size: refused, nothing left
	small := newEngineAt(t, "", "--max-unpack-size", "1g")
	before = diskUse(small.dataRoot)
	st, body = small.do("POST", "/images/load?quiet=1", archive)
	if st != 413 || !strings.Contains(string(body), "over the limit") {
		t.Errorf("load over --max-unpack-size: %d %s", st, body)
	}
	var list []api.ImageSummary
	small.must(200, "GET", "/images/json", nil, &list)
	if len(list) != 0 {
		t.Errorf("a refused load left images: %+v", list)
	}
	if grew := diskUse(small.dataRoot) - before; grew > 64<<10 {
		t.Errorf("a refused load left %d bytes", grew)
	}
	for _, d := range []string{"image/tmp", "overlay"} {
		ents, _ := os.ReadDir(filepath.Join(small.dataRoot, d))
		for _, en := range ents {
			if en.Name() != "l" {
				t.Errorf("a refused load left %s/%s", d, en.Name())
			}
		}
	}
}

// A gzip bomb (a 128 MiB layer that compresses to some 130 KB) loaded
// into a daemon whose data root has 96 MiB: refused while it unpacks,
// with the reason, and the space is free again afterwards.
func TestLoadKeepsDiskFree(t *testing.T) {
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=96m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { syscall.Unmount(mnt, syscall.MNT_DETACH) }) // after the daemon's cleanup
	root := filepath.Join(mnt, "data")
	e := newEngineAt(t, "", "--data-root", root)
	var layer bytes.Buffer
	tw := tar.NewWriter(&layer)
	content := bytes.Repeat([]byte("minidock "), (128<<20)/9)
	tw.WriteHeader(&tar.Header{Name: "filler", Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg})
	tw.Write(content)
	tw.Close()
	archive := dockerArchive(t, "bomb:latest", layer.Bytes(), true)
	var before syscall.Statfs_t
	syscall.Statfs(mnt, &before)
	st, body := e.do("POST", "/images/load?quiet=1", archive)
	if st != 413 || !strings.Contains(string(body), "no room") {
		t.Errorf("a 128 MiB layer into 96 MiB: %d %s", st, body)
	}
	t.Logf("%d %s", st, body)
	var after syscall.Statfs_t
	syscall.Statfs(mnt, &after)
	if after.Bfree < before.Bfree-16 {
		t.Errorf("free blocks of the data root: %d before, %d after the refused load", before.Bfree, after.Bfree)
	}
	if st, _ := e.do("GET", "/images/bomb/json", nil); st != 404 {
		t.Errorf("the refused image exists: %d", st)
	}
}
