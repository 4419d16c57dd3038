package daemon

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"

	profiles "github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"minidock/api"
	"minidock/internal/errdefs"
	"minidock/kernel"
	"minidock/seccomp"
)

// The confinement of a container (docs/security.md): what the daemon
// writes into its OCI config so that a process that is root inside cannot
// reach the host. checkConfinement refuses a bad HostConfig at create,
// naming the field; confine applies it to the spec at every start.
//
// The defaults are Docker's: 14 capabilities (defaultCaps), Docker's
// seccomp profile, the masked and read-only /proc paths, a read-only
// /sys, a device cgroup that allows only the standard nodes, new pid,
// net, ipc, uts and mount namespaces.

// checkConfinement checks at create what confine will apply, so that a
// container that cannot be confined as asked is never made: capability
// names, security options (a caller's seccomp profile is parsed and
// compiled here), devices, sysctls, ulimits, oom_score_adj, the
// namespace modes and what --userns-remap forbids, the user and the
// extra groups.
func (d *Daemon) checkConfinement(cfg *api.ContainerConfig, hc *api.HostConfig) error {
	caps, err := containerCaps(hc)
	if err != nil {
		return err
	}
	opts, err := parseSecurityOpts(hc.SecurityOpt)
	if err != nil {
		return err
	}
	profile, err := seccompProfile(hc, opts, caps)
	if err != nil {
		return err
	}
	if profile != nil && opts.seccomp != "" {
		// a profile of the caller's: one the runtime would refuse is a 400
		// now (Docker's own compiles; TestSeccompProfileConditions)
		if _, err := seccomp.Compile(profile); err != nil {
			return errdefs.Invalidf("SecurityOpt: seccomp profile: %v", err)
		}
	}
	if _, _, err := gatherDevices(hc); err != nil {
		return err
	}
	if err := checkUlimits(hc.Ulimits); err != nil {
		return err
	}
	if err := checkOomScoreAdj(hc.OomScoreAdj); err != nil {
		return err
	}
	if err := d.checkNamespaceModes(cfg, hc); err != nil {
		return err
	}
	if err := d.checkRemap(hc); err != nil { // userns.go
		return err
	}
	if err := checkUser("User", cfg.User); err != nil {
		return err
	}
	for _, g := range hc.GroupAdd {
		if err := checkID("GroupAdd", "group", g); err != nil {
			return err
		}
	}
	for _, list := range [][]string{hc.MaskedPaths, hc.ReadonlyPaths} {
		for _, p := range list {
			if !strings.HasPrefix(p, "/") {
				return errdefs.Invalidf("MaskedPaths, ReadonlyPaths: %q is not an absolute path", p)
			}
		}
	}
	if hc.ShmSize < 0 {
		return errdefs.Invalidf("ShmSize: %d is negative", hc.ShmSize)
	}
	return nil
}

// confine applies c's HostConfig to the spec buildSpec made: the
// capabilities, no_new_privs, the seccomp profile, devices, sysctls,
// rlimits, oom_score_adj, extra groups, the namespaces (namespaces.go),
// --init; and, for a privileged container, lifts the defaults.
func (d *Daemon) confine(c *Container, s *specs.Spec) error {
	hc := &c.HostConfig
	caps, err := containerCaps(hc)
	if err != nil {
		return err
	}
	s.Process.Capabilities = &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps}
	opts, err := parseSecurityOpts(hc.SecurityOpt)
	if err != nil {
		return err
	}
	s.Process.NoNewPrivileges = opts.noNewPrivileges
	if s.Linux.Seccomp, err = seccompProfile(hc, opts, caps); err != nil {
		return err
	}
	devs, rules, err := gatherDevices(hc)
	if err != nil {
		return err
	}
	s.Linux.Devices = append(s.Linux.Devices, devs...)
	if hc.Privileged {
		s.Linux.Resources.Devices = rules // every device
	} else {
		s.Linux.Resources.Devices = append(s.Linux.Resources.Devices, rules...)
	}
	if hc.MaskedPaths != nil {
		s.Linux.MaskedPaths = hc.MaskedPaths
	}
	if hc.ReadonlyPaths != nil {
		s.Linux.ReadonlyPaths = hc.ReadonlyPaths
	}
	if hc.Privileged || opts.systemPaths {
		s.Linux.MaskedPaths, s.Linux.ReadonlyPaths = nil, nil
	}
	if hc.Privileged {
		// /sys and the cgroup tree writable, as in Docker
		for i, m := range s.Mounts {
			if m.Destination == "/sys" || m.Destination == "/sys/fs/cgroup" {
				s.Mounts[i].Options = slices.DeleteFunc(slices.Clone(m.Options), func(o string) bool { return o == "ro" })
			}
		}
	}
	if len(hc.Sysctls) > 0 {
		s.Linux.Sysctl = hc.Sysctls
	}
	for _, u := range hc.Ulimits {
		s.Process.Rlimits = append(s.Process.Rlimits, specs.POSIXRlimit{
			Type: rlimitType(u.Name), Soft: rlimitValue(u.Soft), Hard: rlimitValue(u.Hard)})
	}
	if hc.OomScoreAdj != 0 {
		s.Process.OOMScoreAdj = ptr(hc.OomScoreAdj)
	}
	if err := addGroups(s, hc.GroupAdd); err != nil {
		return err
	}
	if err := d.setNamespaces(c, s); err != nil {
		return err
	}
	if hc.Init != nil && *hc.Init {
		d.addInit(s)
	}
	return nil
}

// heldCaps is the daemon's capability bounding set: what it can give a
// container at most. Root's is usually every capability the kernel
// knows; on this project's VM it lacks CAP_SYS_RESOURCE, and a runtime
// asked for a capability outside it fails ("unable to apply caps").
var heldCaps = sync.OnceValue(func() uint64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "CapBnd:"); ok {
			n, _ := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return n
		}
	}
	return 0
})

// allHeldCaps names the capabilities of the daemon's bounding set: what
// "ALL" and --privileged give.
func allHeldCaps() []string {
	var out []string
	for i, name := range kernel.Capabilities() {
		if heldCaps()&(1<<uint(i)) != 0 {
			out = append(out, name)
		}
	}
	return out
}

// containerCaps is the container's capability set, worked out as Docker
// does: privileged, every capability the daemon holds; CapAdd "ALL",
// every one but those dropped; CapDrop "ALL", only those added; else the
// defaults, less those dropped, plus those added. Names are
// normalised ("sys_admin" → "CAP_SYS_ADMIN"); an unknown one, or one the
// daemon does not hold, is an error naming it.
func containerCaps(hc *api.HostConfig) ([]string, error) {
	if hc.Privileged {
		return allHeldCaps(), nil
	}
	add, addAll, err := normalizeCaps("CapAdd", hc.CapAdd)
	if err != nil {
		return nil, err
	}
	drop, dropAll, err := normalizeCaps("CapDrop", hc.CapDrop)
	if err != nil {
		return nil, err
	}
	var caps []string
	switch {
	case addAll:
		for _, c := range allHeldCaps() {
			if !slices.Contains(drop, c) {
				caps = append(caps, c)
			}
		}
		return caps, nil
	case dropAll:
		caps = add
	default:
		for _, c := range defaultCaps {
			if !slices.Contains(drop, c) {
				caps = append(caps, c)
			}
		}
		for _, c := range add {
			if !slices.Contains(caps, c) {
				caps = append(caps, c)
			}
		}
	}
	for _, c := range caps {
		if heldCaps()&(1<<uint(kernel.Capability(c))) == 0 {
			return nil, errdefs.Invalidf("CapAdd: capability %s is not in the daemon's bounding set: it cannot give what it does not hold", c)
		}
	}
	if caps == nil {
		caps = []string{}
	}
	return caps, nil
}

func normalizeCaps(field string, list []string) (names []string, all bool, err error) {
	for _, n := range list {
		if strings.EqualFold(n, "ALL") {
			all = true
			continue
		}
		i := kernel.Capability(n)
		if i < 0 {
			return nil, false, errdefs.Invalidf("%s: unknown capability %q", field, n)
		}
		names = append(names, kernel.CapabilityName(i))
	}
	return names, all, nil
}

// securityOpts are the HostConfig.SecurityOpt entries minidock applies.
type securityOpts struct {
	noNewPrivileges bool
	seccomp         string // "": Docker's default profile; "unconfined"; or a profile's JSON
	systemPaths     bool   // systempaths=unconfined: no masked or read-only paths
}

// parseSecurityOpts reads HostConfig.SecurityOpt: "key=value" (or the
// older "key:value"), "no-new-privileges" alone meaning true. AppArmor
// and SELinux are not on this host: "apparmor=unconfined" and
// "label=disable", which ask for nothing, are accepted; any other profile
// or label is refused rather than ignored.
func parseSecurityOpts(list []string) (securityOpts, error) {
	var o securityOpts
	for _, opt := range list {
		if opt == "no-new-privileges" {
			o.noNewPrivileges = true
			continue
		}
		key, val, ok := strings.Cut(opt, "=")
		if !ok {
			key, val, ok = strings.Cut(opt, ":")
		}
		if !ok {
			return o, errdefs.Invalidf("SecurityOpt: invalid option %q: want KEY=VALUE", opt)
		}
		switch key {
		case "no-new-privileges":
			b, err := strconv.ParseBool(val)
			if err != nil {
				return o, errdefs.Invalidf("SecurityOpt: invalid no-new-privileges value %q: want true or false", val)
			}
			o.noNewPrivileges = b
		case "seccomp":
			switch val {
			case "", "builtin", "default":
				o.seccomp = ""
			default:
				o.seccomp = val
			}
		case "systempaths":
			if val != "unconfined" {
				return o, errdefs.Invalidf("SecurityOpt: invalid systempaths value %q: only unconfined is known", val)
			}
			o.systemPaths = true
		case "apparmor":
			if val != "unconfined" {
				return o, errdefs.Invalidf("SecurityOpt: apparmor profile %q: AppArmor is not supported by this daemon", val)
			}
		case "label":
			if val != "disable" {
				return o, errdefs.Invalidf("SecurityOpt: label %q: SELinux is not supported by this daemon", val)
			}
		default:
			return o, errdefs.Invalidf("SecurityOpt: unknown option %q", opt)
		}
	}
	return o, nil
}

// seccompProfile is the container's linux.seccomp: Docker's default
// profile (the data of github.com/moby/profiles/seccomp, built as Go
// values: nothing to parse), or the one the request gave as JSON, with
// its conditional rules resolved for caps and this host's architecture
// and kernel; nil when unconfined, or privileged without a profile of
// its own. (45 µs for Docker's; compiling it to BPF, which the runtime
// does, takes 1.5 ms: BenchmarkDefaultSeccompProfile.)
func seccompProfile(hc *api.HostConfig, o securityOpts, caps []string) (*specs.LinuxSeccomp, error) {
	if o.seccomp == "unconfined" || (hc.Privileged && o.seccomp == "") {
		return nil, nil
	}
	// the conditions read the bounding set from a spec
	rs := &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: caps}}}
	var profile *specs.LinuxSeccomp
	var err error
	if o.seccomp == "" {
		profile, err = profiles.GetDefaultProfile(rs)
	} else {
		profile, err = profiles.LoadProfile(o.seccomp, rs)
	}
	if err != nil {
		return nil, errdefs.Invalidf("SecurityOpt: seccomp profile: %v", err)
	}
	return profile, nil
}

// rlimitType is the OCI name of a Docker ulimit name: "nofile" →
// "RLIMIT_NOFILE".
func rlimitType(name string) string { return "RLIMIT_" + strings.ToUpper(name) }

// rlimitValue maps Docker's -1 (unlimited) to RLIM_INFINITY.
func rlimitValue(v int64) uint64 {
	if v < 0 {
		return ^uint64(0)
	}
	return uint64(v)
}

// checkUlimits refuses unknown names, a soft limit above the hard one,
// and a hard limit the runtime could not set: raising a hard limit above
// the one the daemon holds (its children inherit it) needs
// CAP_SYS_RESOURCE, which root lacks on some hosts (this project's VM).
func checkUlimits(list []api.Ulimit) error {
	seen := map[string]bool{}
	for _, u := range list {
		res := kernel.Rlimit(rlimitType(u.Name))
		if res < 0 {
			return errdefs.Invalidf("Ulimits: unknown ulimit %q", u.Name)
		}
		if seen[u.Name] {
			return errdefs.Invalidf("Ulimits: %q is given twice", u.Name)
		}
		seen[u.Name] = true
		if u.Soft < -1 || u.Hard < -1 {
			return errdefs.Invalidf("Ulimits: %s: limits are -1 (unlimited) or positive", u.Name)
		}
		if rlimitValue(u.Soft) > rlimitValue(u.Hard) {
			return errdefs.Invalidf("Ulimits: %s: soft limit %d is above the hard limit %d", u.Name, u.Soft, u.Hard)
		}
		if u.Name == "nofile" {
			// no process may have more descriptors than fs.nr_open
			if data, err := os.ReadFile("/proc/sys/fs/nr_open"); err == nil {
				if max, err := strconv.ParseUint(strings.TrimSpace(string(data)), 10, 64); err == nil && rlimitValue(u.Hard) > max {
					return errdefs.Invalidf("Ulimits: nofile: hard limit %d is above the kernel's fs.nr_open (%d)", u.Hard, max)
				}
			}
		}
		if heldCaps()&(1<<uint(kernel.Capability("CAP_SYS_RESOURCE"))) != 0 {
			continue
		}
		var cur unix.Rlimit
		if err := unix.Getrlimit(res, &cur); err == nil && rlimitValue(u.Hard) > cur.Max {
			return errdefs.Invalidf("Ulimits: %s: hard limit %d is above the daemon's own (%d), and the daemon lacks CAP_SYS_RESOURCE to raise it", u.Name, u.Hard, cur.Max)
		}
	}
	return nil
}

// checkOomScoreAdj refuses values outside -1000..1000, and a value below
// the daemon's own (which its children inherit) when the daemon lacks
// CAP_SYS_RESOURCE, which lowering it needs.
func checkOomScoreAdj(v int) error {
	if v < -1000 || v > 1000 {
		return errdefs.Invalidf("OomScoreAdj: %d is outside the range -1000 to 1000", v)
	}
	if v == 0 || heldCaps()&(1<<uint(kernel.Capability("CAP_SYS_RESOURCE"))) != 0 {
		return nil
	}
	data, err := os.ReadFile("/proc/self/oom_score_adj")
	if err != nil {
		return nil
	}
	if own, err := strconv.Atoi(strings.TrimSpace(string(data))); err == nil && v < own {
		return errdefs.Invalidf("OomScoreAdj: %d is below the daemon's own (%d), and the daemon lacks CAP_SYS_RESOURCE to lower it", v, own)
	}
	return nil
}

// maxID is the largest uid or gid a container may name: ids are 32-bit,
// but (uid_t)-1 means "leave unchanged" to setresuid(2), so 4294967295
// would run the process as root, and the kernel's id maps stop below
// 2^32-1; Docker's and runc's checks stop at 2^31-1.
const maxID = 1<<31 - 1

// checkUser checks the numeric parts of a user[:group] spec: names are
// looked up at start, in the container's own files.
func checkUser(field, user string) error {
	if user == "" {
		return nil
	}
	u, g, hasGroup := strings.Cut(user, ":")
	if err := checkID(field, "user", u); err != nil {
		return err
	}
	if hasGroup {
		return checkID(field, "group", g)
	}
	return nil
}

// checkID refuses a numeric id outside 0..2^31-1 (names pass: they are
// resolved later).
func checkID(field, what, s string) error {
	if s == "" {
		return errdefs.Invalidf("%s: empty %s", field, what)
	}
	if strings.TrimLeft(s, "0123456789") != "" && !strings.HasPrefix(s, "-") {
		return nil // a name
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > maxID {
		return errdefs.Invalidf("%s: %s id %s is outside the range 0 to %d", field, what, s, maxID)
	}
	return nil
}

// addGroups adds the --group-add groups to the process, numbers as they
// are and names from the container's /etc/group.
func addGroups(s *specs.Spec, groups []string) error {
	for _, g := range groups {
		gid, err := lookupGroup(s.Root.Path, g)
		if err != nil {
			return err
		}
		if !slices.Contains(s.Process.User.AdditionalGids, gid) {
			s.Process.User.AdditionalGids = append(s.Process.User.AdditionalGids, gid)
		}
	}
	return nil
}

func lookupGroup(rootfs, g string) (uint32, error) {
	if n, err := strconv.ParseUint(g, 10, 32); err == nil {
		if n > maxID {
			return 0, errdefs.Invalidf("group id %s is outside the range 0 to %d", g, maxID)
		}
		return uint32(n), nil
	}
	for _, f := range readDB(rootfs, "/etc/group") {
		if len(f) > 2 && f[0] == g {
			if n, err := strconv.ParseUint(f[2], 10, 32); err == nil && n <= maxID {
				return uint32(n), nil
			}
		}
	}
	return 0, errdefs.Invalidf("unable to find group %s: no matching entries in group file", g)
}

// parseID reads a uid or gid of a user spec or of the container's passwd
// and group files, refusing ids above maxID.
func parseID(s string) (uint64, error) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err == nil && n > maxID {
		return 0, fmt.Errorf("id %s is outside the range 0 to %d", s, maxID)
	}
	return n, err
}
