package build

import (
	"fmt"
	"hash"
	"io"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// spool holds the build context's file contents end to end, as they
// arrive: the first memMax bytes (memSpoolSize) in memory, in chunks the tar
// stream is read straight into (no copy but the socket's, and no system
// call but the reads), the rest in a file with no name made in dir
// (O_TMPFILE: nothing of it outlives the build, even a daemon killed
// meanwhile). A typical context never reaches the file; a large one
// costs no more memory than memSpoolSize.
type spool struct {
	dir    string
	memMax int64               // the bytes held in memory at most
	chunks []*[spoolChunk]byte // the last one partly filled
	mem    int64               // bytes held in chunks
	file   *os.File            // what comes after the memory's share; nil until then
	size   int64               // bytes held in all
	buf    []byte              // the file's copy buffer
}

const (
	spoolChunk   = 1 << 20
	memSpoolSize = 64 << 20
)

// spoolChunks are the chunks of the builds that ended, for the next
// ones: memory the daemon has touched already, which costs no page
// faults to fill again. The pool lets them go after two garbage
// collections without a build.
var spoolChunks = sync.Pool{New: func() any { return new([spoolChunk]byte) }}

// fill appends what r gives until io.EOF, hashing it into h, and
// returns its size.
func (s *spool) fill(r io.Reader, h hash.Hash) (int64, error) {
	var n int64
	for s.mem < s.memMax {
		if int64(len(s.chunks)) == s.mem/spoolChunk { // the last chunk is full
			s.chunks = append(s.chunks, spoolChunks.Get().(*[spoolChunk]byte))
		}
		c := s.chunks[len(s.chunks)-1][s.mem%spoolChunk:]
		if rest := s.memMax - s.mem; int64(len(c)) > rest {
			c = c[:rest]
		}
		k, err := r.Read(c)
		h.Write(c[:k])
		s.mem, s.size, n = s.mem+int64(k), s.size+int64(k), n+int64(k)
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
	if s.file == nil {
		fd, err := unix.Open(s.dir, unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return n, fmt.Errorf("spool file in %s: %w", s.dir, err)
		}
		s.file, s.buf = os.NewFile(uintptr(fd), "build context"), make([]byte, 256<<10)
	}
	for {
		k, err := r.Read(s.buf)
		h.Write(s.buf[:k])
		if _, werr := s.file.Write(s.buf[:k]); werr != nil {
			return n, fmt.Errorf("spool: %w", werr)
		}
		s.size, n = s.size+int64(k), n+int64(k)
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// ReadAt reads the spool's bytes at off.
func (s *spool) ReadAt(p []byte, off int64) (int, error) {
	n := 0
	for len(p) > 0 && off < s.mem {
		c := s.chunks[off/spoolChunk][off%spoolChunk:]
		if rest := s.mem - off; int64(len(c)) > rest {
			c = c[:rest]
		}
		k := copy(p, c)
		p, off, n = p[k:], off+int64(k), n+k
	}
	if len(p) == 0 {
		return n, nil
	}
	if s.file == nil || off >= s.size {
		return n, io.EOF
	}
	k, err := s.file.ReadAt(p, off-s.mem)
	return n + k, err
}

// Close gives the memory back to the pool and frees the file, which has
// no name.
func (s *spool) Close() error {
	for _, c := range s.chunks {
		spoolChunks.Put(c)
	}
	s.chunks = nil
	if s.file != nil {
		return s.file.Close()
	}
	return nil
}
