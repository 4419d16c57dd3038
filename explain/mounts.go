package explain

import (
	"fmt"
	"strings"

	"minidock/api"
	"minidock/internal/mountinfo"
)

// Overlay is the overlayfs mount at the root of a container.
type Overlay struct {
	Lower       []string // lowerdir=, top-most first
	Upper, Work string   // upperdir=, workdir=
	Options     string   // the superblock options as the kernel shows them
}

// Mounts reads the container's mount table, /proc/PID/mountinfo
// (mountinfo.ReadPID): every mount of its mount namespace, with paths as
// the init sees them, below its pivot_root'ed root. It also returns the
// overlayfs mount at "/" (the last mount there, the one seen), its
// options parsed; nil when the root is not an overlay.
func Mounts(pid int) ([]api.ExplainMount, *Overlay, error) {
	table, err := mountinfo.ReadPID(pid)
	if err != nil {
		return nil, nil, fmt.Errorf("mounts of pid %d: %w", pid, err)
	}
	out := make([]api.ExplainMount, 0, len(table))
	var root *Overlay
	for _, m := range table {
		out = append(out, api.ExplainMount{Point: m.Point, FSType: m.FSType, Source: m.Source, Root: m.Root, Options: m.Options})
		if m.Point == "/" {
			root = nil
			if m.FSType == "overlay" {
				o := parseOverlayOptions(m.SuperOptions)
				root = &o
			}
		}
	}
	return out, root, nil
}

// parseOverlayOptions reads lowerdir, upperdir and workdir out of
// overlayfs's superblock options. The kernel escapes ',' ':' and '\' in
// the paths it shows with a backslash; package overlay refuses such
// paths, so a plain split is enough here.
func parseOverlayOptions(opts string) Overlay {
	o := Overlay{Options: opts}
	for _, kv := range strings.Split(opts, ",") {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "lowerdir":
			o.Lower = strings.Split(v, ":")
		case "upperdir":
			o.Upper = v
		case "workdir":
			o.Work = v
		}
	}
	return o
}
