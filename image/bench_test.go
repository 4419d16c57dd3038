package image

import (
	"bytes"
	"fmt"
	"testing"
	"time"
)

// BenchmarkMountUnmount times Store.Mount + Store.Unmount of a container
// rootfs on a 1-layer and a 40-layer image, alternating the two for a
// fixed number of rounds; run with -benchtime=1x. Reports medians in
// microseconds and their ratio.
func BenchmarkMountUnmount(b *testing.B) {
	s := newStore(b)
	for _, n := range []int{1, 40} {
		if _, err := s.LoadArchive(bytes.NewReader(manyLayers(b, n))); err != nil {
			b.Fatal(err)
		}
		if _, err := s.PrepareRootfs(fmt.Sprintf("c%d", n), fmt.Sprintf("layers:%d", n)); err != nil {
			b.Fatal(err)
		}
	}
	const rounds = 31
	times := map[int][]time.Duration{}
	for r := 0; r < rounds; r++ {
		for _, n := range []int{1, 40} {
			id := fmt.Sprintf("c%d", n)
			t0 := time.Now()
			if _, err := s.Mount(id); err != nil {
				b.Fatal(err)
			}
			if err := s.Unmount(id); err != nil {
				b.Fatal(err)
			}
			times[n] = append(times[n], time.Since(t0))
		}
	}
	m1, m40 := median(times[1]), median(times[40])
	b.ReportMetric(float64(m1.Microseconds()), "1layer-us")
	b.ReportMetric(float64(m40.Microseconds()), "40layer-us")
	b.ReportMetric(float64(m40)/float64(m1), "ratio")
	line := fmt.Sprintf("overlay mount+unmount, median of %d: 1 layer %v, 40 layers %v, ratio %.2f", rounds, m1, m40, float64(m40)/float64(m1))
	b.Log(line)
	fmt.Println(line)
	for _, n := range []int{1, 40} {
		s.RemoveRootfs(fmt.Sprintf("c%d", n))
	}
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s[len(s)/2]
}
