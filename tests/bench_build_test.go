package tests

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// BenchmarkBuild times a 6-step build (FROM busybox, COPY of a 20 MB
// tree, three RUNs, CMD) with the docker 28 CLI's legacy builder
// (DOCKER_BUILDKIT=0) against minidock's daemon and against Debian's
// dockerd, sides alternating: cold (--no-cache: every step runs) and
// fully cached (nothing changed: every step from the cache). RUNs use
// --network none on both sides (the benchmark's dockerd has no bridge);
// minidock's own CLI, and its default network, are timed beside them.
// Targets: cached at most a fifth of dockerd's, cold at most half.
func BenchmarkBuild(b *testing.B) {
	md, dk := benchEngines(b)
	docker28 := dockerCLI
	if _, err := os.Stat(docker28); err != nil {
		b.Skipf("the docker CLI %s is not installed", docker28)
	}
	dir := benchBuildContext(b)
	env := func(sock string) []string {
		return append(os.Environ(), "DOCKER_HOST=unix://"+sock, "DOCKER_CONFIG="+b.TempDir(), "DOCKER_BUILDKIT=0")
	}
	mdDocker := benchCLI{b: b, prog: docker28, env: env(filepath.Join(md.execRoot, "d.sock"))}
	type side struct {
		name string
		cli  benchCLI
		args []string
	}
	sides := []side{
		{"docker CLI → minidock", mdDocker, []string{"build", "--network", "none", "-t", "bench-build", dir}},
		{"minidock CLI → minidock", md.benchCLI, []string{"build", "--network", "none", "-t", "bench-build", dir}},
		{"minidock CLI → minidock, default network", md.benchCLI, []string{"build", "-t", "bench-build", dir}},
	}
	if dk != nil {
		sides = append(sides, side{"docker CLI → dockerd", benchCLI{b: b, prog: docker28, env: env(filepath.Join(dk.execRoot, "docker.sock"))},
			[]string{"build", "--network", "none", "-t", "bench-build", dir}})
	}
	for _, s := range sides { // warm-up, and the first image the cached rounds find
		out, err := s.cli.cli(s.args...)
		if err != nil {
			b.Fatalf("%s: %v", s.name, err)
		}
		if !strings.Contains(string(out), "Successfully tagged") {
			b.Fatalf("%s: %s", s.name, out)
		}
	}
	measure := func(rounds int, extra ...string) []time.Duration {
		times := make([][]time.Duration, len(sides))
		for i := 0; i < rounds; i++ {
			for k, s := range sides {
				args := append(append([]string{s.args[0]}, extra...), s.args[1:]...)
				start := time.Now()
				out, err := s.cli.cli(args...)
				times[k] = append(times[k], time.Since(start))
				if err != nil {
					b.Fatalf("%s: %v", s.name, err)
				}
				cached := strings.Count(string(out), "Using cache")
				if len(extra) == 0 && cached != 5 || len(extra) > 0 && cached != 0 {
					b.Fatalf("%s %v: %d steps from the cache:\n%s", s.name, extra, cached, out)
				}
			}
		}
		med := make([]time.Duration, len(sides))
		for k := range sides {
			med[k] = median(times[k])
		}
		return med
	}
	cold := measure(5, "--no-cache")
	cached := measure(11)
	fmt.Printf("build of 6 steps (FROM busybox, COPY 20 MB in 200 files, 3 RUNs, CMD), medians, sides alternating:\n")
	fmt.Printf("  %-44s %10s %10s\n", "", "cold", "cached")
	for k, s := range sides {
		fmt.Printf("  %-44s %7.1f ms %7.1f ms\n", s.name, ms(cold[k]), ms(cached[k]))
		b.ReportMetric(ms(cold[k]), strings.NewReplacer(" ", "-", "→", "to", ",", "").Replace(s.name)+"-cold-ms")
		b.ReportMetric(ms(cached[k]), strings.NewReplacer(" ", "-", "→", "to", ",", "").Replace(s.name)+"-cached-ms")
	}
	if dk == nil {
		fmt.Println("  dockerd: skipped, /usr/sbin/dockerd not installed")
		return
	}
	d := len(sides) - 1
	coldRatio, cachedRatio := float64(cold[0])/float64(cold[d]), float64(cached[0])/float64(cached[d])
	b.ReportMetric(coldRatio, "cold-minidock/docker")
	b.ReportMetric(cachedRatio, "cached-minidock/docker")
	fmt.Printf("  ratio minidock/dockerd, the same docker CLI: cold %.3f (target <= 0.5: %s), cached %.3f (target <= 0.2: %s)\n",
		coldRatio, verdict(coldRatio <= 0.5), cachedRatio, verdict(cachedRatio <= 0.2))
}

// benchBuildContext writes the benchmark's build context: a Dockerfile
// and a tree of 200 files of 100 kB of random bytes (20 MB) in 4
// directories.
func benchBuildContext(b *testing.B) string {
	dir := b.TempDir()
	buf := make([]byte, 100_000)
	for d := 0; d < 4; d++ {
		sub := filepath.Join(dir, "tree", fmt.Sprintf("d%d", d))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			b.Fatal(err)
		}
		for f := 0; f < 50; f++ {
			rand.Read(buf)
			if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%02d", f)), buf, 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
	df := `FROM busybox
COPY tree /tree
RUN cat /tree/d0/f00 /tree/d1/f01 > /joined
RUN find /tree -type f | wc -l > /count
RUN rm /tree/d3/f49 && echo removed >> /count
CMD ["cat", "/count"]
`
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644); err != nil {
		b.Fatal(err)
	}
	return dir
}
