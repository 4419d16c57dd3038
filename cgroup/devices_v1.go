package cgroup

// The v1 device controller: the "devices" hierarchy. Its cgroups have three
// files: devices.list shows what is allowed ("a *:* rwm" when everything
// is, else one "c 1:3 rwm" line per allowed device); a line written to
// devices.allow or devices.deny changes that. A line of type "a" sets the
// default (allow or deny everything) and drops every exception; any other
// line adds an exception against the default, or takes access away from
// the exception of exactly that key when it agrees with the default.

import (
	"bufio"
	"fmt"
	"maps"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// devLine is one write to devices.allow or devices.deny.
type devLine struct {
	file, value string
}

// setDevices brings the devices cgroup to what rules describe with as few
// writes as possible, as runc does: it reads the current state from
// devices.list, writes the lines that turn it into the target
// (devTransition), and reads devices.list again to check the kernel agrees.
// No rules means "leave the devices alone" (a new cgroup keeps its
// parent's).
func (m *v1) setDevices(rules []specs.LinuxDeviceCgroup) error {
	if len(rules) == 0 {
		return nil
	}
	dir := m.dir("devices")
	parsed, err := parseDeviceRules(rules)
	if err != nil {
		return err
	}
	target, err := devStateOf(parsed)
	if err != nil {
		return err
	}
	current, err := readDevicesList(dir)
	if err != nil {
		return err
	}
	for _, l := range devTransition(current, target) {
		if err := writeFile(m.t, dir, l.file, l.value); err != nil {
			return err
		}
	}
	after, err := readDevicesList(dir)
	if err != nil {
		return err
	}
	// devices.list cannot show the exceptions of an allow-by-default
	// cgroup, so only its mode can be checked.
	if after.defaultAllow != target.defaultAllow || (!target.defaultAllow && !maps.Equal(after.except, target.except)) {
		return fmt.Errorf("%s/devices.list does not match the device rules after writing them", dir)
	}
	return nil
}

// readDevicesList parses devices.list into a devState.
func readDevicesList(dir string) (*devState, error) {
	text, err := readFile(dir, "devices.list")
	if err != nil {
		return nil, err
	}
	s := &devState{except: map[devKey]devAccess{}}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		r, err := parseListLine(line)
		if err != nil {
			return nil, fmt.Errorf("parse %q in %s/devices.list: %w", line, dir, err)
		}
		if r.key.typ == 'a' {
			// Allow-by-default: the deny exceptions are not listed.
			return &devState{defaultAllow: true}, nil
		}
		s.except[r.key] |= r.access
	}
	return s, nil
}

// parseListLine parses one devices.list line: "c 1:3 rwm", "b *:* m".
func parseListLine(line string) (devRule, error) {
	f := strings.Fields(line)
	if len(f) != 3 || len(f[0]) != 1 || !strings.Contains("abc", f[0]) {
		return devRule{}, fmt.Errorf("want \"TYPE MAJOR:MINOR ACCESS\"")
	}
	maj, min, ok := strings.Cut(f[1], ":")
	if !ok {
		return devRule{}, fmt.Errorf("want MAJOR:MINOR")
	}
	d := specs.LinuxDeviceCgroup{Allow: true, Type: f[0], Access: f[2]}
	for _, n := range []struct {
		s   string
		dst **int64
	}{{maj, &d.Major}, {min, &d.Minor}} {
		if n.s == "*" {
			continue
		}
		v, err := strconv.ParseInt(n.s, 10, 64)
		if err != nil {
			return devRule{}, err
		}
		*n.dst = &v
	}
	rs, err := parseDeviceRules([]specs.LinuxDeviceCgroup{d})
	if err != nil {
		return devRule{}, err
	}
	return rs[0], nil
}

// devTransition lists the writes that turn cur into target. The default
// is only reset (an "a" line, which for a moment allows or denies
// everything) when it must change, or when cur allows by default and so
// may hold deny exceptions nobody can see. Then exceptions that lose
// access are cut back, and new access is added.
func devTransition(cur, target *devState) []devLine {
	// A line against the default adds an exception; one agreeing with it
	// removes access from one.
	against, agreeing := "devices.allow", "devices.deny"
	if target.defaultAllow {
		against, agreeing = agreeing, against
	}
	var lines []devLine
	old := cur.except
	if cur.defaultAllow || cur.defaultAllow != target.defaultAllow {
		lines = append(lines, devLine{agreeing, "a *:* rwm"})
		old = nil
	}
	for _, k := range (&devState{except: old}).keys() {
		if dropped := old[k] &^ target.except[k]; dropped != 0 {
			lines = append(lines, devLine{agreeing, k.String() + " " + dropped.String()})
		}
	}
	for _, k := range target.keys() {
		if gained := target.except[k] &^ old[k]; gained != 0 {
			lines = append(lines, devLine{against, k.String() + " " + gained.String()})
		}
	}
	return lines
}
