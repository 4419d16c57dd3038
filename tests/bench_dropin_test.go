package tests

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkDropinCtrRun measures `ctr run --rm` of /bin/true under one
// containerd, its runc v2 shim calling runc or minidock's runtime
// (--runc-binary), alternately, and prints the medians side by side. The
// target is minidock faster than runc. Run with -benchtime=1x (`make
// bench`), as root, under the root lock.
func BenchmarkDropinCtrRun(b *testing.B) {
	skipUnlessDropin(b, "containerd", "ctr", "containerd-shim-runc-v2")
	rts := dropinRuntimes(b, b.TempDir(), false)
	c := startContainerd(b, rts)
	const rounds = 21
	times := make([][]time.Duration, len(rts))
	for i := 0; i < rounds; i++ {
		for s, r := range rts {
			id := fmt.Sprintf("bench-%s-%d", r.name, i)
			start := time.Now()
			c.mustCtr(c.ctrRunArgs(r, []string{"--rm"}, id, "true")...)
			times[s] = append(times[s], time.Since(start))
		}
	}
	c.checkClean()
	reportDropin(b, fmt.Sprintf("ctr run --rm /bin/true, median of %d", rounds), rts, times)
}

// BenchmarkDropinCRIPod measures crictl runp + create + start of one pod
// (host network, one busybox container) under containerd's CRI plugin,
// on the runtime handler "runc" or "minidock", alternately; the pod is
// stopped and removed after each round, untimed.
func BenchmarkDropinCRIPod(b *testing.B) {
	skipUnlessDropin(b, "containerd", "ctr", "containerd-shim-runc-v2")
	crictlPath(b)
	rts := dropinRuntimes(b, b.TempDir(), false)
	c := startContainerd(b, rts)
	dir := b.TempDir()
	ctrConfig := filepath.Join(dir, "ctr.json")
	writeJSON(b, ctrConfig, map[string]any{
		"metadata": map[string]any{"name": "sleeper"},
		"image":    map[string]any{"image": busyboxImage},
		"command":  []string{"sleep", "100000"},
	})
	const rounds = 11
	times := make([][]time.Duration, len(rts))
	for i := 0; i < rounds; i++ {
		for s, r := range rts {
			pod := filepath.Join(dir, fmt.Sprintf("pod-%s-%d.json", r.name, i))
			name := fmt.Sprintf("bench-%s-%d", r.name, i)
			writeJSON(b, pod, map[string]any{
				"metadata": map[string]any{"name": name, "namespace": "default", "uid": name + "-uid"},
				"linux": map[string]any{
					"cgroup_parent":    c.cgroupParent + "/" + name,
					"security_context": map[string]any{"namespace_options": map[string]any{"network": 2}},
				},
			})
			start := time.Now()
			podID := c.mustCrictl("runp", "--runtime", r.name, pod)
			ctrID := c.mustCrictl("create", podID, ctrConfig, pod)
			c.mustCrictl("start", ctrID)
			times[s] = append(times[s], time.Since(start))
			c.mustCrictl("stopp", podID)
			c.mustCrictl("rmp", podID)
			removePodCgroup(b, c.cgroupParent+"/"+name)
		}
	}
	c.checkClean()
	reportDropin(b, fmt.Sprintf("crictl runp + create + start, median of %d", rounds), rts, times)
}

// reportDropin prints the medians of each runtime and minidock's ratio
// to runc (rts[0] is runc, rts[1] minidock).
func reportDropin(b *testing.B, what string, rts []dropinRuntime, times [][]time.Duration) {
	runc, md := median(times[0]), median(times[1])
	ratio := float64(md) / float64(runc)
	b.ReportMetric(ms(runc), "runc-ms")
	b.ReportMetric(ms(md), "minidock-ms")
	b.ReportMetric(ratio, "ratio")
	fmt.Printf("%s: runc %.1f ms, minidock %.1f ms, ratio %.2f (target < 1: %s)\n", what, ms(runc), ms(md), ratio, verdict(ratio < 1))
}
