package kernel

import (
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Why each call is made, as the trace shows it after the call: a reader
// sees the kernel call and, in a few words, what it does for the
// container. A call whose reason depends on its arguments (a mount) has a
// function that reads them.
const (
	whySetns        = "join an existing namespace (the config names its path)"
	whyUnshare      = "new namespaces for this process"
	whyHostname     = "the container's own host name, in its UTS namespace"
	whyDomainname   = "the container's NIS domain name, in its UTS namespace"
	whyLinkUp       = "bring up lo in the new network namespace"
	whyOpen         = "a descriptor to act on (no path lookup after this)"
	whyOpenat2      = "open inside the rootfs: symlinks cannot lead out of it"
	whyFchdir       = "stand in the directory the descriptor holds"
	whyChdir        = "stand in the directory before acting on \".\""
	whyChroot       = "make the rootfs / without pivot_root (--no-pivot)"
	whyPivotRoot    = "make the rootfs the root of the mount namespace; the old root moves under it"
	whyMknod        = "a device node the config asks for"
	whyChown        = "the owner the config (or the user namespace) wants"
	whySymlink      = "the standard /dev links (fd, stdin, stdout, stderr, ptmx)"
	whyPrlimit      = "a resource limit of the config (rlimits)"
	whyOpenPty      = "a terminal for the container's process"
	whySetsid       = "a new session, so the terminal can become the controlling one"
	whyCtty         = "make the pty the controlling terminal"
	whyDup3         = "put the descriptor at the number the process expects"
	whyCloseRange   = "no descriptor of the runtime leaks into the container's process"
	whyBsetDrop     = "drop from the bounding set: no process of the container can regain it"
	whyKeepCaps     = "keep the permitted capabilities across the change of uid"
	whySetgroups    = "the container's supplementary groups"
	whySetresgid    = "the container's gid (real, effective, saved)"
	whySetresuid    = "the container's uid (real, effective, saved)"
	whyCapset       = "the capabilities the container's process keeps"
	whyAmbient      = "ambient: kept across execve by a non-root process"
	whyUmask        = "the container's file creation mask"
	whyNoNewPrivs   = "execve can no longer grant privileges (setuid, file capabilities)"
	whySeccomp      = "load the syscall filter: from here on, the kernel checks every system call"
	whyExec         = "replace the init with the container's process"
	whyCgroupWrite  = "set a cgroup value"
	whySysctl       = "a namespaced kernel parameter of the config (sysctl)"
	whyMaskOrLabels = "write a kernel file the config sets"
)

// mountWhy says what a mount(2) does for the container, from its flags.
func mountWhy(source, target, fstype string, flags uintptr) string {
	switch {
	case flags&(unix.MS_SLAVE|unix.MS_PRIVATE|unix.MS_SHARED|unix.MS_UNBINDABLE) != 0 && flags&unix.MS_BIND == 0:
		if target == "/" || target == "." {
			return "change the propagation of every mount below: the container's mounts do not reach the host"
		}
		return "change the mount's propagation"
	case flags&unix.MS_REMOUNT != 0 && flags&unix.MS_BIND != 0:
		if flags&unix.MS_RDONLY != 0 {
			return "remount the bind read-only (a bind mount takes its flags only on remount)"
		}
		return "set the bind mount's flags (a bind mount takes its flags only on remount)"
	case flags&unix.MS_REMOUNT != 0:
		return "change the flags of a mount"
	case flags&unix.MS_MOVE != 0:
		return "move the mount to its new place"
	case flags&unix.MS_BIND != 0 && source == target:
		return "bind the path onto itself, so it is a mount point that can be remounted"
	case flags&unix.MS_BIND != 0 && filepath.Base(source) == "null":
		return "hide the path: /dev/null over a masked file"
	case flags&unix.MS_BIND != 0:
		return "make the host path visible inside the container"
	case fstype == "proc":
		return "a /proc that shows the new pid namespace"
	case fstype == "sysfs":
		return "a /sys for the container's network namespace"
	case fstype == "devpts":
		return "a devpts instance of the container's own: its ptys are not the host's"
	case fstype == "mqueue":
		return "POSIX message queues of the new IPC namespace"
	case fstype == "cgroup2" || fstype == "cgroup":
		return "the container's view of its cgroup"
	case fstype == "tmpfs" && strings.HasSuffix(target, "/dev"):
		return "an empty /dev, filled with the allowed devices only"
	case fstype == "tmpfs" && source == "tmpfs" && flags&unix.MS_RDONLY != 0:
		return "hide the directory: an empty read-only tmpfs over a masked path"
	case fstype == "tmpfs":
		return "a memory-backed filesystem"
	case fstype == "overlay":
		return "the image's layers, read-only, under a writable upper directory"
	}
	return "a mount the config asks for"
}

// unmountWhy says why a mount goes.
func unmountWhy(target string) string {
	if target == "." || target == "/" || strings.Contains(target, "old") {
		return "detach the host's old root: nothing of the host's filesystem stays visible"
	}
	return "remove the mount"
}

// writeWhy says what a write to a kernel file does.
func writeWhy(path string) string {
	switch {
	case strings.HasPrefix(path, "/proc/sys/"):
		return whySysctl
	case strings.HasSuffix(path, "/uid_map"), strings.HasSuffix(path, "/gid_map"):
		return "map the user namespace's ids to the host's"
	case strings.HasSuffix(path, "/setgroups"):
		return "deny setgroups before an unprivileged gid map"
	case strings.HasSuffix(path, "oom_score_adj"):
		return "the OOM killer's preference for this process"
	case strings.HasPrefix(path, "/sys/fs/cgroup/"):
		return whyCgroupWrite
	}
	return whyMaskOrLabels
}

// noteWhy says why each call that Note records is made.
var noteWhy = map[string]string{
	"clone":     "the init, born in its new namespaces (and cgroup)",
	"mkdir":     "the container's cgroup, where its limits apply",
	"wait4":     "reap the container's process",
	"read":      "read the configuration",
	"accept4":   "wait for `runtime start`",
	"connect":   "tell the waiting init to go on",
	"recvmsg":   "wait for the init's messages",
	"sendmsg":   "hand the pty master to the console socket",
	"prctl":     "no ptrace(2) of the init or open of its /proc/PID/exe by the container",
	"rmdir":     "remove the container's cgroup",
	"rm -r":     "remove the container's state",
	"kill":      "end what is left of the container",
	"write":     "move the process into the container's cgroup",
	"hook":      "an OCI hook of the config",
	"execve":    "run the init again once the id maps are written",
	"cgroup":    "no cgroup: limits cannot be applied",
	"seccomp":   "load the syscall filter",
	"newuidmap": "map the user namespace's ids with the setuid helper",
	"newgidmap": "map the user namespace's ids with the setuid helper",
}
