package explain

import (
	"fmt"
	"strconv"
	"strings"

	"minidock/api"
	"minidock/kernel"
)

// seccompModes name the values of /proc/PID/status's Seccomp: line
// (SECCOMP_MODE_* in linux/seccomp.h).
var seccompModes = []string{"disabled", "strict", "filter"}

// Security reads the init's privileges from /proc/PID/status: the five
// capability sets (CapInh, CapPrm, CapEff, CapBnd, CapAmb, each a hex
// mask, bit n = capability n, named by kernel.CapabilityName), Seccomp
// and Seccomp_filters, NoNewPrivs; and its user namespace's id maps
// (uid_map, gid_map). Dropped compares the bounding set with the host's
// init's (/proc/1/status).
func Security(pid int) (*api.ExplainSecurity, error) {
	text, err := procFile(pid, "status")
	if err != nil {
		return nil, fmt.Errorf("status of pid %d: %w", pid, err)
	}
	st := statusFields(text)
	s := &api.ExplainSecurity{}
	sets := []struct {
		key string
		to  *[]string
	}{{"CapEff", &s.Effective}, {"CapPrm", &s.Permitted}, {"CapInh", &s.Inheritable}, {"CapBnd", &s.Bounding}, {"CapAmb", &s.Ambient}}
	for _, set := range sets {
		mask, err := strconv.ParseUint(st[set.key], 16, 64)
		if err != nil {
			return nil, fmt.Errorf("status of pid %d: %s %q: %w", pid, set.key, st[set.key], err)
		}
		*set.to = capNames(mask)
	}
	if host, err := procFile(1, "status"); err == nil {
		hostBnd, _ := strconv.ParseUint(statusFields(host)["CapBnd"], 16, 64)
		bnd, _ := strconv.ParseUint(st["CapBnd"], 16, 64)
		s.Dropped = capNames(hostBnd &^ bnd)
	}
	s.Seccomp, _ = strconv.Atoi(st["Seccomp"])
	if s.Seccomp >= 0 && s.Seccomp < len(seccompModes) {
		s.SeccompMode = seccompModes[s.Seccomp]
	}
	s.SeccompFilters, _ = strconv.Atoi(st["Seccomp_filters"])
	s.NoNewPrivs = st["NoNewPrivs"] == "1"
	for _, m := range []struct {
		file string
		to   *[]string
	}{{"uid_map", &s.UIDMap}, {"gid_map", &s.GIDMap}} {
		text, err := procFile(pid, m.file)
		if err != nil {
			return nil, fmt.Errorf("%s of pid %d: %w", m.file, pid, err)
		}
		for _, l := range strings.Split(strings.TrimSpace(text), "\n") {
			*m.to = append(*m.to, strings.Join(strings.Fields(l), " "))
		}
	}
	return s, nil
}

// capNames lists the capabilities of a mask, lowest number first; an
// empty set is an empty list, not nil, so that JSON shows [].
func capNames(mask uint64) []string {
	out := []string{}
	for i := 0; i < 64; i++ {
		if mask&(1<<uint(i)) != 0 {
			out = append(out, kernel.CapabilityName(i))
		}
	}
	return out
}
