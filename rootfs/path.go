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
// an absolute link target starts again at root, and a ".." at root stays
// there, in the path or in a link target, as the kernel treats ".." at a
// process's root (and runc, and openat2's RESOLVE_IN_ROOT): an image whose
// volume path goes through a link like "../../run" gets its mount inside
// the rootfs, and a config or an image never makes the runtime mount or
// write outside it.
//
// The path it returns holds no symlink when it is walked, but a process
// that shares a directory on the way (a volume a running container
// uses) could put one there afterwards: Mount opens the result again
// inside the rootfs before it mounts on it.
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
			if len(resolved) > 0 { // at root, ".." is root
				resolved = resolved[:len(resolved)-1]
			}
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
