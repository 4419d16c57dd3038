package tests

import (
	"fmt"
	"os"
	"os/exec"
	"sort"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"minidock/internal/testutil"
)

// BenchmarkRunTrue measures start latency: `runtime run` of /bin/true on
// the same busybox bundle, minidock and runc alternately, and reports the
// medians and their ratio. Run with -benchtime=1x (`make bench`).
func BenchmarkRunTrue(b *testing.B) {
	testutil.RequireRoot(b)
	dir := benchBundle(b)
	sides := []struct {
		name string
		argv []string
	}{
		{"minidock", []string{binary, "runtime", "--root", "/run/minidock-bench"}},
	}
	if p, err := exec.LookPath("runc"); err == nil {
		sides = append(sides, struct {
			name string
			argv []string
		}{"runc", []string{p, "--root", "/run/minidock-bench-runc"}})
	}
	for _, side := range sides {
		root := side.argv[len(side.argv)-1]
		b.Cleanup(func() { os.Remove(root) }) // empty by then: each run deletes its container
	}
	const rounds = 31
	times := make([][]time.Duration, len(sides))
	for i := 0; i < rounds; i++ {
		for s, side := range sides {
			id := fmt.Sprintf("bench-%d-%d", s, i)
			args := append(append([]string{}, side.argv[1:]...), "run", "--bundle", dir, id)
			start := time.Now()
			out, err := exec.Command(side.argv[0], args...).CombinedOutput()
			d := time.Since(start)
			if err != nil {
				b.Fatalf("%s run: %v: %s", side.name, err, out)
			}
			times[s] = append(times[s], d)
		}
	}
	med := make([]time.Duration, len(sides))
	for s, side := range sides {
		med[s] = median(times[s])
		b.ReportMetric(float64(med[s].Microseconds())/1000, side.name+"-ms")
	}
	line := fmt.Sprintf("run /bin/true, median of %d: minidock %.1f ms", rounds, float64(med[0].Microseconds())/1000)
	if len(sides) > 1 {
		ratio := float64(med[0]) / float64(med[1])
		b.ReportMetric(ratio, "ratio")
		line += fmt.Sprintf(", runc %.1f ms, ratio %.2f", float64(med[1].Microseconds())/1000, ratio)
	}
	fmt.Println(line)
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration{}, d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

func benchBundle(b *testing.B) string {
	dir := b.TempDir()
	testutil.MakeBusyboxRootfs(b, dir+"/rootfs")
	spec := defaultSpecForBench()
	data, _ := jsonMarshal(spec)
	if err := writeFile(dir+"/config.json", data); err != nil {
		b.Fatal(err)
	}
	return dir
}

func defaultSpecForBench() *specs.Spec {
	s := defaultSpec()
	s.Process.Terminal = false
	s.Process.Args = []string{"/bin/true"}
	return s
}
