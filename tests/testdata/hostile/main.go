// Command hostile is the probe of the hostile-container suite
// (tests/hostile_test.go): run inside a container, it tries what a
// process that is root in a container must not be able to do to the
// host, one probe at a time, and prints one JSON line per probe with what
// the kernel answered: {"probe":"mount","ok":false,"result":"EPERM
// (operation not permitted)"}. "ok" means the attempt went through; the
// result names the errno (or the masking) that stopped it otherwise, so
// that a blocked probe is blocked for a known reason, never by accident
// (a missing file, a typo).
//
// The probes do no harm when they succeed (under --privileged): files
// are written back with the value read from them, the clock is not moved,
// no module is loaded, no disk is written.
//
//	hostile [-disk MAJOR:MINOR] [-marker S] [-watch DURATION] all
//	hostile noop
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

type result struct {
	Probe  string `json:"probe"`
	OK     bool   `json:"ok"`
	Result string `json:"result"`
}

var (
	disk   = flag.String("disk", "", "MAJOR:MINOR of a host disk, for mknod")
	marker = flag.String("marker", "", "a string in the command line of a host process")
	watch  = flag.Duration("watch", 0, "how long to watch for processes that enter the container (ptrace-runtime)")
)

func main() {
	flag.Parse()
	switch flag.Arg(0) {
	case "noop":
		return
	case "all":
	default:
		fmt.Fprintln(os.Stderr, "usage: hostile [-disk MAJ:MIN] [-marker S] [-watch D] all | noop")
		os.Exit(2)
	}
	enc := json.NewEncoder(os.Stdout)
	for _, p := range probes {
		ok, res := p.run()
		enc.Encode(result{Probe: p.name, OK: ok, Result: res})
	}
	if *watch > 0 {
		fmt.Println(`{"probe":"watching"}`)
		ok, res := ptraceNewcomers(*watch)
		enc.Encode(result{Probe: "ptrace-runtime", OK: ok, Result: res})
	}
}

type probe struct {
	name string
	run  func() (bool, string)
}

var probes = []probe{
	{"mount", func() (bool, string) {
		dir, err := os.MkdirTemp("", "m")
		if err != nil {
			return false, "setup: " + err.Error()
		}
		err = unix.Mount("tmpfs", dir, "tmpfs", 0, "")
		if err == nil {
			unix.Unmount(dir, 0)
		}
		return outcome(err)
	}},
	{"remount-proc", func() (bool, string) {
		return outcome(unix.Mount("", "/proc", "", unix.MS_REMOUNT|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""))
	}},
	{"remount-sys-rw", func() (bool, string) {
		return outcome(unix.Mount("", "/sys", "", unix.MS_REMOUNT|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""))
	}},
	{"write-proc-sys", func() (bool, string) { return writeBack("/proc/sys/vm/overcommit_ratio") }},
	{"sysrq-trigger", func() (bool, string) {
		// opening it for writing is the step that must fail; nothing is written
		f, err := os.OpenFile("/proc/sysrq-trigger", os.O_WRONLY, 0)
		if err == nil {
			f.Close()
		}
		return outcome(err)
	}},
	{"core-pattern", func() (bool, string) { return writeBack("/proc/sys/kernel/core_pattern") }},
	{"write-sys", func() (bool, string) {
		return writeBack(firstExisting("/sys/kernel/mm/transparent_hugepage/khugepaged/pages_to_scan",
			"/sys/kernel/mm/ksm/pages_to_scan", "/sys/block/vda/queue/read_ahead_kb"))
	}},
	{"write-cgroup", func() (bool, string) {
		return writeBack(firstExisting("/sys/fs/cgroup/pids/pids.max", "/sys/fs/cgroup/pids.max",
			"/sys/fs/cgroup/cpu/cpu.shares", "/sys/fs/cgroup/cpu.weight"))
	}},
	{"mknod-disk", mknodDisk},
	{"read-kcore", func() (bool, string) { return readMasked("/proc/kcore") }},
	{"read-keys", func() (bool, string) { return readMasked("/proc/keys") }},
	{"keyctl", func() (bool, string) {
		_, err := unix.AddKey("user", "hostile-probe", []byte("x"), unix.KEY_SPEC_PROCESS_KEYRING)
		return outcome(err)
	}},
	{"unshare-user", func() (bool, string) { return unshare(unix.CLONE_NEWUSER) }},
	{"unshare-mount", func() (bool, string) { return unshare(unix.CLONE_NEWNS) }},
	{"clone-newuser", func() (bool, string) {
		cmd := exec.Command("/proc/self/exe", "noop")
		cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWUSER}
		return outcome(cmd.Run())
	}},
	{"swapoff", func() (bool, string) {
		// a file that is not swap: permitted, the kernel answers EINVAL
		p, _ := unix.BytePtrFromString("/etc/passwd")
		_, _, e := unix.Syscall(unix.SYS_SWAPOFF, uintptr(unsafe.Pointer(p)), 0, 0)
		return outcomeErrno(e, unix.EINVAL)
	}},
	{"settime", func() (bool, string) {
		// settimeofday(NULL, tz) with the current timezone: the same
		// privilege as setting the clock, and nothing changes
		var tv unix.Timeval
		var tz [2]int32
		unix.Syscall(unix.SYS_GETTIMEOFDAY, uintptr(unsafe.Pointer(&tv)), uintptr(unsafe.Pointer(&tz)), 0)
		_, _, e := unix.Syscall(unix.SYS_SETTIMEOFDAY, 0, uintptr(unsafe.Pointer(&tz)), 0)
		return outcomeErrno(e)
	}},
	{"sethostname", func() (bool, string) { return outcome(unix.Sethostname([]byte("hostile-probe"))) }},
	{"delete-module", func() (bool, string) {
		// a module that is not there: permitted, the kernel answers ENOENT
		p, _ := unix.BytePtrFromString("minidock_no_such_module")
		_, _, e := unix.Syscall(unix.SYS_DELETE_MODULE, uintptr(unsafe.Pointer(p)), unix.O_NONBLOCK, 0)
		// ENOSYS: a kernel built without modules (seccomp's own refusal here is EPERM)
		return outcomeErrno(e, unix.ENOENT, unix.ENOSYS)
	}},
	{"host-processes", hostProcesses},
}

// outcome: nil is ok; an error is reported by its errno's name.
func outcome(err error) (bool, string) {
	if err == nil {
		return true, "permitted"
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return false, errnoName(errno)
	}
	return false, err.Error()
}

// outcomeErrno: a raw syscall's errno; those in permitted mean the kernel
// let the call through and it failed on its argument.
func outcomeErrno(e syscall.Errno, permitted ...syscall.Errno) (bool, string) {
	if e == 0 {
		return true, "permitted"
	}
	for _, p := range permitted {
		if e == p {
			return true, "permitted, then " + errnoName(e)
		}
	}
	return false, errnoName(e)
}

func errnoName(e syscall.Errno) string {
	return fmt.Sprintf("%s (%s)", unix.ErrnoName(e), e.Error())
}

func firstExisting(paths ...string) string {
	for _, p := range paths {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return paths[0]
}

// writeBack writes a file's own value back to it: the write is the
// attack, the value changes nothing.
func writeBack(p string) (bool, string) {
	data, err := os.ReadFile(p)
	if err != nil {
		ok, r := outcome(err)
		return ok, "read " + p + ": " + r
	}
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err == nil {
		_, err = f.Write(data)
		f.Close()
	}
	ok, r := outcome(err)
	return ok, p + ": " + r
}

// readMasked opens a /proc file that must be masked: the runtime binds
// /dev/null over it, so it opens and reads empty. Reading it for real is
// the attack.
func readMasked(p string) (bool, string) {
	f, err := os.Open(p)
	if err != nil {
		return outcome(err)
	}
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return outcome(err)
	}
	if st.Mode&unix.S_IFMT == unix.S_IFCHR && unix.Major(st.Rdev) == 1 && unix.Minor(st.Rdev) == 3 {
		return false, "masked (/dev/null bound over it)"
	}
	buf := make([]byte, 64)
	if _, err := f.Read(buf); err != nil && err.Error() != "EOF" {
		ok, r := outcome(err)
		return ok, "read: " + r
	}
	return true, "permitted (the real file)"
}

// mknodDisk makes a node for a host disk and opens it: the node may be
// made (Docker's device cgroup allows mknod of any device), opening it
// must fail.
func mknodDisk() (bool, string) {
	maj, min, ok := strings.Cut(*disk, ":")
	ma, e1 := strconv.Atoi(maj)
	mi, e2 := strconv.Atoi(min)
	if !ok || e1 != nil || e2 != nil {
		return false, "setup: -disk MAJOR:MINOR not given"
	}
	p := filepath.Join(os.TempDir(), "hostile-disk")
	os.Remove(p)
	if err := unix.Mknod(p, unix.S_IFBLK|0o600, int(unix.Mkdev(uint32(ma), uint32(mi)))); err != nil {
		ok, r := outcome(err)
		return ok, "mknod: " + r
	}
	defer os.Remove(p)
	f, err := os.Open(p)
	if err == nil {
		f.Close()
	}
	ok2, r := outcome(err)
	return ok2, "mknod permitted, open: " + r
}

// unshare makes a child that calls unshare(2) with flags before its
// execve (os/exec does it in the forked child, which has one thread: a
// multithreaded Go process cannot unshare a user namespace itself).
func unshare(flags uintptr) (bool, string) {
	cmd := exec.Command("/proc/self/exe", "noop")
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: flags}
	return outcome(cmd.Run())
}

// hostProcesses looks for a process of the host (one whose command line
// holds the marker the test gave) in /proc.
func hostProcesses() (bool, string) {
	if *marker == "" {
		return false, "setup: -marker not given"
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return outcome(err)
	}
	n, self := 0, strconv.Itoa(os.Getpid()) // the probe's own command line holds the marker
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil || e.Name() == self {
			continue
		}
		n++
		data, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if strings.Contains(string(data), *marker) {
			return true, "permitted: host process found as pid " + e.Name()
		}
	}
	return false, fmt.Sprintf("not visible (%d processes in /proc, none the host's)", n)
}

// ptraceNewcomers watches /proc for processes that appear in the
// container from outside while their program is not yet one of the
// container's: the runtime's init of an exec (`docker exec`), before it
// becomes the exec'd program. It tries to attach to each with ptrace(2),
// again and again until the process is gone or runs the container's
// program: the init starts with every capability (which alone makes
// ptrace refuse) and drops to the container's before its execve, and
// only from then on does the runtime's own protection (not dumpable)
// show. A runtime process that lets it attach could be made to run
// anything before its seccomp filter is loaded, and its /proc/<pid>/exe
// is the runtime's binary on the host.
func ptraceNewcomers(d time.Duration) (bool, string) {
	runtime.LockOSThread() // ptrace ties the tracee to this thread
	seen := map[int]bool{}
	for _, pid := range pids() {
		seen[pid] = true
	}
	self := os.Getpid()
	watched := map[int]string{} // runtime processes -> the last refusal
	refusals := map[string]int{}
	processes := 0
	var permitted []string
	settle := func(pid int) {
		if r := watched[pid]; r != "" {
			refusals[r]++
		}
		delete(watched, pid)
	}
	for deadline := time.Now().Add(d); time.Now().Before(deadline); {
		for _, pid := range pids() {
			if !seen[pid] && pid != self {
				seen[pid] = true
				if ppid(pid) != self { // not a child of the probe's own
					watched[pid] = ""
					processes++
				}
			}
		}
		for pid := range watched {
			exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
			if errors.Is(err, os.ErrNotExist) || (err == nil && inContainer(exe)) {
				settle(pid) // gone, or the container's program by now
				continue
			}
			if err := unix.PtraceSeize(pid); err != nil {
				if _, r := outcome(err); !strings.HasPrefix(r, "ESRCH") {
					watched[pid] = r
				}
				continue
			}
			// let it go on whatever it is: stop it, wait for the stop, detach
			detach := func() {
				unix.PtraceInterrupt(pid)
				var ws unix.WaitStatus
				unix.Wait4(pid, &ws, unix.WALL, nil)
				unix.PtraceDetach(pid)
			}
			if now, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); (err == nil && inContainer(now)) || errors.Is(err, os.ErrNotExist) || zombie(pid) {
				// it became the container's program between the two looks
				// (a process of the container like any other), or is
				// exiting or has exited since (it has no program left:
				// nothing to take over)
				detach()
				settle(pid)
				continue
			}
			cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
			capEff := ""
			for _, l := range strings.Split(string(status), "\n") {
				if strings.HasPrefix(l, "CapEff:") {
					capEff = strings.TrimSpace(strings.TrimPrefix(l, "CapEff:"))
				}
			}
			exeErr := ""
			if err != nil {
				_, exeErr = outcome(err)
			}
			permitted = append(permitted, fmt.Sprintf("pid %d (exe %q %s, %q, CapEff %s)", pid, exe, exeErr, strings.ReplaceAll(string(cmdline), "\x00", " "), capEff))
			detach()
			delete(watched, pid)
		}
	}
	for pid := range watched {
		settle(pid)
	}
	attempts := 0
	for _, n := range refusals {
		attempts += n
	}
	switch {
	case len(permitted) > 0:
		return true, fmt.Sprintf("permitted: attached to %s", strings.Join(permitted, ", "))
	case attempts == 0:
		return false, fmt.Sprintf("inconclusive: %d processes entered the container, none refused", processes)
	}
	return false, fmt.Sprintf("%d runtime processes refused, each until it became the container's program: %v", attempts, refusals)
}

// inContainer tells whether an exe link names a file of the container:
// the runtime's binary is the host's, absent here.
func inContainer(exe string) bool {
	_, err := os.Stat(strings.TrimSuffix(exe, " (deleted)"))
	return err == nil
}

func pids() []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		if n, err := strconv.Atoi(e.Name()); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// zombie tells whether pid has exited and waits to be reaped.
func zombie(pid int) bool {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	s := string(data)
	if i := strings.LastIndexByte(s, ')'); i >= 0 {
		f := strings.Fields(s[i+1:])
		return len(f) > 0 && f[0] == "Z"
	}
	return false
}

func ppid(pid int) int {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	s := string(data)
	if i := strings.LastIndexByte(s, ')'); i >= 0 {
		if f := strings.Fields(s[i+1:]); len(f) > 1 {
			n, _ := strconv.Atoi(f[1])
			return n
		}
	}
	return 0
}
