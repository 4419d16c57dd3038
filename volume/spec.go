package volume

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"minidock/api"
	"minidock/internal/mountinfo"
)

// Spec returns config.json's mounts for a container: defaults (the
// engine's /proc, /dev, /sys, /etc/hosts, ...) less those a container
// mount replaces, and less those below /dev when the container mounts
// /dev, then the container's mounts, a parent before what is mounted
// below it. The runtime performs them, inside the container's mount
// namespace, in that order.
//
//   - a bind: {type: bind, source: host path, options: [rbind (bind when
//     NonRecursive), ro when read-only, its propagation]};
//   - a volume: the same bind of the volume's data directory (a volume's
//     propagation is the root's);
//   - a tmpfs: {type: tmpfs, source: tmpfs, options: [noexec, nosuid,
//     nodev, rprivate, then its data, which may override them]}.
//
// rootPropagation is what linux.rootfsPropagation must be for the
// propagation asked ("" when the runtime's default, rslave, will do): a
// shared bind needs the container's root shared, and its source on a
// shared mount of the host; a slave one needs its source on a shared or
// slave mount. The sources' mounts are checked now, with Docker's error.
func Spec(defaults []specs.Mount, mounts []Mount) (out []specs.Mount, rootPropagation string, err error) {
	own := map[string]bool{}
	for _, m := range mounts {
		own[m.Destination] = true
	}
	for _, d := range defaults {
		dest := filepath.Clean(d.Destination)
		if own[dest] || (own["/dev"] && strings.HasPrefix(dest, "/dev/")) {
			continue
		}
		out = append(out, d)
	}
	sorted := append([]Mount(nil), mounts...)
	sort.SliceStable(sorted, func(i, j int) bool { return depth(sorted[i].Destination) < depth(sorted[j].Destination) })
	for _, m := range sorted {
		if m.Type == api.MountTypeTmpfs {
			out = append(out, specs.Mount{Destination: m.Destination, Type: "tmpfs", Source: "tmpfs", Options: tmpfsOptions(m.TmpfsData)})
			continue
		}
		if m.Source == "" {
			return nil, "", fmt.Errorf("mount on %s: no source (volume not set up)", m.Destination)
		}
		opts := []string{"rbind"}
		if m.NonRecursive {
			opts[0] = "bind"
		}
		if !m.RW {
			opts = append(opts, "ro")
		}
		switch m.Propagation {
		case api.PropagationShared, api.PropagationRShared:
			if err := checkPropagation(m.Source, "shared:"); err != nil {
				return nil, "", err
			}
			rootPropagation = "shared"
		case api.PropagationSlave, api.PropagationRSlave:
			if err := checkPropagation(m.Source, "shared:", "master:"); err != nil {
				return nil, "", err
			}
			if rootPropagation == "" {
				rootPropagation = "rslave"
			}
		}
		if m.Propagation != "" {
			opts = append(opts, string(m.Propagation))
		}
		out = append(out, specs.Mount{Destination: m.Destination, Type: "bind", Source: m.Source, Options: opts})
	}
	return out, rootPropagation, nil
}

// depth counts a path's components, so that /a is mounted before /a/b.
func depth(p string) int { return strings.Count(filepath.Clean(p), "/") }

// checkPropagation checks that the host mount holding source propagates
// as one of kinds says ("shared:" for a shared peer group, "master:" for
// a slave): a shared bind of a private mount would share nothing.
func checkPropagation(source string, kinds ...string) error {
	real, err := filepath.EvalSymlinks(source)
	if err != nil {
		return fmt.Errorf("bind source %s: %w", source, err)
	}
	e, err := mountinfo.Of(real)
	if err != nil {
		return err
	}
	for _, k := range kinds {
		if e.Has(k) {
			return nil
		}
	}
	if len(kinds) == 1 {
		return invalidf("path %s is mounted on %s but it is not a shared mount", source, e.Point)
	}
	return invalidf("path %s is mounted on %s but it is not a shared or slave mount", source, e.Point)
}
