// Package atomicfile replaces a file's content so that a reader sees the
// old content or the new, never a part: the data goes to a temporary file
// in the same directory, which rename(2) then puts in place in one step.
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
)

// WriteFile replaces path with data, durably: the temporary file is
// fsync'ed before the rename and the directory after it, so that after a
// crash the file holds the old content or the new. For records that must
// outlive the machine's next boot.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	if err := write(path, data, perm, true); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("write %s: fsync directory: %w", path, err)
	}
	return nil
}

// Replace replaces path with data, atomically for readers but without
// fsync: for state that describes running processes (a runtime's
// state.json, a pid file in /run), which no crash leaves meaningful.
func Replace(path string, data []byte, perm os.FileMode) error {
	return write(path, data, perm, false)
}

func write(path string, data []byte, perm os.FileMode, durable bool) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	err = f.Chmod(perm)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil && durable {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
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
