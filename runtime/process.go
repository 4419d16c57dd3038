package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"minidock/kernel"
)

// The calls that turn the init (or an exec'd helper) into the container's
// process, in the order finishProcess makes them. Each is one syscall
// family, made through the kernel seam.

// checkRlimits validates rlimit names and soft <= hard before anything runs.
func checkRlimits(rl []specs.POSIXRlimit) error {
	for _, r := range rl {
		if kernel.Rlimit(r.Type) < 0 {
			return fmt.Errorf("rlimit %q: unknown type", r.Type)
		}
		if r.Soft > r.Hard {
			return fmt.Errorf("rlimit %s: soft limit %d is above hard limit %d", r.Type, r.Soft, r.Hard)
		}
	}
	return nil
}

// setRlimits applies process.rlimits with prlimit(2). Raising a hard limit
// above the caller's needs CAP_SYS_RESOURCE; the error says so.
func setRlimits(k kernel.Calls, rl []specs.POSIXRlimit) error {
	for _, r := range rl {
		res := kernel.Rlimit(r.Type)
		err := k.Prlimit(res, r.Soft, r.Hard)
		if errors.Is(err, unix.EPERM) {
			var cur unix.Rlimit
			_ = unix.Prlimit(0, res, nil, &cur)
			return fmt.Errorf("%w: above the caller's hard limit %d, and raising it needs CAP_SYS_RESOURCE", err, cur.Max)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// lastCap is the highest capability this kernel knows.
func lastCap() int {
	data, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return len(kernel.Capabilities()) - 1
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return len(kernel.Capabilities()) - 1
	}
	return n
}

// capSet is a capability set as a bit mask: capability n is bit n.
type capSet uint64

func parseCaps(names []string) (capSet, error) {
	var s capSet
	for _, n := range names {
		i := kernel.Capability(n)
		if i < 0 {
			return 0, fmt.Errorf("unknown capability %q", n)
		}
		s |= 1 << uint(i)
	}
	return s, nil
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

// runcCapabilities returns c without the ambient capabilities that
// prctl(PR_CAP_AMBIENT_RAISE) would refuse: the kernel raises one only if
// it is in both the permitted and the inheritable set. runc goes on past
// those (`runc spec` writes ambient capabilities and no inheritable ones),
// so minidock leaves them out too, with a warning to warn, rather than
// fail. c itself is not modified.
func runcCapabilities(c *specs.LinuxCapabilities, warn func(string)) *specs.LinuxCapabilities {
	if c == nil || len(c.Ambient) == 0 {
		return c
	}
	perm, _ := parseCaps(c.Permitted)
	inh, _ := parseCaps(c.Inheritable)
	var keep, dropped []string
	for _, n := range c.Ambient {
		if i := kernel.Capability(n); i >= 0 && perm&inh&(1<<uint(i)) != 0 {
			keep = append(keep, n)
		} else {
			dropped = append(dropped, n)
		}
	}
	if len(dropped) == 0 {
		return c
	}
	warnTo(warn)(fmt.Sprintf("ambient capabilities %s left out: an ambient capability must be in both the permitted and the inheritable set", strings.Join(dropped, ", ")))
	out := *c
	out.Ambient = keep
	return &out
}

// dropBoundingSet removes from the bounding set (prctl PR_CAPBSET_DROP)
// every capability not listed: no later execve can ever regain them.
func dropBoundingSet(k kernel.Calls, c *specs.LinuxCapabilities) error {
	if c == nil {
		return nil
	}
	keep, _ := parseCaps(c.Bounding)
	last := lastCap()
	for i := 0; i <= last; i++ {
		if keep&(1<<uint(i)) != 0 {
			continue
		}
		if err := k.CapBsetDrop(i); err != nil && !errors.Is(err, unix.EINVAL) {
			return err
		}
	}
	return nil
}

// setUser switches to process.user: supplementary groups, gid, then uid
// (setgroups, setresgid, setresuid). PR_SET_KEEPCAPS keeps the permitted
// set across the uid change so that setCapabilities can still grant caps
// to a non-root user.
func setUser(k kernel.Calls, u specs.User) error {
	if err := k.SetKeepCaps(true); err != nil {
		return err
	}
	groups := make([]int, 0, len(u.AdditionalGids))
	for _, g := range u.AdditionalGids {
		groups = append(groups, int(g))
	}
	// setgroups is refused in a user namespace whose setgroups file says
	// "deny"; then only an empty list is possible anyway.
	if err := k.Setgroups(groups); err != nil && !(len(groups) == 0 && errors.Is(err, unix.EPERM)) {
		return err
	}
	if err := k.Setresgid(int(u.GID)); err != nil {
		return fmt.Errorf("%w (is gid %d mapped in the user namespace?)", err, u.GID)
	}
	if err := k.Setresuid(int(u.UID)); err != nil {
		return fmt.Errorf("%w (is uid %d mapped in the user namespace?)", err, u.UID)
	}
	if err := k.SetKeepCaps(false); err != nil {
		return err
	}
	if u.Umask != nil {
		return k.Umask(int(*u.Umask))
	}
	return nil
}

// setCapabilities sets the effective, permitted and inheritable sets with
// capset(2), then raises each ambient capability with prctl(PR_CAP_AMBIENT).
func setCapabilities(k kernel.Calls, c *specs.LinuxCapabilities) error {
	if c == nil {
		return nil
	}
	eff, _ := parseCaps(c.Effective)
	perm, _ := parseCaps(c.Permitted)
	inh, _ := parseCaps(c.Inheritable)
	if err := k.Capset(uint64(eff), uint64(perm), uint64(inh)); err != nil {
		return fmt.Errorf("%w; a capability outside the runtime's own bounding set cannot be granted", err)
	}
	for _, n := range c.Ambient {
		if err := k.CapAmbientRaise(kernel.Capability(n)); err != nil {
			return fmt.Errorf("%w (an ambient capability must be both permitted and inheritable)", err)
		}
	}
	return nil
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
