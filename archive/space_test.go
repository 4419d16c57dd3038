package archive

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"

	"minidock/internal/testutil"
)

// Sparse tarballs in the PAX 1.0 sparse format (what GNU tar --sparse
// --format=posix writes), built by hand: Go's tar writer does not write
// sparse entries.

// ustarHeader is a 512-byte header block.
func ustarHeader(name string, size int64, typ byte) []byte {
	h := make([]byte, 512)
	copy(h[0:], name)
	copy(h[100:], "0000644\x00")
	copy(h[108:], "0000000\x00")
	copy(h[116:], "0000000\x00")
	copy(h[124:], fmt.Sprintf("%011o\x00", size))
	copy(h[136:], fmt.Sprintf("%011o\x00", 1700000000))
	h[156] = typ
	copy(h[257:], "ustar\x0000")
	copy(h[148:], "        ")
	sum := 0
	for _, b := range h {
		sum += int(b)
	}
	copy(h[148:], fmt.Sprintf("%06o\x00 ", sum))
	return h
}

// paxRecord is "LEN key=value\n", LEN counting itself.
func paxRecord(k, v string) string {
	rest := " " + k + "=" + v + "\n"
	n := len(rest) + 1
	for len(strconv.Itoa(n))+len(rest) != n {
		n++
	}
	return strconv.Itoa(n) + rest
}

func pad512(b *bytes.Buffer) {
	if r := b.Len() % 512; r != 0 {
		b.Write(make([]byte, 512-r))
	}
}

// fragment is data at an offset of a sparse file.
type fragment struct {
	off  int64
	data string
}

// sparseTar is a tarball of one sparse file name of size bytes holding
// only frags (in order), and then a plain file "after".
func sparseTar(name string, size int64, frags ...fragment) []byte {
	var b bytes.Buffer
	pax := paxRecord("GNU.sparse.major", "1") + paxRecord("GNU.sparse.minor", "0") +
		paxRecord("GNU.sparse.name", name) + paxRecord("GNU.sparse.realsize", strconv.FormatInt(size, 10))
	b.Write(ustarHeader("PaxHeaders/"+name, int64(len(pax)), 'x'))
	b.WriteString(pax)
	pad512(&b)
	var sparseMap bytes.Buffer
	fmt.Fprintf(&sparseMap, "%d\n", len(frags))
	data := 0
	for _, f := range frags {
		fmt.Fprintf(&sparseMap, "%d\n%d\n", f.off, len(f.data))
		data += len(f.data)
	}
	pad512(&sparseMap)
	b.Write(ustarHeader("GNUSparseFile.0/"+name, int64(sparseMap.Len()+data), '0'))
	b.Write(sparseMap.Bytes())
	for _, f := range frags {
		b.WriteString(f.data)
	}
	pad512(&b)
	b.Write(ustarHeader("after", 2, '0'))
	b.WriteString("ok")
	pad512(&b)
	b.Write(make([]byte, 1024))
	return b.Bytes()
}

// A 20 KB-ish tarball holding a 10 GiB sparse file unpacks to a 10 GiB
// file that takes some kilobytes: the holes stay holes, the data is in
// place. A plain entry's runs of zeros become holes too.
func TestUnpackKeepsHoles(t *testing.T) {
	const size = 10 << 30
	tb := sparseTar("big", size, fragment{0, "start"}, fragment{5 << 30, "middle"}, fragment{size - 3, "end"})
	var zeros bytes.Buffer
	zeros.Write(make([]byte, 8<<20))
	zeros.WriteString("x")
	plain := mkTar(t, file("zeros", zeros.String()))
	if len(tb) > 20<<10 {
		t.Fatalf("the sparse tarball is %d bytes", len(tb))
	}
	dst := filepath.Join(t.TempDir(), "layer")
	n, err := Unpack(dst, bytes.NewReader(tb), nil)
	if err != nil {
		t.Fatal(err)
	}
	if n != size+2 {
		t.Errorf("Unpack says %d bytes of content, want %d", n, size+2)
	}
	st := lstat(t, filepath.Join(dst, "big"))
	if st.Size != size || st.Blocks*512 > 1<<20 {
		t.Errorf("big: %d bytes in %d blocks of 512: the holes were written", st.Size, st.Blocks)
	}
	f, err := os.Open(filepath.Join(dst, "big"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for off, want := range map[int64]string{0: "start", 5 << 30: "middle", size - 3: "end", 1 << 30: "\x00\x00\x00"} {
		got := make([]byte, len(want))
		if _, err := f.ReadAt(got, off); err != nil || string(got) != want {
			t.Errorf("at %d: %q, %v; want %q", off, got, err, want)
		}
	}
	if data, _ := os.ReadFile(filepath.Join(dst, "after")); string(data) != "ok" {
		t.Errorf("the entry after the sparse one: %q", data)
	}

	dst2 := filepath.Join(t.TempDir(), "layer")
	if _, err := Unpack(dst2, bytes.NewReader(plain), nil); err != nil {
		t.Fatal(err)
	}
	if st := lstat(t, filepath.Join(dst2, "zeros")); st.Size != 8<<20+1 || st.Blocks*512 > 64<<10 {
		t.Errorf("zeros: %d bytes in %d blocks", st.Size, st.Blocks)
	}
}

// A Budget's limit refuses a file before it is written and leaves
// nothing; one budget shared by two unpacks (an image load) bounds them
// together.
func TestUnpackBudget(t *testing.T) {
	big := bytes.Repeat([]byte("a"), 2<<20)
	layer := mkTar(t, file("a", "small"), file("b", string(big)))
	dst := filepath.Join(t.TempDir(), "layer")
	_, err := Unpack(dst, bytes.NewReader(layer), &UnpackOptions{Budget: &Budget{Limit: 1 << 20}})
	if !errors.Is(err, ErrNoSpace) {
		t.Fatalf("over the limit: %v", err)
	}
	if _, err := os.Stat(dst); !os.IsNotExist(err) {
		t.Errorf("a refused layer left %s", dst)
	}
	t.Log(err)
	shared := &Budget{Limit: 3 << 20}
	if _, err := Unpack(filepath.Join(t.TempDir(), "one"), bytes.NewReader(layer), &UnpackOptions{Budget: shared}); err != nil {
		t.Fatal(err)
	}
	if _, err := Unpack(filepath.Join(t.TempDir(), "two"), bytes.NewReader(layer), &UnpackOptions{Budget: shared}); !errors.Is(err, ErrNoSpace) {
		t.Errorf("the second layer of a shared budget: %v", err)
	}
	// a sparse file counts its holes against the limit
	sparse := sparseTar("big", 4<<30, fragment{0, "x"})
	if _, err := Unpack(filepath.Join(t.TempDir(), "three"), bytes.NewReader(sparse), &UnpackOptions{Budget: &Budget{Limit: 1 << 30}}); !errors.Is(err, ErrNoSpace) {
		t.Errorf("a 4 GiB sparse file within 1 GiB: %v", err)
	}
}

// On a 48 MiB tmpfs (in a mount namespace of this test's thread): an
// unpack that would leave less than the reserve free is refused before
// it starts when the filesystem is that full already, and while it
// writes otherwise; nothing is left and the space is free again.
func TestUnpackKeepsReserve(t *testing.T) {
	testutil.RequireRoot(t)
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the test's namespace
		errc <- func() error {
			if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
				return err
			}
			if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
				return err
			}
			mnt := t.TempDir()
			if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, "size=48m"); err != nil {
				return err
			}
			var before unix.Statfs_t
			unix.Statfs(mnt, &before)
			random := make([]byte, 40<<20)
			rand.Read(random)
			layer := mkTar(t, file("small", "x"), file("random", string(random)))
			dst := filepath.Join(mnt, "layer")
			_, err := Unpack(dst, bytes.NewReader(layer), &UnpackOptions{Budget: &Budget{Reserve: 16 << 20}})
			if !errors.Is(err, ErrNoSpace) {
				return fmt.Errorf("40 MiB into 48 MiB keeping 16 free: %v", err)
			}
			t.Log(err)
			if _, err := os.Stat(dst); !os.IsNotExist(err) {
				return fmt.Errorf("a refused layer left %s", dst)
			}
			var after unix.Statfs_t
			unix.Statfs(mnt, &after)
			if after.Bfree != before.Bfree {
				return fmt.Errorf("free blocks %d before, %d after", before.Bfree, after.Bfree)
			}
			// the reserve is more than what is free: refused before the start
			_, err = Unpack(dst, bytes.NewReader(mkTar(t, file("tiny", "x"))), &UnpackOptions{Budget: &Budget{Reserve: 64 << 20}})
			if !errors.Is(err, ErrNoSpace) {
				return fmt.Errorf("a layer on a filesystem under its reserve: %v", err)
			}
			return nil
		}()
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}
