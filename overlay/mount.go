// Package overlay is the copy-on-write half of container storage: it mounts
// overlayfs (read-only lower layers + a writable upper layer = one merged
// view) and lists what an upper directory changes over its lower layers.
// Layer tarballs are package archive's: it unpacks them into directories
// overlayfs can use as lower layers (OCI whiteout files become overlayfs
// whiteouts) and turns an upper directory back into one. It knows nothing
// of images, manifests or digests; package image builds on it. See
// docs/overlayfs.md.
package overlay

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"minidock/internal/mountinfo"

	"minidock/internal/trace"
)

// Mount describes one overlayfs mount.
type Mount struct {
	// Lower are the read-only layers, top-most first, exactly in the order
	// of overlayfs's lowerdir= option (the base layer comes last).
	Lower []string
	// Upper receives every change made through Target; Work is overlayfs's
	// scratch directory and must be an empty directory on Upper's
	// filesystem. Both empty makes a read-only mount (needs two or more
	// lower layers, an overlayfs rule).
	Upper, Work string
	// Target is the mount point where the merged view appears.
	Target string
	// Trace receives the mount(2) (and, for many layers, the unshare and
	// chdir before it) with its options and result; nil: no trace.
	Trace *trace.Tracer
}

// traceStep is the step of a container's trace that the rootfs mount
// belongs to.
const traceStep = "rootfs"

// whyMount says what the overlay mount is for.
const whyMount = "the container's root filesystem: the image's layers (lowerdir, top first) read-only under its own upperdir"

// mount is mount(2) of the overlay at m.Target with opts, traced.
func (m *Mount) mount(opts string) error {
	m.Trace.Helper()
	return m.Trace.Call(traceStep, "mount", fmt.Sprintf("src=overlay, dst=%s, type=overlay, data=%s", m.Target, opts), whyMount,
		unix.Mount("overlay", m.Target, "overlay", 0, opts))
}

// fixedOptions switch off overlayfs features that would change what an
// upper directory looks like: with redirect_dir a renamed directory is
// recorded as an xattr instead of a copy, with metacopy a chmod copies up
// metadata only, with index hard links are tracked in the work dir. Turning
// them off keeps every upper dir a plain tree that WriteDiff can read.
const fixedOptions = "index=off,redirect_dir=off,metacopy=off"

// pageSize is the most the kernel copies of mount(2)'s data argument (one
// page, including the terminating NUL).
var pageSize = os.Getpagesize()

// options builds the mount data for m with the given lower paths.
func (m *Mount) options(lower []string) string {
	var b strings.Builder
	b.WriteString(fixedOptions)
	b.WriteString(",lowerdir=")
	b.WriteString(strings.Join(lower, ":"))
	if m.Upper != "" {
		b.WriteString(",upperdir=" + m.Upper + ",workdir=" + m.Work)
	}
	return b.String()
}

// check refuses paths overlayfs would misparse: ',' separates options and
// ':' separates lower layers.
func (m *Mount) check() error {
	if len(m.Lower) == 0 {
		return fmt.Errorf("overlay mount on %q: no lower layer", m.Target)
	}
	if (m.Upper == "") != (m.Work == "") {
		return fmt.Errorf("overlay mount on %q: upper and work dirs go together", m.Target)
	}
	if m.Upper == "" && len(m.Lower) < 2 {
		return fmt.Errorf("overlay mount on %q: a read-only overlay needs at least two lower layers", m.Target)
	}
	all := append([]string{m.Upper, m.Work, m.Target}, m.Lower...)
	for _, p := range all {
		if strings.ContainsAny(p, ",:\\") {
			return fmt.Errorf("overlay mount on %q: path %q contains ',', ':' or '\\'", m.Target, p)
		}
	}
	return nil
}

// MountOverlay mounts m with mount(2), filesystem type "overlay".
//
// The whole option string must fit in one page (4096 bytes). With many
// layers and long absolute paths it does not, so MountOverlay then writes
// the lower layers relative to their common parent directory and calls
// mount(2) from an OS thread that has its own working directory there
// (unshare(CLONE_FS) + chdir on a locked thread, which is then thrown away
// so the rest of the process never sees the changed cwd). Together with the
// short links that package image keeps (overlay/l/<id>), this mounts
// hundreds of layers. See docs/overlayfs.md, "The 40-layer trick".
func MountOverlay(m Mount) error {
	if err := m.check(); err != nil {
		return err
	}
	opts := m.options(m.Lower)
	if len(opts) < pageSize {
		if err := m.mount(opts); err != nil {
			return fmt.Errorf("mount overlay on %q (%d lower layers): %w", m.Target, len(m.Lower), err)
		}
		return nil
	}
	dir := commonDir(m.Lower)
	if dir == "" || dir == "/" {
		return fmt.Errorf("mount overlay on %q: options are %d bytes (limit %d) and the %d lower layers share no parent directory to shorten them against", m.Target, len(opts), pageSize-1, len(m.Lower))
	}
	rel := make([]string, len(m.Lower))
	for i, l := range m.Lower {
		r, err := filepath.Rel(dir, l)
		if err != nil {
			return fmt.Errorf("mount overlay on %q: %w", m.Target, err)
		}
		rel[i] = r
	}
	opts = m.options(rel)
	if len(opts) >= pageSize {
		return fmt.Errorf("mount overlay on %q: options are %d bytes even relative to %q (limit %d): too many layers", m.Target, len(opts), dir, pageSize-1)
	}
	errc := make(chan error, 1)
	go func() {
		// Never unlocked: when this goroutine ends, the Go runtime ends the
		// thread with it, together with its private working directory.
		runtime.LockOSThread()
		if err := m.Trace.Call(traceStep, "unshare", "CLONE_FS", "a working directory of this thread's own, to shorten the layers' paths", unix.Unshare(unix.CLONE_FS)); err != nil {
			errc <- fmt.Errorf("unshare(CLONE_FS) for overlay mount on %q: %w", m.Target, err)
			return
		}
		if err := m.Trace.Call(traceStep, "chdir", dir, "the layers' common parent: lowerdir= lists them relative to it", unix.Chdir(dir)); err != nil {
			errc <- fmt.Errorf("chdir %q for overlay mount on %q: %w", dir, m.Target, err)
			return
		}
		if err := m.mount(opts); err != nil {
			errc <- fmt.Errorf("mount overlay on %q (%d lower layers relative to %q): %w", m.Target, len(m.Lower), dir, err)
			return
		}
		errc <- nil
	}()
	return <-errc
}

// commonDir is the longest directory that contains every path in ps.
func commonDir(ps []string) string {
	dir := filepath.Dir(filepath.Clean(ps[0]))
	for _, p := range ps[1:] {
		p = filepath.Clean(p)
		for dir != "/" && !strings.HasPrefix(p, dir+"/") {
			dir = filepath.Dir(dir)
		}
	}
	return dir
}

// Unmount unmounts the overlay at target with umount2(2). It is not an
// error if nothing is mounted there. A busy mount is retried for a short
// while (a process that just exited may still hold it) before failing.
func Unmount(target string) error {
	var err error
	for i := 0; i < 50; i++ {
		err = unix.Unmount(target, unix.UMOUNT_NOFOLLOW)
		if err == nil {
			return nil
		}
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT) {
			mounted, merr := IsMounted(target)
			if merr == nil && !mounted {
				return nil
			}
		}
		if !errors.Is(err, unix.EBUSY) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("unmount %q: %w", target, err)
}

// IsMounted reports whether path is a mount point in this mount namespace,
// by reading /proc/self/mountinfo.
func IsMounted(path string) (bool, error) {
	return mountinfo.IsMountPoint(filepath.Clean(path))
}
