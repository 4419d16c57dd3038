package kernel

import (
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// A flag's value and its name in the kernel's headers.
type flagName struct {
	v    uintptr
	name string
}

// spell names the bits of v, in the table's order, joined by "|"; bits
// the table does not know are added as one hex number. Zero is "0".
func spell(v uintptr, table []flagName) string {
	var parts []string
	for _, f := range table {
		if f.v != 0 && v&f.v == f.v {
			parts = append(parts, f.name)
			v &^= f.v
		}
	}
	if v != 0 {
		parts = append(parts, fmt.Sprintf("%#x", v))
	}
	if len(parts) == 0 {
		return "0"
	}
	return strings.Join(parts, "|")
}

// mountFlags are mount(2)'s MS_* flags (the propagation ones too).
var mountFlags = []flagName{
	{unix.MS_RDONLY, "MS_RDONLY"}, {unix.MS_NOSUID, "MS_NOSUID"}, {unix.MS_NODEV, "MS_NODEV"},
	{unix.MS_NOEXEC, "MS_NOEXEC"}, {unix.MS_SYNCHRONOUS, "MS_SYNCHRONOUS"}, {unix.MS_REMOUNT, "MS_REMOUNT"},
	{unix.MS_MANDLOCK, "MS_MANDLOCK"}, {unix.MS_DIRSYNC, "MS_DIRSYNC"}, {unix.MS_NOSYMFOLLOW, "MS_NOSYMFOLLOW"},
	{unix.MS_NOATIME, "MS_NOATIME"}, {unix.MS_NODIRATIME, "MS_NODIRATIME"}, {unix.MS_BIND, "MS_BIND"},
	{unix.MS_MOVE, "MS_MOVE"}, {unix.MS_REC, "MS_REC"}, {unix.MS_SILENT, "MS_SILENT"},
	{unix.MS_POSIXACL, "MS_POSIXACL"}, {unix.MS_UNBINDABLE, "MS_UNBINDABLE"}, {unix.MS_PRIVATE, "MS_PRIVATE"},
	{unix.MS_SLAVE, "MS_SLAVE"}, {unix.MS_SHARED, "MS_SHARED"}, {unix.MS_RELATIME, "MS_RELATIME"},
	{unix.MS_I_VERSION, "MS_I_VERSION"}, {unix.MS_STRICTATIME, "MS_STRICTATIME"}, {unix.MS_LAZYTIME, "MS_LAZYTIME"},
}

// MountFlags spells mount(2) flags: "MS_BIND|MS_REC".
func MountFlags(f uintptr) string { return spell(f, mountFlags) }

var unmountFlags = []flagName{
	{unix.MNT_FORCE, "MNT_FORCE"}, {unix.MNT_DETACH, "MNT_DETACH"}, {unix.MNT_EXPIRE, "MNT_EXPIRE"},
	{unix.UMOUNT_NOFOLLOW, "UMOUNT_NOFOLLOW"},
}

// cloneFlags are the CLONE_NEW* flags of clone(2), unshare(2), setns(2).
var cloneFlags = []flagName{
	{unix.CLONE_NEWUSER, "CLONE_NEWUSER"}, {unix.CLONE_NEWPID, "CLONE_NEWPID"}, {unix.CLONE_NEWNS, "CLONE_NEWNS"},
	{unix.CLONE_NEWUTS, "CLONE_NEWUTS"}, {unix.CLONE_NEWIPC, "CLONE_NEWIPC"}, {unix.CLONE_NEWNET, "CLONE_NEWNET"},
	{unix.CLONE_NEWCGROUP, "CLONE_NEWCGROUP"}, {unix.CLONE_NEWTIME, "CLONE_NEWTIME"}, {unix.CLONE_FS, "CLONE_FS"},
}

// CloneFlags spells namespace flags: "CLONE_NEWPID|CLONE_NEWNS".
func CloneFlags(f uintptr) string { return spell(f, cloneFlags) }

var openFlags = []flagName{
	{unix.O_WRONLY, "O_WRONLY"}, {unix.O_RDWR, "O_RDWR"}, {unix.O_CREAT, "O_CREAT"}, {unix.O_TRUNC, "O_TRUNC"},
	{unix.O_DIRECTORY, "O_DIRECTORY"}, {unix.O_NOCTTY, "O_NOCTTY"}, {unix.O_CLOEXEC, "O_CLOEXEC"},
	{unix.O_PATH, "O_PATH"}, {unix.O_NOFOLLOW, "O_NOFOLLOW"},
}

// openFlagNames spells open(2) flags; O_RDONLY is 0, so it is named when
// no access mode bit is set.
func openFlagNames(f int) string {
	s := spell(uintptr(f), openFlags)
	if f&(unix.O_WRONLY|unix.O_RDWR) == 0 {
		if s == "0" {
			return "O_RDONLY"
		}
		return "O_RDONLY|" + s
	}
	return s
}

// resolveFlags are openat2(2)'s RESOLVE_* flags.
var resolveFlags = []flagName{
	{unix.RESOLVE_NO_XDEV, "RESOLVE_NO_XDEV"}, {unix.RESOLVE_NO_MAGICLINKS, "RESOLVE_NO_MAGICLINKS"},
	{unix.RESOLVE_NO_SYMLINKS, "RESOLVE_NO_SYMLINKS"}, {unix.RESOLVE_BENEATH, "RESOLVE_BENEATH"},
	{unix.RESOLVE_IN_ROOT, "RESOLVE_IN_ROOT"},
}

var fileTypes = []flagName{
	{unix.S_IFCHR, "S_IFCHR"}, {unix.S_IFBLK, "S_IFBLK"}, {unix.S_IFIFO, "S_IFIFO"},
}

// nodeMode spells mknod(2)'s mode: "S_IFCHR|0666".
func nodeMode(mode uint32) string {
	t := spell(uintptr(mode&unix.S_IFMT), fileTypes)
	return fmt.Sprintf("%s|%#o", t, mode&0o7777)
}

// capabilities are the capability names of linux/capability.h, by number.
var capabilities = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE",
	"CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
	"CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE", "CAP_SYS_PACCT",
	"CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE", "CAP_SYS_RESOURCE", "CAP_SYS_TIME",
	"CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL",
	"CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
}

// Capabilities lists the capability names this package knows, capability
// n at index n.
func Capabilities() []string { return append([]string(nil), capabilities...) }

// Capability returns the number of a capability named "CAP_SYS_ADMIN" or
// "sys_admin" (any case), or -1.
func Capability(name string) int {
	name = strings.ToUpper(name)
	if !strings.HasPrefix(name, "CAP_") {
		name = "CAP_" + name
	}
	for i, n := range capabilities {
		if n == name {
			return i
		}
	}
	return -1
}

// CapabilityName is the name of capability n ("cap 45" past the table).
func CapabilityName(n int) string {
	if n >= 0 && n < len(capabilities) {
		return capabilities[n]
	}
	return fmt.Sprintf("cap %d", n)
}

// capSetNames spells a capability set (bit n = capability n): names, or
// "0" for the empty set.
func capSetNames(set uint64) string {
	var names []string
	for i := 0; i < 64; i++ {
		if set&(1<<uint(i)) != 0 {
			names = append(names, CapabilityName(i))
		}
	}
	if len(names) == 0 {
		return "0"
	}
	return strings.Join(names, "|")
}

// rlimits are the RLIMIT_* resources, by number.
var rlimits = []string{
	unix.RLIMIT_CPU: "RLIMIT_CPU", unix.RLIMIT_FSIZE: "RLIMIT_FSIZE", unix.RLIMIT_DATA: "RLIMIT_DATA",
	unix.RLIMIT_STACK: "RLIMIT_STACK", unix.RLIMIT_CORE: "RLIMIT_CORE", unix.RLIMIT_RSS: "RLIMIT_RSS",
	unix.RLIMIT_NPROC: "RLIMIT_NPROC", unix.RLIMIT_NOFILE: "RLIMIT_NOFILE", unix.RLIMIT_MEMLOCK: "RLIMIT_MEMLOCK",
	unix.RLIMIT_AS: "RLIMIT_AS", unix.RLIMIT_LOCKS: "RLIMIT_LOCKS", unix.RLIMIT_SIGPENDING: "RLIMIT_SIGPENDING",
	unix.RLIMIT_MSGQUEUE: "RLIMIT_MSGQUEUE", unix.RLIMIT_NICE: "RLIMIT_NICE", unix.RLIMIT_RTPRIO: "RLIMIT_RTPRIO",
	unix.RLIMIT_RTTIME: "RLIMIT_RTTIME",
}

// Rlimit returns the number of the resource named "RLIMIT_NOFILE", or -1.
func Rlimit(name string) int {
	for i, n := range rlimits {
		if n == name {
			return i
		}
	}
	return -1
}

func rlimitName(r int) string {
	if r >= 0 && r < len(rlimits) && rlimits[r] != "" {
		return rlimits[r]
	}
	return fmt.Sprintf("resource %d", r)
}

var seccompFlags = []flagName{
	{unix.SECCOMP_FILTER_FLAG_TSYNC, "SECCOMP_FILTER_FLAG_TSYNC"}, {unix.SECCOMP_FILTER_FLAG_LOG, "SECCOMP_FILTER_FLAG_LOG"},
	{unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW, "SECCOMP_FILTER_FLAG_SPEC_ALLOW"},
	{unix.SECCOMP_FILTER_FLAG_NEW_LISTENER, "SECCOMP_FILTER_FLAG_NEW_LISTENER"},
	{unix.SECCOMP_FILTER_FLAG_TSYNC_ESRCH, "SECCOMP_FILTER_FLAG_TSYNC_ESRCH"},
}
