package archive

import (
	"archive/tar"
	"bufio"
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

// benchLayer writes a synthetic layer tarball of about 100 MB, shaped like
// a real one: many small files, some medium, a few large, in nested dirs.
func benchLayer(b *testing.B, p string) int64 {
	f, err := os.Create(p)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	tw := tar.NewWriter(bw)
	rng := rand.New(rand.NewSource(1))
	buf := make([]byte, 2<<20)
	rng.Read(buf)
	var total int64
	mtime := time.Unix(1700000000, 0)
	for d := 0; d < 50; d++ {
		dir := fmt.Sprintf("usr/lib/pkg%02d/", d)
		tw.WriteHeader(&tar.Header{Name: dir, Typeflag: tar.TypeDir, Mode: 0o755, ModTime: mtime})
		for i := 0; i < 20; i++ {
			size := 4 << 10
			switch {
			case i == 0:
				size = 1<<20 + rng.Intn(1<<20)
			case i < 6:
				size = 64 << 10
			}
			tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("%sf%02d", dir, i), Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(size), ModTime: mtime})
			tw.Write(buf[:size])
			total += int64(size)
		}
		tw.WriteHeader(&tar.Header{Name: dir + "link", Typeflag: tar.TypeSymlink, Linkname: "f01", ModTime: mtime})
	}
	tw.Close()
	bw.Flush()
	return total
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// BenchmarkUnpackVsTar compares Unpack with GNU `tar -x` on the same
// layer, alternating the two for a fixed number of rounds; run with
// -benchtime=1x. Reports the medians as MB/s of file content and their
// ratio (ours / tar; above 1 means faster than tar).
func BenchmarkUnpackVsTar(b *testing.B) {
	testutil.RequireRoot(b)
	if _, err := exec.LookPath("tar"); err != nil {
		b.Skip("no tar")
	}
	dir := b.TempDir()
	layer := filepath.Join(dir, "layer.tar")
	size := benchLayer(b, layer)
	const rounds = 7
	var ours, gnu []time.Duration
	for r := 0; r < rounds; r++ {
		dst := filepath.Join(dir, fmt.Sprintf("ours%d", r))
		unix.Sync()
		f, err := os.Open(layer)
		if err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		if _, err := Unpack(dst, f, nil); err != nil {
			b.Fatal(err)
		}
		ours = append(ours, time.Since(t0))
		f.Close()
		os.RemoveAll(dst)

		dst = filepath.Join(dir, fmt.Sprintf("tar%d", r))
		os.Mkdir(dst, 0o755)
		unix.Sync()
		t0 = time.Now()
		if out, err := exec.Command("tar", "-xf", layer, "-C", dst).CombinedOutput(); err != nil {
			b.Fatalf("tar -x: %v\n%s", err, out)
		}
		gnu = append(gnu, time.Since(t0))
		os.RemoveAll(dst)
	}
	mb := float64(size) / 1e6
	oursMBs := mb / median(ours).Seconds()
	tarMBs := mb / median(gnu).Seconds()
	b.ReportMetric(oursMBs, "ours-MB/s")
	b.ReportMetric(tarMBs, "tar-MB/s")
	b.ReportMetric(oursMBs/tarMBs, "ratio")
	line := fmt.Sprintf("unpack of a %.0f MB layer, median of %d: ours %.0f MB/s (%v), tar -x %.0f MB/s (%v), ratio %.2f",
		mb, rounds, oursMBs, median(ours).Round(time.Millisecond), tarMBs, median(gnu).Round(time.Millisecond), oursMBs/tarMBs)
	b.Log(line)
	fmt.Println(line)
}
