package rootfs

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// maxSymlinks bounds symlink resolution, as the kernel does (ELOOP at 40).
const maxSymlinks = 40

// Resolve turns a path inside the container (e.g. "/etc/hosts") into a
// host path under root, following symlinks as the container would see them:
// an absolute link target starts again at root. A ".." that would climb
// above root, in the path or in a link target, is an error: a config or an
// image must not make the runtime mount or write outside the rootfs.
//
// The walk is done on the host before the container runs, so nothing in the
// container can race it.
func Resolve(root, unsafePath string) (string, error) {
	var resolved []string // components below root, no symlinks in them
	pending := splitPath(unsafePath)
	links := 0
	for len(pending) > 0 {
		c := pending[0]
		pending = pending[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			if len(resolved) == 0 {
				return "", fmt.Errorf("path %q escapes the rootfs %s through \"..\"", unsafePath, root)
			}
			resolved = resolved[:len(resolved)-1]
			continue
		}
		cur := filepath.Join(append([]string{root}, append(resolved, c)...)...)
		fi, err := os.Lstat(cur)
		if err != nil {
			if os.IsNotExist(err) {
				// The rest does not exist yet; it will be created as plain
				// directories, which cannot point anywhere.
				resolved = append(resolved, c)
				continue
			}
			return "", fmt.Errorf("resolve %q in %s: %w", unsafePath, root, err)
		}
		if fi.Mode()&os.ModeSymlink == 0 {
			resolved = append(resolved, c)
			continue
		}
		links++
		if links > maxSymlinks {
			return "", fmt.Errorf("resolve %q in %s: too many symlinks", unsafePath, root)
		}
		target, err := os.Readlink(cur)
		if err != nil {
			return "", fmt.Errorf("readlink %s: %w", cur, err)
		}
		if filepath.IsAbs(target) {
			resolved = nil
		}
		pending = append(splitPath(target), pending...)
	}
	return filepath.Join(append([]string{root}, resolved...)...), nil
}

func splitPath(p string) []string {
	return strings.Split(filepath.ToSlash(p), "/")
}
