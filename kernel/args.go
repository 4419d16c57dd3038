package kernel

import (
	"fmt"
	"strings"
)

// The arguments of each call as trace lines, records and errors spell
// them: name=value, flags by name. Linux and Recorder both use these, so a
// test's expectations read like the trace.

func setnsArgs(fd, nstype int, path string) string {
	return fmt.Sprintf("fd=%d (%s), nstype=%s", fd, path, CloneFlags(uintptr(nstype)))
}

func mountArgs(source, target, fstype string, flags uintptr, data string) string {
	var b strings.Builder
	if source != "" {
		fmt.Fprintf(&b, "src=%s, ", source)
	}
	fmt.Fprintf(&b, "dst=%s", target)
	if fstype != "" {
		fmt.Fprintf(&b, ", type=%s", fstype)
	}
	if flags != 0 {
		fmt.Fprintf(&b, ", flags=%s", MountFlags(flags))
	}
	if data != "" {
		fmt.Fprintf(&b, ", data=%s", data)
	}
	return b.String()
}

func unmountArgs(target string, flags int) string {
	return fmt.Sprintf("%s, flags=%s", target, spell(uintptr(flags), unmountFlags))
}

func openArgs(path string, flags int) string {
	return fmt.Sprintf("%s, %s", path, openFlagNames(flags))
}

func openat2Args(dirfd int, root, path string, flags int, resolve uint64) string {
	return fmt.Sprintf("%d (%s), %s, %s, %s", dirfd, root, path, openFlagNames(flags), spell(uintptr(resolve), resolveFlags))
}

func mknodArgs(path string, mode, major, minor uint32) string {
	return fmt.Sprintf("%s, mode=%s, dev=%d:%d", path, nodeMode(mode), major, minor)
}

func writeArgs(path, data string) string { return fmt.Sprintf("%s, %q", path, data) }

func prlimitArgs(resource int, soft, hard uint64) string {
	return fmt.Sprintf("%s, soft=%d, hard=%d", rlimitName(resource), soft, hard)
}

func capsetArgs(eff, perm, inh uint64) string {
	return fmt.Sprintf("effective=%s, permitted=%s, inheritable=%s", capSetNames(eff), capSetNames(perm), capSetNames(inh))
}

func seccompArgs(flags uintptr, n int) string {
	return fmt.Sprintf("SECCOMP_SET_MODE_FILTER, flags=%s, %d instructions", spell(flags, seccompFlags), n)
}

func execArgs(path string, argv []string) string { return fmt.Sprintf("%s, argv=%q", path, argv) }

func linkUpArgs(name string) string           { return fmt.Sprintf("SIOCSIFFLAGS, %s, IFF_UP", name) }
func pivotArgs(newroot, putold string) string { return newroot + ", " + putold }
func chownArgs(path string, uid, gid int) string {
	return fmt.Sprintf("%s, %d, %d", path, uid, gid)
}
func symlinkArgs(target, link string) string { return target + " → " + link }
func cttyArgs(fd int) string                 { return fmt.Sprintf("%d, TIOCSCTTY", fd) }
func dup3Args(oldfd, newfd int) string       { return fmt.Sprintf("%d → %d", oldfd, newfd) }
func closeRangeArgs(fd int) string           { return fmt.Sprintf("%d, ~0, CLOSE_RANGE_CLOEXEC", fd) }
func keepCapsArgs(on bool) string {
	if on {
		return "PR_SET_KEEPCAPS, 1"
	}
	return "PR_SET_KEEPCAPS, 0"
}
func resArgs(id int) string { return fmt.Sprintf("%d, %d, %d", id, id, id) }
