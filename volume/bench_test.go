package volume

import (
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"minidock/internal/testutil"
)

// benchTree fills dir with an image directory of about 100 MB shaped like
// a real one: many small files, some medium, a few large, in nested
// directories, with symlinks and xattrs.
func benchTree(b *testing.B, dir string) int64 {
	rng := rand.New(rand.NewSource(1))
	buf := make([]byte, 2<<20)
	rng.Read(buf)
	var total int64
	for d := 0; d < 50; d++ {
		sub := filepath.Join(dir, fmt.Sprintf("pkg%02d", d))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			b.Fatal(err)
		}
		for i := 0; i < 20; i++ {
			size := 4 << 10
			switch {
			case i == 0:
				size = 1<<20 + rng.Intn(1<<20)
			case i < 6:
				size = 64 << 10
			}
			p := filepath.Join(sub, fmt.Sprintf("f%02d", i))
			if err := os.WriteFile(p, buf[:size], 0o644); err != nil {
				b.Fatal(err)
			}
			unix.Setxattr(p, "user.pkg", []byte(sub), 0)
			total += int64(size)
		}
		os.Symlink("f01", filepath.Join(sub, "link"))
	}
	return total
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// BenchmarkCopyUpVsCp compares CopyUp with GNU `cp -a` (owners, modes,
// times, links and xattrs kept, as CopyUp keeps them) on the same tree,
// alternating the two for a fixed number of rounds; run with
// -benchtime=1x. Reports the medians as MB/s of file content and their
// ratio (ours / cp; above 1 means faster than cp).
func BenchmarkCopyUpVsCp(b *testing.B) {
	testutil.RequireRoot(b)
	if _, err := exec.LookPath("cp"); err != nil {
		b.Skip("no cp")
	}
	dir := b.TempDir()
	rootfs := filepath.Join(dir, "rootfs")
	size := benchTree(b, filepath.Join(rootfs, "usr/lib"))
	const rounds = 7
	var ours, cp []time.Duration
	for r := 0; r < rounds; r++ {
		dst := filepath.Join(dir, fmt.Sprintf("ours%d", r))
		os.Mkdir(dst, 0o755)
		unix.Sync()
		t0 := time.Now()
		if _, err := CopyUp(rootfs, "/usr/lib", dst); err != nil {
			b.Fatal(err)
		}
		ours = append(ours, time.Since(t0))
		os.RemoveAll(dst)

		dst = filepath.Join(dir, fmt.Sprintf("cp%d", r))
		os.Mkdir(dst, 0o755)
		unix.Sync()
		t0 = time.Now()
		if out, err := exec.Command("cp", "-a", "--preserve=all", filepath.Join(rootfs, "usr/lib")+"/.", dst).CombinedOutput(); err != nil {
			b.Fatalf("cp -a: %v\n%s", err, out)
		}
		cp = append(cp, time.Since(t0))
		os.RemoveAll(dst)
	}
	mb := float64(size) / 1e6
	oursMBs := mb / median(ours).Seconds()
	cpMBs := mb / median(cp).Seconds()
	b.ReportMetric(oursMBs, "ours-MB/s")
	b.ReportMetric(cpMBs, "cp-MB/s")
	b.ReportMetric(oursMBs/cpMBs, "ratio")
	line := fmt.Sprintf("copy-up of a %.0f MB image directory (1000 files), median of %d: ours %.0f MB/s (%v), cp -a %.0f MB/s (%v), ratio %.2f",
		mb, rounds, oursMBs, median(ours).Round(time.Millisecond), cpMBs, median(cp).Round(time.Millisecond), oursMBs/cpMBs)
	b.Log(line)
	fmt.Println(line)
}
