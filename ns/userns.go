package ns

import (
	"fmt"
	"runtime"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// StartInUserNamespace starts the program at path as a child that first
// enters the existing user namespace open at usernsFd, becomes uid and gid
// 0 there, and then calls execve(2). files[i] becomes fd i of the child
// (-1 leaves fd i closed); every other fd is close-on-exec.
//
// Why not os/exec: setns(2) into a user namespace is refused to a
// multithreaded process, and a Go process always has several threads. A
// child made by a plain fork(2) has one thread, so it can join; but a Go
// child of fork may only run a few raw system calls before execve, with no
// allocation, no stack growth and no signal handlers. childEnterUserNS is
// that short, straight sequence (the same thing Go's own os/exec does
// between clone and execve, and runc does in C).
//
// Children of the calling thread inherit its pid namespace: callers that
// joined one lock the goroutine to the thread first.
func StartInUserNamespace(usernsFd int, path string, argv, env []string, files []int) (int, error) {
	pathp, err := syscall.BytePtrFromString(path)
	if err != nil {
		return 0, err
	}
	argvp, err := syscall.SlicePtrFromStrings(argv)
	if err != nil {
		return 0, err
	}
	envp, err := syscall.SlicePtrFromStrings(env)
	if err != nil {
		return 0, err
	}
	// Move every source fd above the target range first, so that placing
	// fd i in the child never overwrites a source not yet placed.
	high := make([]int, len(files))
	for i, f := range files {
		high[i] = -1
		if f < 0 {
			continue
		}
		h, err := unix.FcntlInt(uintptr(f), unix.F_DUPFD_CLOEXEC, len(files))
		if err != nil {
			return 0, fmt.Errorf("dup fd %d: %w", f, err)
		}
		high[i] = h
		defer unix.Close(h)
	}
	// The child reports a failure before execve through this pipe; a
	// successful execve closes it (close-on-exec), so EOF means success.
	var errPipe [2]int
	if err := unix.Pipe2(errPipe[:], unix.O_CLOEXEC); err != nil {
		return 0, err
	}
	defer unix.Close(errPipe[0])

	// Block every signal while forking, so that no Go signal handler ever
	// runs in the child; the child restores the mask just before execve.
	var all, old unix.Sigset_t
	for i := range all.Val {
		all.Val[i] = ^uint64(0)
	}
	syscall.ForkLock.Lock()
	unix.PthreadSigmask(unix.SIG_SETMASK, &all, &old)
	pid, errno := childEnterUserNS(uintptr(usernsFd), uintptr(unsafe.Pointer(pathp)),
		uintptr(unsafe.Pointer(&argvp[0])), uintptr(unsafe.Pointer(&envp[0])),
		&high[0], uintptr(len(high)), uintptr(errPipe[1]), uintptr(unsafe.Pointer(&old)))
	unix.PthreadSigmask(unix.SIG_SETMASK, &old, nil)
	runtime.KeepAlive(pathp)
	runtime.KeepAlive(argvp)
	runtime.KeepAlive(envp)
	runtime.KeepAlive(high)
	syscall.ForkLock.Unlock()
	unix.Close(errPipe[1])
	if errno != 0 {
		return 0, fmt.Errorf("fork: %w", errno)
	}
	var report [8]byte
	n, _ := unix.Read(errPipe[0], report[:])
	if n == 0 {
		return pid, nil
	}
	var ws unix.WaitStatus
	unix.Wait4(pid, &ws, 0, nil)
	step := [...]string{"setns(CLONE_NEWUSER)", "setresgid(0)", "setresuid(0)", "dup3", "execve"}[report[4]%5]
	return 0, fmt.Errorf("child entering the user namespace: %s: %w", step, syscall.Errno(*(*uint32)(unsafe.Pointer(&report[0]))))
}

// sigactionDefault is a kernel struct sigaction with handler SIG_DFL.
var sigactionDefault struct {
	handler, flags, restorer uintptr
	mask                     uint64
}

// childEnterUserNS forks; the child runs only raw system calls (see
// StartInUserNamespace for why) and never returns.
//
//go:norace
//go:nosplit
func childEnterUserNS(userns, path, argv, env uintptr, high *int, nfiles, errw, oldmask uintptr) (int, syscall.Errno) {
	r1, _, e := syscall.RawSyscall6(unix.SYS_CLONE, uintptr(unix.SIGCHLD), 0, 0, 0, 0, 0)
	if e != 0 {
		return 0, e
	}
	if r1 != 0 {
		return int(r1), 0 // parent
	}
	// Child: one thread, a copy of the parent's memory.
	for sig := uintptr(1); sig <= 64; sig++ {
		if sig != uintptr(unix.SIGKILL) && sig != uintptr(unix.SIGSTOP) {
			syscall.RawSyscall6(unix.SYS_RT_SIGACTION, sig, uintptr(unsafe.Pointer(&sigactionDefault)), 0, 8, 0, 0)
		}
	}
	var step uintptr
	if _, _, e = syscall.RawSyscall(unix.SYS_SETNS, userns, unix.CLONE_NEWUSER, 0); e != 0 {
		goto fail
	}
	// setns into a user namespace gives every capability in it; now become
	// its root, so that execve keeps them.
	syscall.RawSyscall(unix.SYS_SETGROUPS, 0, 0, 0) // refused when setgroups is "deny": fine
	step = 1
	if _, _, e = syscall.RawSyscall(unix.SYS_SETRESGID, 0, 0, 0); e != 0 {
		goto fail
	}
	step = 2
	if _, _, e = syscall.RawSyscall(unix.SYS_SETRESUID, 0, 0, 0); e != 0 {
		goto fail
	}
	step = 3
	for i := uintptr(0); i < nfiles; i++ {
		src := *(*int)(unsafe.Add(unsafe.Pointer(high), i*unsafe.Sizeof(int(0))))
		if src < 0 {
			continue
		}
		if _, _, e = syscall.RawSyscall(unix.SYS_DUP3, uintptr(src), i, 0); e != 0 {
			goto fail
		}
	}
	step = 4
	syscall.RawSyscall6(unix.SYS_RT_SIGPROCMASK, unix.SIG_SETMASK, oldmask, 0, 8, 0, 0)
	_, _, e = syscall.RawSyscall(unix.SYS_EXECVE, path, argv, env)
fail:
	var report [8]byte
	*(*uint32)(unsafe.Pointer(&report[0])) = uint32(e)
	report[4] = byte(step)
	syscall.RawSyscall(unix.SYS_WRITE, errw, uintptr(unsafe.Pointer(&report[0])), 8)
	for {
		syscall.RawSyscall(unix.SYS_EXIT_GROUP, 253, 0, 0)
	}
}
