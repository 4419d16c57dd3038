package archive

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// Room on disk. A small tarball can hold a huge file: a sparse entry (GNU
// or PAX format) stores only the data and a map of the holes, 20 KB for a
// 10 GiB file, and a gzip stream shrinks zeros a thousandfold. Two rules
// keep such input from filling the disk:
//
//   - holes stay holes: content is written a 4 KiB block at a time and an
//     all-zero block is skipped (the file's size is set at the end with
//     ftruncate), so a sparse file costs on disk what its data costs;
//   - a Budget bounds what one operation expands to (the bytes the
//     readers produce, holes included: a layer, or all that one image
//     load spools and unpacks) and checks, before each file and every
//     16 MiB written, that the filesystem keeps a reserve free.
//
// Refusals wrap ErrNoSpace; what was written is removed by the caller
// (Unpack removes its directory).

// ErrNoSpace is wrapped by every refusal of a Budget.
var ErrNoSpace = errors.New("no room")

// DefaultReserve is the free space a Budget keeps on the filesystem.
const DefaultReserve int64 = 64 << 20

// checkEvery is how many bytes may be written between two looks at the
// free space (statfs).
const checkEvery = 16 << 20

// Budget bounds what one operation may expand to and write. One Budget
// may be shared by the steps of an operation (every blob and layer of an
// image load); its methods are safe for concurrent use.
type Budget struct {
	// Limit is the most bytes the operation may expand to, holes
	// included; 0: no limit but the disk's.
	Limit int64
	// Reserve is the free space to keep on the filesystem written to;
	// 0: DefaultReserve.
	Reserve int64

	mu        sync.Mutex
	expanded  int64
	unchecked int64
}

// Expand counts n more bytes of expanded content against Limit.
func (b *Budget) Expand(n int64) error {
	if b == nil {
		return nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.Limit > 0 && b.expanded+n > b.Limit {
		return fmt.Errorf("%w: the content expands to more than %d bytes, over the limit of %d", ErrNoSpace, b.expanded+n, b.Limit)
	}
	b.expanded += n
	return nil
}

// Write is called before n bytes are written to the filesystem of fd:
// when n is large or enough was written since the last look, it checks
// that the filesystem keeps its reserve free after them.
func (b *Budget) Write(fd int, n int64) error {
	reserve := DefaultReserve
	if b != nil {
		b.mu.Lock()
		b.unchecked += n
		check := b.unchecked >= checkEvery || n >= checkEvery
		if check {
			b.unchecked = 0
		}
		if b.Reserve > 0 {
			reserve = b.Reserve
		}
		b.mu.Unlock()
		if !check {
			return nil
		}
	} else if n < checkEvery {
		return nil
	}
	return CheckFree(fd, n, reserve)
}

// CheckFree refuses n bytes more on the filesystem of fd unless reserve
// bytes stay free after them.
func CheckFree(fd int, n, reserve int64) error {
	var st unix.Statfs_t
	if err := unix.Fstatfs(fd, &st); err != nil {
		return fmt.Errorf("statfs: %w", err)
	}
	if free := int64(st.Bavail) * int64(st.Bsize); free-n < reserve {
		return fmt.Errorf("%w: %d bytes more would leave %d of the %d free on the filesystem, under the reserve of %d", ErrNoSpace, n, free-n, free, reserve)
	}
	return nil
}

// sparseBlock is the unit of hole detection: the page and usual
// filesystem block size.
const sparseBlock = 4096

var zeroBlock [sparseBlock]byte

// CopySparse copies r into f from offset 0 through buf (a multiple of
// 4 KiB; nil: 1 MiB), leaving every all-zero 4 KiB block as a hole, and
// sets f's size to the bytes read. Each buffer's bytes are counted by b
// (which may be nil: only the free space is watched) before they are
// written. It returns the bytes read.
func CopySparse(f *os.File, r io.Reader, buf []byte, b *Budget) (int64, error) {
	return copySparse(f, r, buf, b, true)
}

// copySparse is CopySparse; expand false when the caller counted the
// expansion already (Unpack: from the entry's header).
func copySparse(f *os.File, r io.Reader, buf []byte, b *Budget, expand bool) (int64, error) {
	if buf == nil {
		buf = make([]byte, 1<<20)
	}
	fd := int(f.Fd())
	var off int64
	for {
		n, rerr := io.ReadFull(r, buf)
		if n > 0 {
			if expand {
				if err := b.Expand(int64(n)); err != nil {
					return off, err
				}
			}
			if err := writeData(f, fd, buf[:n], off, b); err != nil {
				return off, err
			}
			off += int64(n)
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			return off, rerr
		}
	}
	if err := f.Truncate(off); err != nil {
		return off, fmt.Errorf("set size: %w", err)
	}
	return off, nil
}

// writeData writes the non-zero blocks of p at off, runs of them in one
// pwrite(2) each.
func writeData(f *os.File, fd int, p []byte, off int64, b *Budget) error {
	var data int64
	for i := 0; i < len(p); i += sparseBlock {
		if blk := p[i:min(i+sparseBlock, len(p))]; !isZero(blk) {
			data += int64(len(blk))
		}
	}
	if data == 0 {
		return nil
	}
	if err := b.Write(fd, data); err != nil {
		return err
	}
	if data == int64(len(p)) {
		_, err := f.WriteAt(p, off)
		return err
	}
	start := -1 // of the current run of data blocks
	for i := 0; i < len(p); i += sparseBlock {
		if isZero(p[i:min(i+sparseBlock, len(p))]) {
			if start >= 0 {
				if _, err := f.WriteAt(p[start:i], off+int64(start)); err != nil {
					return err
				}
				start = -1
			}
		} else if start < 0 {
			start = i
		}
	}
	if start >= 0 {
		_, err := f.WriteAt(p[start:], off+int64(start))
		return err
	}
	return nil
}

func isZero(blk []byte) bool { return bytes.Equal(blk, zeroBlock[:len(blk)]) }

// ReserveOrDefault is b's Reserve, DefaultReserve when b is nil or has
// none.
func (b *Budget) ReserveOrDefault() int64 {
	if b == nil || b.Reserve <= 0 {
		return DefaultReserve
	}
	return b.Reserve
}
