package seccomp

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"minidock/internal/testutil"
	"minidock/kernel"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Real-kernel tests re-execute the test binary as a child that sets
// no_new_privs, loads a filter, runs probes (one syscall each, reporting the
// errno) and optionally execs a program.

const (
	childEnv = "MINIDOCK_SECCOMP_TEST_CHILD" // JSON childSpec
	dirEnv   = "MINIDOCK_SECCOMP_TEST_DIR"   // a scratch directory for probes
)

type childSpec struct {
	Config specs.LinuxSeccomp
	Probes []string
	Exec   []string
}

func TestMain(m *testing.M) {
	if s := os.Getenv(childEnv); s != "" {
		os.Exit(childMain(s))
	}
	os.Exit(m.Run())
}

// childMain runs in the child. Exit codes: 3 setup failed, 4 Load failed,
// 5 exec failed; a filter's KILL shows as death by SIGSYS.
func childMain(s string) int {
	var spec childSpec
	if err := json.Unmarshal([]byte(s), &spec); err != nil {
		fmt.Fprintln(os.Stderr, "child spec:", err)
		return 3
	}
	f, err := Compile(&spec.Config)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	// no_new_privs is per thread: set it on the thread that calls Load.
	runtime.LockOSThread()
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		fmt.Fprintln(os.Stderr, "prctl(PR_SET_NO_NEW_PRIVS):", err)
		return 3
	}
	if err := f.Load(kernel.NewLinux(nil)); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 4
	}
	for _, name := range spec.Probes {
		p, ok := probes[name]
		if !ok {
			fmt.Fprintln(os.Stderr, "no probe", name)
			return 3
		}
		fmt.Printf("start %s\n", name)
		fmt.Printf("result %s %d\n", name, p())
	}
	if len(spec.Exec) > 0 {
		err := unix.Exec(spec.Exec[0], spec.Exec, os.Environ())
		fmt.Printf("exec-error %d\n", err.(unix.Errno))
		return 5
	}
	return 0
}

func sys(nr uintptr, args ...uintptr) unix.Errno {
	var a [6]uintptr
	copy(a[:], args)
	_, _, e := unix.Syscall6(nr, a[0], a[1], a[2], a[3], a[4], a[5])
	return e
}

func socketProbe(typ int) func() unix.Errno {
	return func() unix.Errno {
		fd, _, e := unix.Syscall(unix.SYS_SOCKET, unix.AF_UNIX, uintptr(typ), 0)
		if e == 0 {
			unix.Close(int(fd))
		}
		return e
	}
}

const addrNoRandomize = 0x0040000

// probes make one syscall each and return its errno (0: success).
var probes = map[string]func() unix.Errno{
	"getpid":  func() unix.Errno { return sys(unix.SYS_GETPID) },
	"getppid": func() unix.Errno { return sys(unix.SYS_GETPPID) },
	"getcwd":  func() unix.Errno { return sys(unix.SYS_GETCWD, 0, 0) }, // ERANGE when allowed
	"mkdir": func() unix.Errno {
		p, _ := unix.BytePtrFromString(filepath.Join(os.Getenv(dirEnv), "new"))
		return sys(unix.SYS_MKDIR, uintptr(unsafe.Pointer(p)), 0o755)
	},
	"uname": func() unix.Errno {
		var u unix.Utsname
		return sys(unix.SYS_UNAME, uintptr(unsafe.Pointer(&u)))
	},
	"mount":                   func() unix.Errno { return sys(unix.SYS_MOUNT, 0, 0, 0, 0, 0) },
	"clone3":                  func() unix.Errno { return sys(unix.SYS_CLONE3, 0, 0) },
	"personality(0xffffffff)": func() unix.Errno { return sys(unix.SYS_PERSONALITY, 0xffffffff) },
	"personality(ADDR_NO_RANDOMIZE)": func() unix.Errno {
		return sys(unix.SYS_PERSONALITY, addrNoRandomize)
	},
	"socket(SOCK_STREAM)":              socketProbe(unix.SOCK_STREAM),
	"socket(SOCK_STREAM|SOCK_CLOEXEC)": socketProbe(unix.SOCK_STREAM | unix.SOCK_CLOEXEC),
	"lseek(-1, 0xffffffff)":            func() unix.Errno { return sys(unix.SYS_LSEEK, ^uintptr(0), 0xffffffff, 0) },
	"lseek(-1, 1<<32)":                 func() unix.Errno { return sys(unix.SYS_LSEEK, ^uintptr(0), 1<<32, 0) },
	"lseek(-1, 3<<32|5)":               func() unix.Errno { return sys(unix.SYS_LSEEK, ^uintptr(0), 3<<32|5, 0) },
	"x32 getpid":                       func() unix.Errno { return sys(x32SyscallBit | unix.SYS_GETPID) },
	"x32 getcwd":                       func() unix.Errno { return sys(x32SyscallBit|unix.SYS_GETCWD, 0, 0) },
	// TSYNC: a thread other than the one that called Load is filtered too.
	"getcwd on another thread": func() unix.Errno {
		ch := make(chan unix.Errno)
		go func() {
			runtime.LockOSThread() // main's thread is locked, so this is another one
			ch <- sys(unix.SYS_GETCWD, 0, 0)
		}()
		return <-ch
	},
}

type childResult struct {
	results map[string]unix.Errno
	out     string
	status  syscall.WaitStatus
}

func (r childResult) expect(t *testing.T, want map[string]unix.Errno) {
	t.Helper()
	for name, errno := range want {
		got, ok := r.results[name]
		if !ok {
			t.Errorf("%s: no result; child %v, output:\n%s", name, r.status, r.out)
		} else if got != errno {
			t.Errorf("%s: got errno %d (%v), want %d (%v)", name, got, got, errno, errno)
		}
	}
}

func runChild(t *testing.T, spec childSpec) childResult {
	t.Helper()
	testutil.RequireRoot(t)
	data, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0])
	cmd.Env = append(os.Environ(), childEnv+"="+string(data), dirEnv+"="+t.TempDir())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("run child: %v", err)
	}
	r := childResult{results: map[string]unix.Errno{}, out: stdout.String() + stderr.String(),
		status: cmd.ProcessState.Sys().(syscall.WaitStatus)}
	if r.status.Exited() && r.status.ExitStatus() >= 3 && r.status.ExitStatus() <= 5 {
		t.Fatalf("child failed (exit %d):\n%s", r.status.ExitStatus(), r.out)
	}
	for _, line := range strings.Split(stdout.String(), "\n") {
		if rest, ok := strings.CutPrefix(line, "result "); ok {
			i := strings.LastIndexByte(rest, ' ')
			n, err := strconv.Atoi(rest[i+1:])
			if err != nil {
				t.Fatalf("bad child line %q", line)
			}
			r.results[rest[:i]] = unix.Errno(n)
		}
	}
	return r
}

func wantExit0(t *testing.T, r childResult) {
	t.Helper()
	if !r.status.Exited() || r.status.ExitStatus() != 0 {
		t.Errorf("child: %v, want exit 0; output:\n%s", r.status, r.out)
	}
}

func wantSIGSYS(t *testing.T, r childResult) {
	t.Helper()
	if !r.status.Signaled() || r.status.Signal() != unix.SIGSYS {
		t.Errorf("child: %v, want killed by SIGSYS; output:\n%s", r.status, r.out)
	}
}

// Blocked syscalls get their errno, others work, on every thread.
func TestKernelErrnoActions(t *testing.T) {
	r := runChild(t, childSpec{
		Config: specs.LinuxSeccomp{
			DefaultAction: specs.ActAllow,
			Syscalls: []specs.LinuxSyscall{
				{Names: []string{"getcwd"}, Action: specs.ActErrno},
				{Names: []string{"mkdir"}, Action: specs.ActErrno, ErrnoRet: errnoRet(uint(unix.ENOMEDIUM))},
				{Names: []string{"uname"}, Action: specs.ActTrace}, // no tracer: ENOSYS
				{Names: []string{"getppid"}, Action: specs.ActLog}, // allowed, and logged
			},
		},
		Probes: []string{"getpid", "getcwd", "getcwd on another thread", "mkdir", "uname", "getppid"},
	})
	wantExit0(t, r)
	r.expect(t, map[string]unix.Errno{
		"getpid":                   0,
		"getcwd":                   unix.EPERM,
		"getcwd on another thread": unix.EPERM,
		"mkdir":                    unix.ENOMEDIUM,
		"uname":                    unix.ENOSYS,
		"getppid":                  0,
	})
}

// Argument conditions: EQ/NE on a 32-bit value, MASKED_EQ on flags, and a
// 64-bit GE where only the high word decides.
func TestKernelArgConditions(t *testing.T) {
	r := runChild(t, childSpec{
		Config: specs.LinuxSeccomp{
			DefaultAction: specs.ActAllow,
			Syscalls: []specs.LinuxSyscall{
				// personality is allowed only to query (arg0 == 0xffffffff).
				{Names: []string{"personality"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{
					{Index: 0, Op: specs.OpNotEqual, Value: 0xffffffff}}},
				{Names: []string{"socket"}, Action: specs.ActErrno, ErrnoRet: errnoRet(uint(unix.EACCES)), Args: []specs.LinuxSeccompArg{
					{Index: 0, Op: specs.OpEqualTo, Value: unix.AF_UNIX},
					{Index: 1, Op: specs.OpMaskedEqual, Value: unix.SOCK_CLOEXEC, ValueTwo: unix.SOCK_CLOEXEC}}},
				{Names: []string{"lseek"}, Action: specs.ActErrno, ErrnoRet: errnoRet(uint(unix.ERANGE)), Args: []specs.LinuxSeccompArg{
					{Index: 1, Op: specs.OpGreaterEqual, Value: 1 << 32}}},
			},
		},
		Probes: []string{"personality(0xffffffff)", "personality(ADDR_NO_RANDOMIZE)",
			"socket(SOCK_STREAM)", "socket(SOCK_STREAM|SOCK_CLOEXEC)",
			"lseek(-1, 0xffffffff)", "lseek(-1, 1<<32)", "lseek(-1, 3<<32|5)"},
	})
	wantExit0(t, r)
	r.expect(t, map[string]unix.Errno{
		"personality(0xffffffff)":          0,
		"personality(ADDR_NO_RANDOMIZE)":   unix.EPERM,
		"socket(SOCK_STREAM)":              0,
		"socket(SOCK_STREAM|SOCK_CLOEXEC)": unix.EACCES,
		"lseek(-1, 0xffffffff)":            unix.EBADF, // allowed: fd -1 is bad
		"lseek(-1, 1<<32)":                 unix.ERANGE,
		"lseek(-1, 3<<32|5)":               unix.ERANGE,
	})
}

// Default KILL_PROCESS: the first syscall not allowed kills the child.
func TestKernelKillProcess(t *testing.T) {
	var names []string
	for _, e := range syscallsX86_64 {
		if e.name != "getcwd" {
			names = append(names, e.name)
		}
	}
	r := runChild(t, childSpec{
		Config: specs.LinuxSeccomp{
			DefaultAction: specs.ActKillProcess,
			Syscalls:      []specs.LinuxSyscall{{Names: names, Action: specs.ActAllow}},
		},
		Probes: []string{"getpid", "getcwd", "getppid"},
	})
	wantSIGSYS(t, r)
	if !strings.Contains(r.out, "start getcwd") {
		t.Errorf("child died before getcwd:\n%s", r.out)
	}
	r.expect(t, map[string]unix.Errno{"getpid": 0})
	if _, ok := r.results["getcwd"]; ok {
		t.Errorf("getcwd returned under KILL_PROCESS:\n%s", r.out)
	}
}

// A Docker-default-like profile (default ERRNO, a few hundred allowed
// syscalls on three ABIs) loads; the child and a busybox shell run normally.
func TestKernelDockerLikeProfile(t *testing.T) {
	bb := testutil.BusyboxPath(t)
	r := runChild(t, childSpec{
		Config: *dockerLike(),
		Probes: []string{"getpid", "getcwd", "mount", "clone3", "personality(0xffffffff)", "personality(ADDR_NO_RANDOMIZE)"},
		Exec:   []string{bb, "sh", "-c", "echo hello from busybox; ls / >/dev/null && grep ^Seccomp /proc/self/status; mount -t tmpfs none /mnt"},
	})
	r.expect(t, map[string]unix.Errno{
		"getpid":                         0,
		"getcwd":                         unix.ERANGE, // allowed; size 0 is too small
		"mount":                          unix.EPERM,
		"clone3":                         unix.ENOSYS,
		"personality(0xffffffff)":        0,
		"personality(ADDR_NO_RANDOMIZE)": unix.EPERM,
	})
	for _, want := range []string{"hello from busybox", "Seccomp:\t2", "mount: permission denied"} {
		if !strings.Contains(r.out, want) {
			t.Errorf("output lacks %q:\n%s", want, r.out)
		}
	}
	if !r.status.Exited() || r.status.ExitStatus() == 0 {
		t.Errorf("busybox mount should fail; child %v:\n%s", r.status, r.out)
	}
}

// x32 syscalls (x32 bit set, same AUDIT_ARCH_X86_64) are a separate ABI:
// killed unless SCMP_ARCH_X32 is listed, then filtered by their own table.
func TestKernelX32(t *testing.T) {
	rules := []specs.LinuxSyscall{{Names: []string{"getpid"}, Action: specs.ActErrno, ErrnoRet: errnoRet(55)}}
	r := runChild(t, childSpec{
		Config: specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: rules},
		Probes: []string{"getpid", "x32 getpid"},
	})
	wantSIGSYS(t, r)
	r.expect(t, map[string]unix.Errno{"getpid": 55})

	r = runChild(t, childSpec{
		Config: specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: rules,
			Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX32}},
		Probes: []string{"getpid", "x32 getpid", "x32 getcwd"},
	})
	wantExit0(t, r)
	r.expect(t, map[string]unix.Errno{"getpid": 55, "x32 getpid": 55})
	// Allowed: ENOSYS on kernels without CONFIG_X86_X32_ABI, else ERANGE.
	if e := r.results["x32 getcwd"]; e != unix.ENOSYS && e != unix.ERANGE {
		t.Errorf("x32 getcwd: errno %d (%v), want ENOSYS or ERANGE", e, e)
	}
}

// i386 syscalls (int $0x80, AUDIT_ARCH_I386) from a tiny static i386
// program: killed unless SCMP_ARCH_X86 is listed, then filtered by the i386
// table.
func TestKernelI386(t *testing.T) {
	testutil.RequireRoot(t)
	dir := t.TempDir()
	prog := writeI386(t, dir, mustNr(syscallsI386, "getuid32"))
	x86 := []specs.Arch{specs.ArchX86_64, specs.ArchX86}

	// Without a filter the program exits with -getuid32() & 0xff: 0 as root.
	if err := exec.Command(prog).Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("i386 program without filter: %v", err)
		}
		t.Skipf("cannot run i386 programs (IA32 emulation off?): %v", err)
	}

	r := runChild(t, childSpec{
		Config: specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: x86,
			Syscalls: []specs.LinuxSyscall{{Names: []string{"getuid32"}, Action: specs.ActErrno, ErrnoRet: errnoRet(77)}}},
		Exec: []string{prog},
	})
	if !r.status.Exited() || r.status.ExitStatus() != 77 {
		t.Errorf("i386 getuid32 with ERRNO(77): child %v, want exit 77:\n%s", r.status, r.out)
	}

	r = runChild(t, childSpec{
		Config: specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: x86,
			// getuid is blocked on x86_64 only: i386 getuid32 is another syscall.
			Syscalls: []specs.LinuxSyscall{{Names: []string{"getuid"}, Action: specs.ActErrno, ErrnoRet: errnoRet(66)}}},
		Exec: []string{prog},
	})
	wantExit0(t, r)

	r = runChild(t, childSpec{
		Config: specs.LinuxSeccomp{DefaultAction: specs.ActAllow},
		Exec:   []string{prog},
	})
	wantSIGSYS(t, r)
}

// writeI386 writes a static i386 ELF program that makes syscall nr with
// int $0x80 and exits with the negated result (the errno, for a failure).
func writeI386(t *testing.T, dir string, nr uint32) string {
	const base = 0x08048000
	const hdr = 52 + 32              // ELF header + one program header
	code := []byte{0xb8, 0, 0, 0, 0, // mov $nr, %eax
		0x31, 0xdb, // xor %ebx, %ebx
		0xcd, 0x80, // int $0x80
		0xf7, 0xd8, // neg %eax
		0x89, 0xc3, // mov %eax, %ebx
		0xb8, 1, 0, 0, 0, // mov $1 (exit), %eax
		0xcd, 0x80} // int $0x80
	binary.LittleEndian.PutUint32(code[1:], nr)
	size := uint32(hdr + len(code))
	var b bytes.Buffer
	h := elf.Header32{Type: uint16(elf.ET_EXEC), Machine: uint16(elf.EM_386), Version: 1,
		Entry: base + hdr, Phoff: 52, Ehsize: 52, Phentsize: 32, Phnum: 1}
	copy(h.Ident[:], elf.ELFMAG)
	h.Ident[elf.EI_CLASS], h.Ident[elf.EI_DATA], h.Ident[elf.EI_VERSION] = byte(elf.ELFCLASS32), byte(elf.ELFDATA2LSB), 1
	ph := elf.Prog32{Type: uint32(elf.PT_LOAD), Vaddr: base, Paddr: base, Filesz: size, Memsz: size,
		Flags: uint32(elf.PF_R | elf.PF_X), Align: 0x1000}
	binary.Write(&b, binary.LittleEndian, h)
	binary.Write(&b, binary.LittleEndian, ph)
	b.Write(code)
	p := filepath.Join(dir, "i386-syscall")
	if err := os.WriteFile(p, b.Bytes(), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}
