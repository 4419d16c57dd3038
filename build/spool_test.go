package build

import (
	"bytes"
	"crypto/sha256"
	"io"
	"math/rand"
	"testing"
	"testing/iotest"
)

// TestSpool fills a spool whose memory share ends inside its third
// chunk with files of many sizes, read in small pieces, and reads each
// back from memory, from the file and across the two.
func TestSpool(t *testing.T) {
	s := &spool{dir: t.TempDir(), memMax: 2*spoolChunk + spoolChunk/2}
	defer s.Close()
	rng := rand.New(rand.NewSource(1))
	type file struct {
		off  int64
		data []byte
	}
	var files []file
	for _, size := range []int{0, 10, spoolChunk - 10, 20, spoolChunk, 0, 3 * spoolChunk / 4, 12345, spoolChunk + 7, 1} {
		data := make([]byte, size)
		rng.Read(data)
		h := sha256.New()
		off := s.size
		n, err := s.fill(iotest.HalfReader(bytes.NewReader(data)), h)
		if err != nil || n != int64(size) {
			t.Fatalf("fill %d bytes: %d, %v", size, n, err)
		}
		if sum := sha256.Sum256(data); !bytes.Equal(h.Sum(nil), sum[:]) {
			t.Fatalf("fill %d bytes: wrong digest", size)
		}
		files = append(files, file{off, data})
	}
	if s.file == nil || s.mem != s.memMax {
		t.Fatalf("memory %d of %d, file %v: the spool did not go on into its file", s.mem, s.memMax, s.file)
	}
	for i, f := range files {
		got, err := io.ReadAll(io.NewSectionReader(s, f.off, int64(len(f.data))))
		if err != nil || !bytes.Equal(got, f.data) {
			t.Fatalf("file %d (%d bytes at %d): read back %d bytes, %v", i, len(f.data), f.off, len(got), err)
		}
	}
	if n, err := s.ReadAt(make([]byte, 10), s.size-5); n != 5 || err != io.EOF {
		t.Fatalf("read past the end: %d, %v", n, err)
	}
}
