package overlay

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"

	"golang.org/x/sys/unix"

	"minidock/archive"
)

// ChangeKind says what happened to a path; the values are the Docker
// Engine API's (GET /containers/{id}/changes).
type ChangeKind int

// The kinds of change, as numbered by the Docker Engine API.
const (
	Modified ChangeKind = 0
	Added    ChangeKind = 1
	Deleted  ChangeKind = 2
)

// String gives the one-letter form `docker diff` prints: C, A or D.
func (k ChangeKind) String() string {
	switch k {
	case Modified:
		return "C"
	case Added:
		return "A"
	case Deleted:
		return "D"
	}
	return "?"
}

// Change is one changed path of a container, absolute in its filesystem.
type Change struct {
	Path string
	Kind ChangeKind
}

// Changes lists what the upper directory changes over the lower layers
// (top-most first, as in Mount.Lower), without mounting anything: a
// whiteout is Deleted; a path in upper that the lower layers show is
// Modified (directories copied up to hold a changed child included);
// anything else in upper is Added; in an opaque directory, every name the
// lower layers showed and upper lacks is Deleted. Sorted by path.
func Changes(upper string, lower []string) ([]Change, error) {
	c := &changer{upper: upper, lower: lower}
	if err := c.walk(""); err != nil {
		return nil, err
	}
	sort.Slice(c.out, func(i, j int) bool { return c.out[i].Path < c.out[j].Path })
	return c.out, nil
}

type changer struct {
	upper string
	lower []string
	out   []Change
}

func (c *changer) walk(rel string) error {
	dir := filepath.Join(c.upper, rel)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("changes: read %q: %w", dir, err)
	}
	present := map[string]bool{}
	for _, e := range entries {
		name := path.Join(rel, e.Name())
		present[e.Name()] = true
		var st unix.Stat_t
		full := filepath.Join(c.upper, name)
		if err := unix.Lstat(full, &st); err != nil {
			return fmt.Errorf("changes: stat %q: %w", full, err)
		}
		if archive.IsWhiteout(&st) {
			c.out = append(c.out, Change{Path: "/" + name, Kind: Deleted})
			continue
		}
		kind := Added
		if c.inLower(name) {
			kind = Modified
		}
		c.out = append(c.out, Change{Path: "/" + name, Kind: kind})
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			if err := c.walk(name); err != nil {
				return err
			}
		}
	}
	if rel != "" && archive.IsOpaque(dir) {
		for _, n := range c.lowerNames(rel) {
			if !present[n] {
				c.out = append(c.out, Change{Path: "/" + path.Join(rel, n), Kind: Deleted})
			}
		}
	}
	return nil
}

// hiddenBelow reports whether, in layer l, an ancestor of p is a whiteout,
// a non-directory or an opaque directory: then no deeper layer shows p.
func hiddenBelow(l, p string) bool {
	for a := path.Dir(p); a != "." && a != "/"; a = path.Dir(a) {
		var st unix.Stat_t
		full := filepath.Join(l, a)
		if unix.Lstat(full, &st) != nil {
			continue
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR || archive.IsOpaque(full) {
			return true
		}
	}
	return false
}

// inLower reports whether the lower layers, stacked, show path p.
func (c *changer) inLower(p string) bool {
	for _, l := range c.lower {
		var st unix.Stat_t
		if unix.Lstat(filepath.Join(l, p), &st) == nil {
			return !archive.IsWhiteout(&st)
		}
		if hiddenBelow(l, p) {
			return false
		}
	}
	return false
}

// lowerNames lists the names the stacked lower layers show in directory p.
func (c *changer) lowerNames(p string) []string {
	seen := map[string]bool{}
	var names []string
	for _, l := range c.lower {
		full := filepath.Join(l, p)
		var st unix.Stat_t
		if unix.Lstat(full, &st) != nil {
			if hiddenBelow(l, p) {
				break
			}
			continue
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			break
		}
		entries, _ := os.ReadDir(full)
		for _, e := range entries {
			if seen[e.Name()] {
				continue
			}
			seen[e.Name()] = true
			var est unix.Stat_t
			if unix.Lstat(filepath.Join(full, e.Name()), &est) == nil && !archive.IsWhiteout(&est) {
				names = append(names, e.Name())
			}
		}
		if archive.IsOpaque(full) {
			break
		}
	}
	sort.Strings(names)
	return names
}
