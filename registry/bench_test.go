package registry

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"minidock/image"
	"minidock/internal/peers"
	"minidock/internal/testimage"
)

// benchImage is the ~50 MB, 5-layer image of the benchmarks (10 MB of
// file data per layer, about half of it random, so gzip halves it).
func benchImage(b *testing.B) *testimage.Image {
	return testimage.Make(b, 60, 5, 10<<20, false, false, "amd64")
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// verdict says whether a ratio meets the target.
func verdict(ratio, target float64) string {
	if ratio <= target {
		return "met"
	}
	return "NOT met"
}

const benchRounds = 5

// BenchmarkPull pulls the image from one local docker-registry, rounds
// alternating: minidock's registry.Client into a fresh image store (the
// layers downloaded, verified, gunzipped and unpacked), and a private
// dockerd's `docker pull` (then `docker rmi`, so each round downloads
// everything again). Medians side by side, and the ratio.
func BenchmarkPull(b *testing.B) {
	reg := peers.StartDockerRegistry(b)
	ti := benchImage(b)
	arch := filepath.Join(b.TempDir(), "bench.tar")
	os.WriteFile(arch, testimage.DockerArchive(b, "bench:1", ti), 0o644)
	ref := reg.Addr + "/bench/pull:1"
	if err := runSkopeo("copy", "--quiet", "--dest-tls-verify=false", "docker-archive:"+arch, "docker://"+ref); err != nil {
		b.Fatal(err)
	}
	d := peers.StartDockerd(b, reg.Addr)
	var mine, theirs []time.Duration
	for i := 0; i < b.N*benchRounds; i++ {
		root := filepath.Join(b.TempDir(), "data")
		store, err := image.Open(root)
		if err != nil {
			b.Fatal(err)
		}
		c := NewClient(Options{})
		start := time.Now()
		if _, err := c.Pull(context.Background(), store, ref, PullOptions{}); err != nil {
			b.Fatal(err)
		}
		mine = append(mine, time.Since(start))
		os.RemoveAll(root)

		start = time.Now()
		d.MustCLI("pull", "-q", ref)
		theirs = append(theirs, time.Since(start))
		d.MustCLI("rmi", ref)
	}
	m, t := median(mine), median(theirs)
	fmt.Printf("pull of a %d MB, %d-layer image (gzip) from docker-registry on 127.0.0.1, median of %d rounds:\n", 50, len(ti.Layers), len(mine))
	fmt.Printf("  minidock registry.Client.Pull into a store  %8.1f ms\n", ms(m))
	fmt.Printf("  dockerd docker pull                         %8.1f ms\n", ms(t))
	fmt.Printf("  ratio minidock/dockerd %.2f (target <= 0.50: %s)\n", ms(m)/ms(t), verdict(ms(m)/ms(t), 0.5))
}

// BenchmarkPush pushes the same image, pulled first by each side from a
// source registry, to a fresh docker-registry each round (so that every
// layer is uploaded): minidock sends its store's layers as they are
// (uncompressed tars); dockerd gzips them on the way, as it must for a
// registry it has no record of.
func BenchmarkPush(b *testing.B) {
	src := peers.StartDockerRegistry(b)
	ti := benchImage(b)
	arch := filepath.Join(b.TempDir(), "bench.tar")
	os.WriteFile(arch, testimage.DockerArchive(b, "bench:1", ti), 0o644)
	ref := src.Addr + "/bench/push:1"
	if err := runSkopeo("copy", "--quiet", "--dest-tls-verify=false", "docker-archive:"+arch, "docker://"+ref); err != nil {
		b.Fatal(err)
	}
	d := peers.StartDockerd(b, src.Addr)
	d.MustCLI("pull", "-q", ref)
	store, err := image.Open(filepath.Join(b.TempDir(), "data"))
	if err != nil {
		b.Fatal(err)
	}
	c := NewClient(Options{})
	img, err := c.Pull(context.Background(), store, ref, PullOptions{})
	if err != nil {
		b.Fatal(err)
	}
	var mine, theirs []time.Duration
	for i := 0; i < b.N*benchRounds; i++ {
		dst := peers.StartDockerRegistry(b)
		target := dst.Addr + "/bench/pushed:1"
		store.Tag(img.ID.String(), target)
		start := time.Now()
		if _, err := c.Push(context.Background(), store, target, PushOptions{}); err != nil {
			b.Fatal(err)
		}
		mine = append(mine, time.Since(start))

		dst2 := peers.StartDockerRegistry(b)
		target2 := dst2.Addr + "/bench/pushed:1"
		d.MustCLI("tag", ref, target2)
		start = time.Now()
		d.MustCLI("push", target2)
		theirs = append(theirs, time.Since(start))
	}
	m, t := median(mine), median(theirs)
	fmt.Printf("push of the %d MB, %d-layer image to an empty docker-registry on 127.0.0.1, median of %d rounds:\n", 50, len(ti.Layers), len(mine))
	fmt.Printf("  minidock registry.Client.Push (layers as stored: tar)  %8.1f ms\n", ms(m))
	fmt.Printf("  dockerd docker push (layers gzipped on the way)        %8.1f ms\n", ms(t))
	fmt.Printf("  ratio minidock/dockerd %.2f (target <= 0.50: %s)\n", ms(m)/ms(t), verdict(ms(m)/ms(t), 0.5))
}

func runSkopeo(args ...string) error {
	out, err := exec.Command("skopeo", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("skopeo %v: %v\n%s", args, err, out)
	}
	return nil
}
