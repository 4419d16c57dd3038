package image

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/opencontainers/go-digest"
)

// Reference is a parsed, normalised image reference: Domain/Path with a Tag,
// a Digest, or both. Normalisation is Docker's: no domain means docker.io,
// a one-component docker.io path gets "library/", and neither tag nor
// digest means tag "latest".
type Reference struct {
	Domain string        // registry host[:port], e.g. "docker.io", "localhost:5000"
	Path   string        // repository path, e.g. "library/busybox"
	Tag    string        // may be empty when Digest is set
	Digest digest.Digest // manifest digest, or empty
}

const (
	defaultDomain = "docker.io"
	legacyDomain  = "index.docker.io"
	officialRepo  = "library/"
	defaultTag    = "latest"
	maxNameLength = 255
)

var (
	// A path component: lowercase alphanumerics joined by '.', '_', '__'
	// or any run of '-' (the distribution spec's grammar).
	componentRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*$`) })
	// A registry: a DNS name or IPv4, or a bracketed IPv6, and a port.
	domainRE = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?$`)
	})
	tagRE   = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`) })
	hex64RE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-f0-9]{64}$`) })
)

// ParseReference parses and normalises an image reference such as
// "busybox", "busybox:1.36", "localhost:5000/team/app@sha256:…" or
// "docker.io/library/busybox:latest". The error says what is wrong.
func ParseReference(s string) (Reference, error) {
	var r Reference
	if s == "" {
		return r, errors.New("invalid reference format: empty reference")
	}
	name := s
	if i := strings.IndexByte(name, '@'); i >= 0 {
		d, err := digest.Parse(name[i+1:])
		if err != nil {
			return r, fmt.Errorf("invalid reference %q: bad digest %q: %v", s, name[i+1:], err)
		}
		r.Digest = d
		name = name[:i]
	}
	// A ':' after the last '/' starts the tag; one before it is a port.
	if i := strings.LastIndexByte(name, ':'); i > strings.LastIndexByte(name, '/') {
		r.Tag = name[i+1:]
		name = name[:i]
		if !tagRE().MatchString(r.Tag) {
			return r, fmt.Errorf("invalid reference %q: bad tag %q (want [A-Za-z0-9_][A-Za-z0-9_.-], at most 128 characters)", s, r.Tag)
		}
	}
	if name == "" {
		return r, fmt.Errorf("invalid reference %q: empty repository name", s)
	}
	if len(name) > maxNameLength {
		return r, fmt.Errorf("invalid reference %q: repository name longer than %d characters", s, maxNameLength)
	}
	if hex64RE().MatchString(name) {
		return r, fmt.Errorf("invalid repository name %q: 64 hexadecimal characters are reserved for image IDs", name)
	}
	parts := strings.Split(name, "/")
	if len(parts) > 1 && (strings.ContainsAny(parts[0], ".:") || parts[0] == "localhost") {
		r.Domain, parts = parts[0], parts[1:]
		if !domainRE().MatchString(r.Domain) {
			return r, fmt.Errorf("invalid reference %q: bad registry host %q", s, r.Domain)
		}
	} else {
		r.Domain = defaultDomain
	}
	if r.Domain == legacyDomain {
		r.Domain = defaultDomain
	}
	for _, c := range parts {
		if !componentRE().MatchString(c) {
			if strings.ToLower(c) != c {
				return r, fmt.Errorf("invalid reference %q: repository name must be lowercase", s)
			}
			return r, fmt.Errorf("invalid reference %q: bad path component %q (lowercase letters and digits, joined by '.', '_', '__' or '-')", s, c)
		}
	}
	r.Path = strings.Join(parts, "/")
	if r.Domain == defaultDomain && len(parts) == 1 {
		r.Path = officialRepo + r.Path
	}
	if full := len(r.Domain) + 1 + len(r.Path); full > maxNameLength {
		// what the name stands for, registry and library/ included, must
		// parse again (Docker bounds the full name)
		return r, fmt.Errorf("invalid reference %q: repository name longer than %d characters", s, maxNameLength)
	}
	if r.Tag == "" && r.Digest == "" {
		r.Tag = defaultTag
	}
	return r, nil
}

// Name is the full repository name, e.g. "docker.io/library/busybox".
func (r Reference) Name() string { return r.Domain + "/" + r.Path }

// String is the full normalised form, e.g. "docker.io/library/busybox:latest".
func (r Reference) String() string {
	s := r.Name()
	if r.Tag != "" {
		s += ":" + r.Tag
	}
	if r.Digest != "" {
		s += "@" + r.Digest.String()
	}
	return s
}

// FamiliarName is the repository as Docker prints it: "busybox",
// "someone/app", "localhost:5000/x".
func (r Reference) FamiliarName() string {
	if r.Domain != defaultDomain {
		return r.Name()
	}
	return strings.TrimPrefix(r.Path, officialRepo)
}

// FamiliarString is the reference as Docker prints it: "busybox:latest".
func (r Reference) FamiliarString() string {
	s := r.FamiliarName()
	if r.Tag != "" {
		s += ":" + r.Tag
	}
	if r.Digest != "" {
		s += "@" + r.Digest.String()
	}
	return s
}

// NormalizeReference returns ParseReference(s).String().
func NormalizeReference(s string) (string, error) {
	r, err := ParseReference(s)
	if err != nil {
		return "", err
	}
	return r.String(), nil
}
