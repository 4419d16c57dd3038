package archive

import (
	"archive/tar"
	"fmt"
	"io"
)

// Retar copies the tarball read from r to w, passing every header
// through edit first (to check it, rename it, change its owner); the
// first error edit returns stops the copy and is returned as it is.
func Retar(w io.Writer, r io.Reader, edit func(*tar.Header) error) error {
	tr := tar.NewReader(r)
	tw := tar.NewWriter(w)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("read tar: %w", err)
		}
		if err := edit(hdr); err != nil {
			return err
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("write tar entry %q: %w", hdr.Name, err)
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return fmt.Errorf("copy tar entry %q: %w", hdr.Name, err)
		}
	}
	return tw.Close()
}
