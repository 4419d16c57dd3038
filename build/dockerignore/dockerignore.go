// Package dockerignore reads .dockerignore files and decides, with
// Docker's rules, which paths of a build context they leave out. The
// builder (package build) applies it to the context it receives; the
// client (minidock build) applies it to the context it sends, so that
// what is ignored never travels.
package dockerignore

import (
	"fmt"
	"path"
	"strings"
)

// rule is one line of a .dockerignore file.
type rule struct {
	segments []string // the pattern split at '/'
	except   bool     // "!pattern": take back what an earlier rule excluded
}

// Matcher decides which paths of a build context a .dockerignore
// excludes, with Docker's rules: a pattern is matched against the path
// and each of its parent directories (so "docs" excludes docs/a/b); '*',
// '?' and '[...]' match within one path element as path.Match does, "**"
// matches any number of elements (none too); a leading '/' and "./" mean
// the context root; "!" before a pattern makes an exception; the last
// rule that matches decides.
type Matcher struct{ rules []rule }

// Parse reads a .dockerignore: one pattern a line, blank lines and
// lines starting with '#' skipped.
func Parse(data string) (*Matcher, error) {
	m := &Matcher{}
	for n, line := range strings.Split(data, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		r := rule{}
		if strings.HasPrefix(line, "!") {
			r.except = true
			line = strings.TrimSpace(line[1:])
		}
		p := path.Clean("/" + line)[1:] // root-relative, no "..", no "./"
		if p == "" {
			if r.except {
				continue
			}
			p = "**" // "/" or ".": everything
		}
		for _, seg := range strings.Split(p, "/") {
			if _, err := path.Match(seg, ""); err != nil {
				return nil, fmt.Errorf(".dockerignore line %d: bad pattern %q: %w", n+1, line, err)
			}
		}
		r.segments = strings.Split(p, "/")
		m.rules = append(m.rules, r)
	}
	return m, nil
}

// Excluded reports whether the context path rel (slash-separated,
// relative to the root) is left out of the build. A nil Matcher
// excludes nothing.
func (m *Matcher) Excluded(rel string) bool {
	if m == nil || len(m.rules) == 0 {
		return false
	}
	elems := strings.Split(rel, "/")
	out := false
	for _, r := range m.rules {
		// the path itself, or one of its parents
		for n := len(elems); n >= 1; n-- {
			if matchSegments(r.segments, elems[:n], true) {
				out = !r.except
				break
			}
		}
	}
	return out
}

// matchSegments matches pattern elements against path elements, "**"
// standing for any number of path elements.
func matchSegments(pat, elems []string, whole bool) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			// "**" matches no element too, except at the end of a longer
			// pattern: "a/**" names what is below a, not a itself
			first := 0
			if len(pat) == 1 && !whole {
				first = 1
			}
			for i := first; i <= len(elems); i++ {
				if matchSegments(pat[1:], elems[i:], false) {
					return true
				}
			}
			return false
		}
		if len(elems) == 0 {
			return false
		}
		if ok, _ := path.Match(pat[0], elems[0]); !ok {
			return false
		}
		pat, elems, whole = pat[1:], elems[1:], false
	}
	return len(elems) == 0
}

// HasExceptions reports whether a "!" rule may take back something below
// an excluded directory: a walk must then look inside it.
func (m *Matcher) HasExceptions() bool {
	if m == nil {
		return false
	}
	for _, r := range m.rules {
		if r.except {
			return true
		}
	}
	return false
}
