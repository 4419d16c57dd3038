package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"minidock/internal/peers"
	"minidock/internal/testimage"
	"minidock/internal/testutil"
)

// The registry benchmarks (`make bench`): pull and push of a ~50 MB,
// 5-layer image (10 MB of file data per layer, half of it random, so gzip
// halves it) between one Debian docker-registry on 127.0.0.1 and each
// engine, through the engine's API: the same docker 28 CLI drives
// minidock's daemon and a private Debian dockerd (as the engine
// benchmarks start it), rounds alternating; minidock's own CLI beside
// them. Medians side by side, and the ratio. (registry/bench_test.go
// times the registry client alone, without a daemon.)

const registryBenchRounds = 5

// registryBench is the set-up both benchmarks share: the registry holding
// the image (skopeo copies it in from a docker-archive, gzipping the
// layers as any client pushing a docker save would), and the engines.
type registryBench struct {
	ref          string // the image on the registry
	md           *benchDaemon
	dk           *benchDocker // nil without docker.io
	mdDocker     benchCLI     // docker 28 -> minidock
	dkDocker     benchCLI     // docker 28 -> dockerd
	layers, size int
}

func startRegistryBench(b *testing.B) *registryBench {
	testutil.RequireRoot(b)
	if _, err := os.Stat(dockerCLI); err != nil {
		b.Skipf("the docker CLI %s is not installed", dockerCLI)
	}
	reg := peers.StartDockerRegistry(b)
	ti := testimage.Make(b, 60, 5, 10<<20, false, false, "amd64")
	arch := filepath.Join(b.TempDir(), "bench.tar")
	if err := os.WriteFile(arch, testimage.DockerArchive(b, "bench:1", ti), 0o644); err != nil {
		b.Fatal(err)
	}
	rb := &registryBench{ref: reg.Addr + "/bench/image:1", layers: len(ti.Layers)}
	for _, l := range ti.Layers {
		rb.size += len(l)
	}
	if out, err := runCommand("skopeo", "copy", "--quiet", "--dest-tls-verify=false", "docker-archive:"+arch, "docker://"+rb.ref); err != nil {
		b.Fatalf("skopeo copy: %v\n%s", err, out)
	}
	rb.md = startBenchDaemon(b)
	rb.mdDocker = benchCLI{b: b, prog: dockerCLI, env: append(os.Environ(), "DOCKER_HOST=unix://"+filepath.Join(rb.md.execRoot, "d.sock"), "DOCKER_CONFIG="+b.TempDir())}
	if rb.dk = startBenchDocker(b); rb.dk != nil {
		rb.dkDocker = benchCLI{b: b, prog: dockerCLI, env: append(os.Environ(), "DOCKER_HOST=unix://"+filepath.Join(rb.dk.execRoot, "docker.sock"), "DOCKER_CONFIG="+b.TempDir())}
	}
	return rb
}

func runCommand(prog string, args ...string) ([]byte, error) {
	c := benchCLI{prog: prog, env: os.Environ()}
	return c.cli(args...)
}

// timed runs f and returns how long it took.
func timed(f func()) time.Duration {
	start := time.Now()
	f()
	return time.Since(start)
}

// BenchmarkEnginePull: `docker pull` of the image, each round followed
// by an untimed `rmi`, so that every round downloads, verifies and
// unpacks all 5 layers.
func BenchmarkEnginePull(b *testing.B) {
	rb := startRegistryBench(b)
	var viaDocker, viaMinidock, dockerd []time.Duration
	for i := 0; i < registryBenchRounds; i++ {
		viaDocker = append(viaDocker, timed(func() { rb.mdDocker.mustCLI("pull", "-q", rb.ref) }))
		rb.md.mustCLI("rmi", rb.ref)
		viaMinidock = append(viaMinidock, timed(func() { rb.md.mustCLI("pull", "-q", rb.ref) }))
		rb.md.mustCLI("rmi", rb.ref)
		if rb.dk != nil {
			dockerd = append(dockerd, timed(func() { rb.dkDocker.mustCLI("pull", "-q", rb.ref) }))
			rb.dkDocker.mustCLI("rmi", rb.ref)
		}
	}
	rb.report(b, "pull", "download, verify, gunzip, unpack", viaDocker, viaMinidock, dockerd)
}

// BenchmarkEnginePush: each engine pulls the image once; then each round
// it is tagged into a fresh, empty docker-registry and pushed there, so
// that every layer is uploaded. minidock sends the layers as its store
// holds them (uncompressed tars: 50 MB); dockerd gzips them on the way
// (about 25 MB sent): unlike work, named as it is.
func BenchmarkEnginePush(b *testing.B) {
	rb := startRegistryBench(b)
	rb.mdDocker.mustCLI("pull", "-q", rb.ref)
	if rb.dk != nil {
		rb.dkDocker.mustCLI("pull", "-q", rb.ref)
	}
	push := func(c benchCLI) time.Duration {
		dst := peers.StartDockerRegistry(b).Addr + "/bench/pushed:1"
		c.mustCLI("tag", rb.ref, dst)
		d := timed(func() { c.mustCLI("push", "-q", dst) })
		c.mustCLI("rmi", dst)
		return d
	}
	minidockCLI := benchCLI{b: b, prog: binary, env: rb.md.env}
	var viaDocker, viaMinidock, dockerd []time.Duration
	for i := 0; i < registryBenchRounds; i++ {
		viaDocker = append(viaDocker, push(rb.mdDocker))
		viaMinidock = append(viaMinidock, push(minidockCLI))
		if rb.dk != nil {
			dockerd = append(dockerd, push(rb.dkDocker))
		}
	}
	rb.report(b, "push", "all 5 layers uploaded to an empty registry", viaDocker, viaMinidock, dockerd)
}

// report prints the medians side by side and the ratio (target: at most
// half of dockerd's time).
func (rb *registryBench) report(b *testing.B, what, detail string, viaDocker, viaMinidock, dockerd []time.Duration) {
	md, mm := median(viaDocker), median(viaMinidock)
	fmt.Printf("%s of a %.0f MB (as tars), %d-layer image, docker-registry on 127.0.0.1 (%s), median of %d rounds:\n",
		what, float64(rb.size)/1e6, rb.layers, detail, len(viaDocker))
	fmt.Printf("  docker 28 CLI -> minidock's daemon   %8.1f ms\n", ms(md))
	fmt.Printf("  minidock CLI  -> minidock's daemon   %8.1f ms\n", ms(mm))
	b.ReportMetric(ms(md), "minidock-ms")
	if rb.dk == nil {
		fmt.Println("  dockerd: skipped, /usr/sbin/dockerd not installed (apt-get install docker.io to compare)")
		return
	}
	dd := median(dockerd)
	ratio := float64(md) / float64(dd)
	fmt.Printf("  docker 28 CLI -> dockerd %-10s  %8.1f ms\n", rb.dk.version, ms(dd))
	fmt.Printf("  ratio minidock/dockerd, the same docker CLI: %.2f (target <= 0.50: %s)\n", ratio, verdict(ratio <= 0.5))
	b.ReportMetric(ms(dd), "dockerd-ms")
	b.ReportMetric(ratio, "minidock/dockerd")
}
