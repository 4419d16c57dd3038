// Package mountinfo reads this process's mount table,
// /proc/self/mountinfo (proc(5)): where things are mounted and how their
// mount events propagate. Package overlay asks it whether a merged
// directory is mounted; package volume whether a volume's filesystem is,
// what lies below a directory about to be removed, and whether a bind
// source sits on a shared mount.
package mountinfo

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Mount is one line of the table.
type Mount struct {
	Point string // where it is mounted
	// Root is the directory of the filesystem mounted there ("/" for the
	// whole of it, a subdirectory for a bind mount of one).
	Root string
	// Options are the per-mount options ("rw,nosuid,relatime").
	Options string
	// Optional are the propagation fields: "shared:N" (a member of peer
	// group N), "master:N" (a slave of group N), "unbindable"; none for a
	// private mount.
	Optional []string
	// FSType and SuperOptions follow the "-": the filesystem type
	// ("cgroup") and its options ("rw,cpu,cpuacct").
	FSType, SuperOptions string
	// Source is the filesystem's source, after the type ("overlay",
	// "/dev/sda1", "tmpfs").
	Source string
}

// Read returns the mounts of this mount namespace, in the kernel's order
// (a mount after the one it is mounted on).
func Read() ([]Mount, error) { return readFile("/proc/self/mountinfo") }

// ReadPID returns the mounts of the mount namespace of process pid, as
// that process sees them (/proc/PID/mountinfo: paths relative to its root).
func ReadPID(pid int) ([]Mount, error) {
	return readFile(fmt.Sprintf("/proc/%d/mountinfo", pid))
}

func readFile(path string) ([]Mount, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read mount table: %w", err)
	}
	var out []Mount
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 7 {
			continue
		}
		m := Mount{Point: unescape(f[4]), Root: unescape(f[3]), Options: f[5]}
		for i, o := range f[6:] {
			if o == "-" {
				if rest := f[6+i+1:]; len(rest) >= 3 {
					m.FSType, m.Source, m.SuperOptions = rest[0], unescape(rest[1]), rest[2]
				}
				break
			}
			m.Optional = append(m.Optional, o)
		}
		out = append(out, m)
	}
	return out, nil
}

// unescape undoes the octal escapes (\040 for space, ...) that the kernel
// writes for unusual characters in mountinfo paths.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// IsMountPoint reports whether something is mounted at path (clean).
func IsMountPoint(path string) (bool, error) {
	table, err := Read()
	if err != nil {
		return false, err
	}
	for _, m := range table {
		if m.Point == path {
			return true, nil
		}
	}
	return false, nil
}

// Under lists what is mounted at dir (clean) or below it.
func Under(dir string) ([]string, error) {
	table, err := Read()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, m := range table {
		if m.Point == dir || strings.HasPrefix(m.Point, strings.TrimSuffix(dir, "/")+"/") {
			out = append(out, m.Point)
		}
	}
	return out, nil
}

// Of is the mount that holds path (clean, symlinks resolved): the last
// mounted of those whose mount point is the longest prefix of path.
func Of(path string) (Mount, error) {
	table, err := Read()
	if err != nil {
		return Mount{}, err
	}
	var best Mount
	for _, m := range table {
		if (path == m.Point || m.Point == "/" || strings.HasPrefix(path, m.Point+"/")) && len(m.Point) >= len(best.Point) {
			best = m
		}
	}
	return best, nil
}

// Has reports whether the mount's propagation fields have one starting
// with prefix ("shared:", "master:").
func (m Mount) Has(prefix string) bool {
	for _, o := range m.Optional {
		if strings.HasPrefix(o, prefix) {
			return true
		}
	}
	return false
}
