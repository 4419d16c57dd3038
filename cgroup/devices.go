package cgroup

// The device controller: which device nodes (by type and major:minor) the
// processes of a cgroup may open for reading or writing, or create with
// mknod(2). OCI's linux.resources.devices is a list of allow/deny rules,
// applied in order. This file holds what v1 and v2 share: checking the
// rules, and working out the state they describe (devState), which
// devices_v1.go writes as devices.allow/devices.deny lines and
// devices_v2.go compiles into an eBPF program. docs/cgroups.md explains both.

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func devNum(v int64) *int64 { return &v }

// DefaultDeviceRules are the device rules runc adds after a container's own
// (AllowedDevices in runc's libcontainer/specconv/spec_linux.go; Docker
// relies on them): mknod of any character or block device, and read, write
// and mknod of /dev/null (1:3), /dev/zero (1:5), /dev/full (1:7),
// /dev/random (1:8), /dev/urandom (1:9), /dev/tty (5:0), /dev/ptmx (5:2),
// every /dev/pts/N (136:*) and /dev/net/tun (10:200).
//
// A runtime whose config denies every device (as the default spec does,
// {allow: false, access: "rwm"}) appends these after the config's rules:
// without them the container's init could not mknod /dev/null, nor a shell
// open it. /dev/console (5:1) is deliberately absent, as in runc: minidock
// bind-mounts the container's pty slave (136:N) on /dev/console, so 5:1
// would only open the host's console.
//
// The slice and the numbers it points to are shared: do not modify them.
var DefaultDeviceRules = []specs.LinuxDeviceCgroup{
	{Allow: true, Type: "c", Access: "m"},
	{Allow: true, Type: "b", Access: "m"},
	{Allow: true, Type: "c", Major: devNum(1), Minor: devNum(3), Access: "rwm"},
	{Allow: true, Type: "c", Major: devNum(1), Minor: devNum(8), Access: "rwm"},
	{Allow: true, Type: "c", Major: devNum(1), Minor: devNum(7), Access: "rwm"},
	{Allow: true, Type: "c", Major: devNum(5), Minor: devNum(0), Access: "rwm"},
	{Allow: true, Type: "c", Major: devNum(1), Minor: devNum(5), Access: "rwm"},
	{Allow: true, Type: "c", Major: devNum(1), Minor: devNum(9), Access: "rwm"},
	{Allow: true, Type: "c", Major: devNum(136), Access: "rwm"},
	{Allow: true, Type: "c", Major: devNum(5), Minor: devNum(2), Access: "rwm"},
	{Allow: true, Type: "c", Major: devNum(10), Minor: devNum(200), Access: "rwm"},
}

// wildcard is a major or minor number that matches every number ("*").
const wildcard = -1

// devAccess is a set of access bits: r(ead), w(rite), m(knod).
type devAccess uint8

const (
	accMknod devAccess = 1 << iota
	accRead
	accWrite
	accAll = accRead | accWrite | accMknod
)

// String spells the set as the kernel does, in "rwm" order.
func (a devAccess) String() string {
	var b strings.Builder
	for _, c := range []struct {
		bit devAccess
		ch  byte
	}{{accRead, 'r'}, {accWrite, 'w'}, {accMknod, 'm'}} {
		if a&c.bit != 0 {
			b.WriteByte(c.ch)
		}
	}
	return b.String()
}

// devKey names the devices one rule matches: type 'c' or 'b', and a major
// and minor number or wildcard.
type devKey struct {
	typ          byte
	major, minor int64
}

// String spells the key as devices.list does: "c 1:3", "c 136:*".
func (k devKey) String() string {
	num := func(v int64) string {
		if v == wildcard {
			return "*"
		}
		return strconv.FormatInt(v, 10)
	}
	return fmt.Sprintf("%c %s:%s", k.typ, num(k.major), num(k.minor))
}

// devRule is one checked OCI rule. typ 'a' means every device and every
// access, whatever the numbers and access say (the kernel's meaning).
type devRule struct {
	allow  bool
	key    devKey
	access devAccess
}

// parseDeviceRules checks OCI device rules and converts them. An empty
// type is "a" and a missing major or minor (or -1) is the wildcard, as in
// runc; the access must be a non-empty mix of r, w and m.
func parseDeviceRules(rules []specs.LinuxDeviceCgroup) ([]devRule, error) {
	out := make([]devRule, 0, len(rules))
	for i, d := range rules {
		r := devRule{allow: d.Allow, key: devKey{major: wildcard, minor: wildcard}}
		switch d.Type {
		case "", "a":
			r.key.typ = 'a'
		case "c", "b":
			r.key.typ = d.Type[0]
		default:
			return nil, fmt.Errorf("devices[%d]: type %q: want \"a\" (all), \"c\" (character) or \"b\" (block)", i, d.Type)
		}
		for _, n := range []struct {
			name string
			v    *int64
			dst  *int64
		}{{"major", d.Major, &r.key.major}, {"minor", d.Minor, &r.key.minor}} {
			if n.v == nil || *n.v == wildcard {
				continue
			}
			// Linux device numbers have 12 (major) and 20 (minor) bits;
			// the eBPF program compares them as signed 32-bit immediates.
			if *n.v < 0 || *n.v > math.MaxInt32 {
				return nil, fmt.Errorf("devices[%d]: %s %d: want 0 to %d, or none (-1) for any", i, n.name, *n.v, math.MaxInt32)
			}
			*n.dst = *n.v
		}
		if d.Access == "" {
			return nil, fmt.Errorf("devices[%d]: access is empty: want a mix of r (read), w (write) and m (mknod)", i)
		}
		for _, c := range d.Access {
			switch c {
			case 'r':
				r.access |= accRead
			case 'w':
				r.access |= accWrite
			case 'm':
				r.access |= accMknod
			default:
				return nil, fmt.Errorf("devices[%d]: access %q: %q is not r (read), w (write) or m (mknod)", i, d.Access, c)
			}
		}
		if r.key.typ == 'a' {
			r.key, r.access = devKey{typ: 'a', major: wildcard, minor: wildcard}, accAll
		}
		out = append(out, r)
	}
	return out, nil
}

// devState is what a list of rules amounts to, the way the v1 kernel keeps
// it (security/device_cgroup.c): a default (allow or deny everything) and
// exceptions to it, each a device key with the access it is excepted for.
// With a deny default an access is allowed when one exception covers all
// of it; with an allow default it is denied when any exception touches it.
type devState struct {
	defaultAllow bool
	except       map[devKey]devAccess
}

// apply adds one rule: "a" resets the default and drops every exception;
// a rule against the default adds an exception; a rule agreeing with it
// takes access away from the exceptions it covers.
func (s *devState) apply(r devRule) error {
	if r.key.typ == 'a' {
		*s = devState{defaultAllow: r.allow}
		return nil
	}
	if s.except == nil {
		s.except = map[devKey]devAccess{}
	}
	if r.allow != s.defaultAllow {
		s.except[r.key] |= r.access
		return nil
	}
	// The kernel only removes an exception with exactly this key, so
	// "allow c 1:* rwm" then "deny c 1:3 rwm" would leave 1:3 allowed.
	// Refuse that instead of silently not doing what the rules say (runc
	// refuses it too).
	for _, wide := range []devKey{
		{r.key.typ, wildcard, r.key.minor}, {r.key.typ, r.key.major, wildcard}, {r.key.typ, wildcard, wildcard},
	} {
		if wide != r.key && s.except[wide]&r.access != 0 {
			verb := map[bool]string{true: "allow", false: "deny"}
			return fmt.Errorf("device rule %q %s %s cannot be applied after %q %s %s: the device cgroup cannot cut an exception out of a wildcard rule",
				verb[r.allow], r.key, r.access, verb[!r.allow], wide, s.except[wide])
		}
	}
	// A wildcard rule also takes the access away from the narrower
	// exceptions it covers ("deny c 1:* r" after "allow c 1:3 rwm"), so
	// that the last matching rule wins as in runc's rule order.
	for k, acc := range s.except {
		if !r.key.covers(k) {
			continue
		}
		if left := acc &^ r.access; left != 0 {
			s.except[k] = left
		} else {
			delete(s.except, k)
		}
	}
	return nil
}

// covers reports whether every device k matches is also matched by key.
func (key devKey) covers(k devKey) bool {
	return key.typ == k.typ && (key.major == wildcard || key.major == k.major) && (key.minor == wildcard || key.minor == k.minor)
}

// devStateOf applies rules in order to an empty state (deny everything).
func devStateOf(rules []devRule) (*devState, error) {
	s := &devState{}
	for _, r := range rules {
		if err := s.apply(r); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// keys lists the exceptions in a fixed order, so that the same rules always
// give the same lines and the same program.
func (s *devState) keys() []devKey {
	var ks []devKey
	for k := range s.except {
		ks = append(ks, k)
	}
	slices.SortFunc(ks, func(a, b devKey) int {
		if a.typ != b.typ {
			return int(a.typ) - int(b.typ)
		}
		if a.major != b.major {
			return cmpInt(a.major, b.major)
		}
		return cmpInt(a.minor, b.minor)
	})
	return ks
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// checkDevices is validate's part for linux.resources.devices.
func checkDevices(rules []specs.LinuxDeviceCgroup) error {
	parsed, err := parseDeviceRules(rules)
	if err != nil {
		return err
	}
	_, err = devStateOf(parsed)
	return err
}
