// Package atomicfile writes files that matter so that a crash at any
// moment leaves either the old content or the new, never a mix: the data
// goes to a temporary file beside the target, is fsync'ed, and is renamed
// over the target (rename(2) within a directory is atomic).
package atomicfile

import (
	"fmt"
	"os"
)

// Write replaces path's content with data.
func Write(path string, data []byte, perm os.FileMode) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, perm)
	if err == nil {
		_, err = f.Write(data)
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
