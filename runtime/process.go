package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"minidock/internal/trace"
)

// The steps that turn the init (or an exec'd helper) into the container's
// process, in the order they run. Each is one syscall family.

var rlimitNames = map[string]int{
	"RLIMIT_AS": unix.RLIMIT_AS, "RLIMIT_CORE": unix.RLIMIT_CORE, "RLIMIT_CPU": unix.RLIMIT_CPU,
	"RLIMIT_DATA": unix.RLIMIT_DATA, "RLIMIT_FSIZE": unix.RLIMIT_FSIZE, "RLIMIT_LOCKS": unix.RLIMIT_LOCKS,
	"RLIMIT_MEMLOCK": unix.RLIMIT_MEMLOCK, "RLIMIT_MSGQUEUE": unix.RLIMIT_MSGQUEUE, "RLIMIT_NICE": unix.RLIMIT_NICE,
	"RLIMIT_NOFILE": unix.RLIMIT_NOFILE, "RLIMIT_NPROC": unix.RLIMIT_NPROC, "RLIMIT_RSS": unix.RLIMIT_RSS,
	"RLIMIT_RTPRIO": unix.RLIMIT_RTPRIO, "RLIMIT_RTTIME": unix.RLIMIT_RTTIME, "RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING,
	"RLIMIT_STACK": unix.RLIMIT_STACK,
}

// checkRlimits validates rlimit names and soft <= hard before anything runs.
func checkRlimits(rl []specs.POSIXRlimit) error {
	for _, r := range rl {
		if _, ok := rlimitNames[r.Type]; !ok {
			return fmt.Errorf("rlimit %q: unknown type", r.Type)
		}
		if r.Soft > r.Hard {
			return fmt.Errorf("rlimit %s: soft limit %d is above hard limit %d", r.Type, r.Soft, r.Hard)
		}
	}
	return nil
}

// SetRlimits applies process.rlimits with prlimit(2). Raising a hard limit
// above the caller's needs CAP_SYS_RESOURCE; the error says so.
func SetRlimits(rl []specs.POSIXRlimit) error {
	for _, r := range rl {
		res := rlimitNames[r.Type]
		lim := unix.Rlimit{Cur: r.Soft, Max: r.Hard}
		err := unix.Prlimit(0, res, &lim, nil)
		trace.Step("rlimit", fmt.Sprintf("prlimit(%s, soft=%d, hard=%d)", r.Type, r.Soft, r.Hard), err)
		if errors.Is(err, unix.EPERM) {
			var cur unix.Rlimit
			_ = unix.Prlimit(0, res, nil, &cur)
			return fmt.Errorf("rlimit %s hard=%d: above the caller's hard limit %d, and raising it needs CAP_SYS_RESOURCE", r.Type, r.Hard, cur.Max)
		}
		if err != nil {
			return fmt.Errorf("rlimit %s: %w", r.Type, err)
		}
	}
	return nil
}

// capability numbers by name, CAP_CHOWN = 0 ... as in linux/capability.h.
var capNames = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
	"CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
	"CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
	"CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
	"CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
	"CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
}

// lastCap is the highest capability this kernel knows.
func lastCap() int {
	data, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return len(capNames) - 1
	}
	var n int
	fmt.Sscan(strings.TrimSpace(string(data)), &n)
	return n
}

// capSet is a capability set as a bit mask (two 32-bit words, as capset(2)
// takes it).
type capSet uint64

func parseCaps(names []string) (capSet, error) {
	var s capSet
	for _, n := range names {
		i := capIndex(n)
		if i < 0 {
			return 0, fmt.Errorf("unknown capability %q", n)
		}
		s |= 1 << uint(i)
	}
	return s, nil
}

func capIndex(name string) int {
	name = strings.ToUpper(name)
	if !strings.HasPrefix(name, "CAP_") {
		name = "CAP_" + name
	}
	for i, n := range capNames {
		if n == name {
			return i
		}
	}
	return -1
}

// checkCaps validates the capability names of a process before it starts.
func checkCaps(c *specs.LinuxCapabilities) error {
	if c == nil {
		return nil
	}
	for _, set := range [][]string{c.Bounding, c.Effective, c.Inheritable, c.Permitted, c.Ambient} {
		if _, err := parseCaps(set); err != nil {
			return err
		}
	}
	return nil
}

// DropBoundingSet removes from the bounding set (prctl PR_CAPBSET_DROP)
// every capability not listed: no later execve can ever regain them.
func DropBoundingSet(c *specs.LinuxCapabilities) error {
	if c == nil {
		return nil
	}
	keep, _ := parseCaps(c.Bounding)
	last := lastCap()
	for i := 0; i <= last; i++ {
		if keep&(1<<uint(i)) != 0 {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(i), 0, 0, 0); err != nil && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("drop %s from bounding set: %w", capName(i), err)
		}
	}
	return trace.Step("cap-bounding", fmt.Sprintf("prctl(PR_CAPBSET_DROP, all but %v)", c.Bounding), nil)
}

func capName(i int) string {
	if i < len(capNames) {
		return capNames[i]
	}
	return fmt.Sprintf("cap %d", i)
}

// SetCapabilities sets the effective, permitted and inheritable sets with
// capset(2), then raises each ambient capability with prctl(PR_CAP_AMBIENT).
func SetCapabilities(c *specs.LinuxCapabilities) error {
	if c == nil {
		return nil
	}
	eff, _ := parseCaps(c.Effective)
	perm, _ := parseCaps(c.Permitted)
	inh, _ := parseCaps(c.Inheritable)
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	data := [2]unix.CapUserData{
		{Effective: uint32(eff), Permitted: uint32(perm), Inheritable: uint32(inh)},
		{Effective: uint32(eff >> 32), Permitted: uint32(perm >> 32), Inheritable: uint32(inh >> 32)},
	}
	err := unix.Capset(&hdr, &data[0])
	trace.Step("capset", fmt.Sprintf("capset(eff=%#x, perm=%#x, inh=%#x)", uint64(eff), uint64(perm), uint64(inh)), err)
	if err != nil {
		return fmt.Errorf("capset (effective %v, permitted %v): %w; a capability outside the runtime's own bounding set cannot be granted", c.Effective, c.Permitted, err)
	}
	for _, n := range c.Ambient {
		i := capIndex(n)
		if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, uintptr(i), 0, 0); err != nil {
			return fmt.Errorf("raise ambient %s: %w (it must be in both permitted and inheritable)", n, err)
		}
	}
	return nil
}

// SetNoNewPrivs sets PR_SET_NO_NEW_PRIVS: setuid binaries and file
// capabilities no longer raise privileges on execve.
func SetNoNewPrivs() error {
	err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
	return trace.Step("no-new-privs", "prctl(PR_SET_NO_NEW_PRIVS, 1)", wrap("no_new_privs", err))
}

// SetUser switches to process.user: supplementary groups, gid, then uid
// (setgroups, setresgid, setresuid). PR_SET_KEEPCAPS keeps the permitted
// set across the uid change so that SetCapabilities can still grant caps
// to a non-root user.
func SetUser(u specs.User) error {
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("keepcaps: %w", err)
	}
	groups := make([]int, 0, len(u.AdditionalGids))
	for _, g := range u.AdditionalGids {
		groups = append(groups, int(g))
	}
	// setgroups is refused in a user namespace whose setgroups file says
	// "deny"; then only an empty list is possible anyway.
	if err := unix.Setgroups(groups); err != nil && !(len(groups) == 0 && errors.Is(err, unix.EPERM)) {
		return fmt.Errorf("setgroups %v: %w", groups, err)
	}
	if err := unix.Setresgid(int(u.GID), int(u.GID), int(u.GID)); err != nil {
		return fmt.Errorf("setgid %d: %w (is the gid mapped in the user namespace?)", u.GID, err)
	}
	if err := unix.Setresuid(int(u.UID), int(u.UID), int(u.UID)); err != nil {
		return fmt.Errorf("setuid %d: %w (is the uid mapped in the user namespace?)", u.UID, err)
	}
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("keepcaps off: %w", err)
	}
	if u.Umask != nil {
		unix.Umask(int(*u.Umask))
	}
	return trace.Step("user", fmt.Sprintf("setgroups(%v), setresgid(%d), setresuid(%d)", groups, u.GID, u.UID), nil)
}

// lookPath finds the program to run the way execvp does, in the PATH of
// the process's own environment. The error text matches what Docker and its
// CLI look for ("executable file not found", "no such file or directory").
func lookPath(file string, env []string) (string, error) {
	if strings.Contains(file, "/") {
		if err := isExecutable(file); err != nil {
			return "", fmt.Errorf("exec: %q: %w", file, err)
		}
		return file, nil
	}
	path := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, e := range env {
		if strings.HasPrefix(e, "PATH=") {
			path = e[5:]
		}
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, file)
		if isExecutable(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("exec: %q: executable file not found in $PATH", file)
}

func isExecutable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return errors.New("is a directory")
	}
	if fi.Mode()&0o111 == 0 {
		return errors.New("permission denied")
	}
	return nil
}

func wrap(what string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", what, err)
}
