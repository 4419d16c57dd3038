package seccomp

import (
	"encoding/binary"
	"fmt"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// --- a classic-BPF interpreter for seccomp programs ---

// call is the seccomp_data the kernel hands a filter.
type call struct {
	nr   uint32
	arch uint32
	args [6]uint64
}

func x86_64Call(nr uint32, args ...uint64) call {
	c := call{nr: nr, arch: unix.AUDIT_ARCH_X86_64}
	copy(c.args[:], args)
	return c
}

func i386Call(nr uint32, args ...uint64) call {
	c := call{nr: nr, arch: unix.AUDIT_ARCH_I386}
	copy(c.args[:], args)
	return c
}

// verify checks prog as the kernel's loader would: known opcodes only,
// aligned loads inside seccomp_data, jumps inside the program, ends in ret.
func verify(t testing.TB, prog []unix.SockFilter) {
	t.Helper()
	if len(prog) == 0 || len(prog) > unix.BPF_MAXINSNS {
		t.Fatalf("program length %d", len(prog))
	}
	if prog[len(prog)-1].Code != unix.BPF_RET|unix.BPF_K {
		t.Fatalf("last instruction is not ret")
	}
	for pc, in := range prog {
		end := func(off int) {
			if pc+1+off >= len(prog) {
				t.Fatalf("%d: jump to %d beyond the end (%d)", pc, pc+1+off, len(prog))
			}
		}
		switch in.Code {
		case unix.BPF_LD | unix.BPF_W | unix.BPF_ABS:
			if in.K%4 != 0 || in.K >= 64 {
				t.Fatalf("%d: load at offset %d", pc, in.K)
			}
		case unix.BPF_ALU | unix.BPF_AND | unix.BPF_K, unix.BPF_RET | unix.BPF_K:
		case unix.BPF_JMP | unix.BPF_JA:
			end(int(in.K))
		case unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, unix.BPF_JMP | unix.BPF_JGT | unix.BPF_K, unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K:
			end(int(in.Jt))
			end(int(in.Jf))
		default:
			t.Fatalf("%d: unexpected opcode %#x", pc, in.Code)
		}
	}
}

// run executes prog on c and returns the SECCOMP_RET_* value.
func run(t testing.TB, prog []unix.SockFilter, c call) uint32 {
	t.Helper()
	var data [64]byte
	binary.LittleEndian.PutUint32(data[0:], c.nr)
	binary.LittleEndian.PutUint32(data[4:], c.arch)
	for i, a := range c.args {
		binary.LittleEndian.PutUint64(data[16+8*i:], a)
	}
	var acc uint32
	for pc := 0; pc < len(prog); pc++ {
		in := prog[pc]
		switch in.Code {
		case unix.BPF_LD | unix.BPF_W | unix.BPF_ABS:
			acc = binary.LittleEndian.Uint32(data[in.K:])
		case unix.BPF_ALU | unix.BPF_AND | unix.BPF_K:
			acc &= in.K
		case unix.BPF_JMP | unix.BPF_JA:
			pc += int(in.K)
		case unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K:
			pc += branch(acc == in.K, in)
		case unix.BPF_JMP | unix.BPF_JGT | unix.BPF_K:
			pc += branch(acc > in.K, in)
		case unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K:
			pc += branch(acc >= in.K, in)
		case unix.BPF_RET | unix.BPF_K:
			return in.K
		default:
			t.Fatalf("%d: unexpected opcode %#x", pc, in.Code)
		}
	}
	t.Fatalf("ran off the end of the program")
	return 0
}

func branch(cond bool, in unix.SockFilter) int {
	if cond {
		return int(in.Jt)
	}
	return int(in.Jf)
}

// compile builds cfg and checks the result with verify.
func compile(t testing.TB, cfg *specs.LinuxSeccomp) []unix.SockFilter {
	t.Helper()
	f, err := Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	verify(t, f.prog)
	return f.prog
}

func errnoRet(n uint) *uint { return &n }

func errnoAct(n uint32) uint32 { return unix.SECCOMP_RET_ERRNO | n }

const allow = unix.SECCOMP_RET_ALLOW

var (
	nrPersonality = mustNr(syscallsX86_64, "personality")
	nrGetpid      = mustNr(syscallsX86_64, "getpid")
	nrGetcwd      = mustNr(syscallsX86_64, "getcwd")
	nrMkdir       = mustNr(syscallsX86_64, "mkdir")
)

// --- tests ---

// Every operator, on 64-bit (x86_64) and 32-bit (i386) arguments, against
// Go's own comparison, on values that differ in only one of the two words.
func TestArgCompare(t *testing.T) {
	values := []uint64{0, 1, 2, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff,
		0x100000000, 0x100000001, 0x1ffffffff, 0x200000000, 0xffffffff00000000,
		0xffffffff00000001, 0xfffffffffffffffe, 0xffffffffffffffff}
	ops := []specs.LinuxSeccompOperator{specs.OpEqualTo, specs.OpNotEqual, specs.OpLessThan,
		specs.OpLessEqual, specs.OpGreaterThan, specs.OpGreaterEqual, specs.OpMaskedEqual}
	want := func(op specs.LinuxSeccompOperator, arg, v, v2 uint64) bool {
		switch op {
		case specs.OpEqualTo:
			return arg == v
		case specs.OpNotEqual:
			return arg != v
		case specs.OpLessThan:
			return arg < v
		case specs.OpLessEqual:
			return arg <= v
		case specs.OpGreaterThan:
			return arg > v
		case specs.OpGreaterEqual:
			return arg >= v
		case specs.OpMaskedEqual:
			return arg&v == v2
		}
		panic(op)
	}
	for _, op := range ops {
		for _, v := range values {
			for _, v2 := range []uint64{0, 1, 0x100000000, v} {
				if op != specs.OpMaskedEqual && v2 != 0 {
					continue
				}
				cfg := &specs.LinuxSeccomp{
					DefaultAction: specs.ActAllow,
					Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86},
					Syscalls: []specs.LinuxSyscall{{
						Names: []string{"personality"}, Action: specs.ActErrno, ErrnoRet: errnoRet(7),
						Args: []specs.LinuxSeccompArg{{Index: 2, Op: op, Value: v, ValueTwo: v2}},
					}},
				}
				prog := compile(t, cfg)
				for _, arg := range values {
					exp := uint32(allow)
					if want(op, arg, v, v2) {
						exp = errnoAct(7)
					}
					if got := run(t, prog, x86_64Call(nrPersonality, 0, 0, arg)); got != exp {
						t.Errorf("x86_64 %s value %#x/%#x arg %#x: got %s, want %s", op, v, v2, arg, retName(got), retName(exp))
					}
					// i386: only the low words count.
					exp = allow
					if want(op, uint64(uint32(arg)), uint64(uint32(v)), uint64(uint32(v2))) {
						exp = errnoAct(7)
					}
					if got := run(t, prog, i386Call(mustNr(syscallsI386, "personality"), 0, 0, arg)); got != exp {
						t.Errorf("i386 %s value %#x/%#x arg %#x: got %s, want %s", op, v, v2, arg, retName(got), retName(exp))
					}
				}
			}
		}
	}
}

// Args of one rule are ANDed, rules for one syscall are ORed (first match
// wins), unmatched calls get the default action.
func TestRulesAndOr(t *testing.T) {
	cfg := &specs.LinuxSeccomp{
		DefaultAction:   specs.ActErrno,
		DefaultErrnoRet: errnoRet(99),
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"personality"}, Action: specs.ActErrno, ErrnoRet: errnoRet(10), Args: []specs.LinuxSeccompArg{
				{Index: 0, Op: specs.OpEqualTo, Value: 1}, {Index: 1, Op: specs.OpEqualTo, Value: 2}}},
			{Names: []string{"personality"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{
				{Index: 0, Op: specs.OpEqualTo, Value: 5}}},
			{Names: []string{"getpid", "mkdir"}, Action: specs.ActAllow},
		},
	}
	prog := compile(t, cfg)
	for _, tc := range []struct {
		c    call
		want uint32
	}{
		{x86_64Call(nrPersonality, 1, 2), errnoAct(10)},
		{x86_64Call(nrPersonality, 1, 3), errnoAct(99)},
		{x86_64Call(nrPersonality, 0, 2), errnoAct(99)},
		{x86_64Call(nrPersonality, 5, 7), allow},
		{x86_64Call(nrGetpid), allow},
		{x86_64Call(nrMkdir), allow},
		{x86_64Call(nrGetcwd), errnoAct(99)},
	} {
		if got := run(t, prog, tc.c); got != tc.want {
			t.Errorf("nr %d args %v: got %s, want %s", tc.c.nr, tc.c.args[:2], retName(got), retName(tc.want))
		}
	}
}

// runc turns conditions on the same argument into separate (ORed) rules.
func TestSameArgConditionsAreORed(t *testing.T) {
	cfg := &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls: []specs.LinuxSyscall{{Names: []string{"personality"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{
			{Index: 0, Op: specs.OpEqualTo, Value: 1}, {Index: 0, Op: specs.OpEqualTo, Value: 2}}}},
	}
	prog := compile(t, cfg)
	for arg, want := range map[uint64]uint32{0: allow, 1: errnoAct(1), 2: errnoAct(1), 3: allow} {
		if got := run(t, prog, x86_64Call(nrPersonality, arg)); got != want {
			t.Errorf("arg %d: got %s, want %s", arg, retName(got), retName(want))
		}
	}
}

// As in libseccomp: an unconditional rule overrides a syscall's conditional
// rules, whichever comes first; the first unconditional rule stays.
func TestUnconditionalRuleWins(t *testing.T) {
	cond := specs.LinuxSyscall{Names: []string{"personality"}, Action: specs.ActErrno, ErrnoRet: errnoRet(3),
		Args: []specs.LinuxSeccompArg{{Index: 0, Op: specs.OpEqualTo, Value: 1}}}
	uncond := specs.LinuxSyscall{Names: []string{"personality"}, Action: specs.ActErrno, ErrnoRet: errnoRet(4)}
	uncond2 := specs.LinuxSyscall{Names: []string{"personality"}, Action: specs.ActErrno, ErrnoRet: errnoRet(5)}
	for _, order := range [][]specs.LinuxSyscall{{cond, uncond, uncond2}, {uncond, cond, uncond2}} {
		prog := compile(t, &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: order})
		for _, arg := range []uint64{0, 1} {
			if got := run(t, prog, x86_64Call(nrPersonality, arg)); got != errnoAct(4) {
				t.Errorf("arg %d: got %s, want ERRNO(4)", arg, retName(got))
			}
		}
	}
}

// Rules with the default action are dropped (runc), so they cannot
// override conditional rules.
func TestDefaultActionRulesSkipped(t *testing.T) {
	cfg := &specs.LinuxSeccomp{
		DefaultAction: specs.ActErrno,
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"personality"}, Action: specs.ActErrno},
			{Names: []string{"personality"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Op: specs.OpEqualTo, Value: 0xffffffff}}},
		},
	}
	prog := compile(t, cfg)
	if got := run(t, prog, x86_64Call(nrPersonality, 0xffffffff)); got != allow {
		t.Errorf("personality(0xffffffff): got %s, want ALLOW", retName(got))
	}
	if got := run(t, prog, x86_64Call(nrPersonality, 8)); got != errnoAct(1) {
		t.Errorf("personality(8): got %s, want ERRNO(1)", retName(got))
	}
}

func TestActions(t *testing.T) {
	for _, tc := range []struct {
		act   specs.LinuxSeccompAction
		errno *uint
		want  uint32
	}{
		{specs.ActKill, nil, unix.SECCOMP_RET_KILL_THREAD},
		{specs.ActKillThread, nil, unix.SECCOMP_RET_KILL_THREAD},
		{specs.ActKillProcess, nil, unix.SECCOMP_RET_KILL_PROCESS},
		{specs.ActTrap, nil, unix.SECCOMP_RET_TRAP},
		{specs.ActErrno, nil, unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM)},
		{specs.ActErrno, errnoRet(uint(unix.ENOSYS)), unix.SECCOMP_RET_ERRNO | uint32(unix.ENOSYS)},
		{specs.ActTrace, nil, unix.SECCOMP_RET_TRACE | uint32(unix.EPERM)},
		{specs.ActTrace, errnoRet(1234), unix.SECCOMP_RET_TRACE | 1234},
		{specs.ActAllow, nil, unix.SECCOMP_RET_ALLOW},
		{specs.ActLog, nil, unix.SECCOMP_RET_LOG},
	} {
		// As the default action, and as a rule's action.
		prog := compile(t, &specs.LinuxSeccomp{DefaultAction: tc.act, DefaultErrnoRet: tc.errno})
		if got := run(t, prog, x86_64Call(nrGetpid)); got != tc.want {
			t.Errorf("default %s: got %#x, want %#x", tc.act, got, tc.want)
		}
		prog = compile(t, &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, DefaultErrnoRet: errnoRet(77),
			Syscalls: []specs.LinuxSyscall{{Names: []string{"getpid"}, Action: tc.act, ErrnoRet: tc.errno}}})
		if got := run(t, prog, x86_64Call(nrGetpid)); got != tc.want {
			t.Errorf("rule %s: got %#x, want %#x", tc.act, got, tc.want)
		}
	}
}

// The arch check: unknown arches and ABIs not listed get KILL_PROCESS; x32
// numbers never reach x86_64 rules; nr -1 (a tracer skipping the call) gets
// the default action.
func TestArchitectures(t *testing.T) {
	rules := []specs.LinuxSyscall{
		{Names: []string{"getpid"}, Action: specs.ActErrno, ErrnoRet: errnoRet(55)},
		{Names: []string{"socketcall"}, Action: specs.ActErrno, ErrnoRet: errnoRet(56)}, // i386 only
	}
	kill := uint32(unix.SECCOMP_RET_KILL_PROCESS)
	x32 := func(nr uint32) call { return x86_64Call(nr) }

	only64 := compile(t, &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: rules})
	all := compile(t, &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: rules,
		Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32, specs.ArchAARCH64}})

	for _, tc := range []struct {
		name      string
		c         call
		only, all uint32
	}{
		{"x86_64 getpid", x86_64Call(nrGetpid), errnoAct(55), errnoAct(55)},
		{"x86_64 getcwd", x86_64Call(nrGetcwd), allow, allow},
		{"x86_64 nr -1", x86_64Call(0xffffffff), allow, allow},
		{"i386 getpid", i386Call(mustNr(syscallsI386, "getpid")), kill, errnoAct(55)},
		{"i386 socketcall", i386Call(mustNr(syscallsI386, "socketcall")), kill, errnoAct(56)},
		{"i386 getcwd", i386Call(mustNr(syscallsI386, "getcwd")), kill, allow},
		{"x32 getpid", x32(mustNr(syscallsX32, "getpid")), kill, errnoAct(55)},
		{"x32 getcwd", x32(mustNr(syscallsX32, "getcwd")), kill, allow},
		{"x32 bit with x86_64 number", x32(x32SyscallBit | nrGetpid), kill, errnoAct(55)},
		{"aarch64", call{nr: nrGetpid, arch: unix.AUDIT_ARCH_AARCH64}, kill, kill},
		{"arm", call{nr: nrGetpid, arch: unix.AUDIT_ARCH_ARM}, kill, kill},
	} {
		if got := run(t, only64, tc.c); got != tc.only {
			t.Errorf("x86_64-only filter, %s: got %s, want %s", tc.name, retName(got), retName(tc.only))
		}
		if got := run(t, all, tc.c); got != tc.all {
			t.Errorf("x86 filter, %s: got %s, want %s", tc.name, retName(got), retName(tc.all))
		}
	}
}

// A syscall whose rules are longer than a conditional jump can skip, and an
// action group longer than 255 syscalls.
func TestLongPrograms(t *testing.T) {
	var rules []specs.LinuxSyscall
	for i := range 100 {
		rules = append(rules, specs.LinuxSyscall{Names: []string{"personality"}, Action: specs.ActErrno, ErrnoRet: errnoRet(uint(i + 1)),
			Args: []specs.LinuxSeccompArg{{Index: 0, Op: specs.OpEqualTo, Value: uint64(i) << 32}, {Index: 1, Op: specs.OpGreaterEqual, Value: uint64(i)}}})
	}
	var names []string
	for _, e := range syscallsX86_64 {
		if e.name != "personality" && e.name != "getcwd" {
			names = append(names, e.name)
		}
	}
	rules = append(rules, specs.LinuxSyscall{Names: names, Action: specs.ActAllow})
	rules = append(rules, specs.LinuxSyscall{Names: []string{"getcwd"}, Action: specs.ActErrno, ErrnoRet: errnoRet(200),
		Args: []specs.LinuxSeccompArg{{Index: 0, Op: specs.OpNotEqual, Value: 0}}})
	f, err := Compile(&specs.LinuxSeccomp{DefaultAction: specs.ActKillProcess, Syscalls: rules})
	if err != nil {
		t.Fatal(err)
	}
	verify(t, f.prog)
	if !strings.Contains(f.String(), "ja ") {
		t.Errorf("expected a long (ja) jump over the personality block:\n%s", f)
	}
	for i := range 100 {
		if got := run(t, f.prog, x86_64Call(nrPersonality, uint64(i)<<32, uint64(i))); got != errnoAct(uint32(i+1)) {
			t.Errorf("personality rule %d: got %s", i, retName(got))
		}
		if got := run(t, f.prog, x86_64Call(nrPersonality, uint64(i)<<32, 0xffffffff00000000)); got != errnoAct(uint32(i+1)) {
			t.Errorf("personality rule %d, big arg1: got %s", i, retName(got))
		}
		if got := run(t, f.prog, x86_64Call(nrPersonality, uint64(i)<<32|1, uint64(i))); got != unix.SECCOMP_RET_KILL_PROCESS {
			t.Errorf("personality rule %d, low word differs: got %s", i, retName(got))
		}
	}
	for _, name := range names {
		if got := run(t, f.prog, x86_64Call(mustNr(syscallsX86_64, name))); got != allow {
			t.Errorf("%s: got %s, want ALLOW", name, retName(got))
		}
	}
	if got := run(t, f.prog, x86_64Call(nrGetcwd, 1)); got != errnoAct(200) {
		t.Errorf("getcwd(1): got %s", retName(got))
	}
	if got := run(t, f.prog, x86_64Call(nrGetcwd, 0)); got != unix.SECCOMP_RET_KILL_PROCESS {
		t.Errorf("getcwd(0): got %s", retName(got))
	}
	if got := run(t, f.prog, x86_64Call(1000)); got != unix.SECCOMP_RET_KILL_PROCESS {
		t.Errorf("syscall 1000: got %s", retName(got))
	}
}

// dockerLike is a profile shaped like Docker's default: default ERRNO, an
// allow list of a few hundred syscalls on x86_64, i386 and x32 (including
// names this kernel does not know), personality allowed for three values
// only, clone3 answered with ENOSYS.
func dockerLike() *specs.LinuxSeccomp {
	deny := map[string]bool{}
	for _, n := range strings.Fields(`acct add_key bpf clock_adjtime clock_settime clone3 create_module
		delete_module finit_module get_kernel_syms get_mempolicy init_module ioperm iopl kcmp
		kexec_file_load kexec_load keyctl lookup_dcookie mbind mount move_pages name_to_handle_at
		nfsservctl open_by_handle_at perf_event_open personality pivot_root process_vm_readv
		process_vm_writev ptrace query_module quotactl reboot request_key set_mempolicy setns
		settimeofday stime swapoff swapon _sysctl sysfs umount umount2 unshare uselib userfaultfd
		ustat vm86 vm86old fsconfig fsmount fsopen fspick move_mount open_tree mount_setattr`) {
		deny[n] = true
	}
	seen := map[string]bool{}
	names := []string{"arm_fadvise64_64", "s390_pci_mmio_read", "riscv_flush_icache", "no_such_syscall"}
	for _, table := range []sysTable{syscallsX86_64, syscallsI386, syscallsX32} {
		for _, e := range table {
			if n := e.name; !deny[n] && !seen[n] {
				seen[n] = true
				names = append(names, n)
			}
		}
	}
	per := func(v uint64) specs.LinuxSyscall {
		return specs.LinuxSyscall{Names: []string{"personality"}, Action: specs.ActAllow,
			Args: []specs.LinuxSeccompArg{{Index: 0, Op: specs.OpEqualTo, Value: v}}}
	}
	return &specs.LinuxSeccomp{
		DefaultAction:   specs.ActErrno,
		DefaultErrnoRet: errnoRet(uint(unix.EPERM)),
		Architectures:   []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32},
		Syscalls: []specs.LinuxSyscall{
			{Names: names, Action: specs.ActAllow},
			per(0), per(8), per(0x20000), per(0x20008), per(0xffffffff),
			{Names: []string{"clone3"}, Action: specs.ActErrno, ErrnoRet: errnoRet(uint(unix.ENOSYS))},
		},
	}
}

func TestDockerLikeProfile(t *testing.T) {
	cfg := dockerLike()
	if n := len(cfg.Syscalls[0].Names); n < 300 {
		t.Fatalf("only %d names", n)
	}
	f, err := Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	verify(t, f.prog)
	t.Logf("%d names, %d instructions", len(cfg.Syscalls[0].Names), len(f.prog))
	for _, tc := range []struct {
		c    call
		want uint32
	}{
		{x86_64Call(mustNr(syscallsX86_64, "read")), allow},
		{x86_64Call(mustNr(syscallsX86_64, "listns")), allow},
		{x86_64Call(mustNr(syscallsX86_64, "mount")), errnoAct(uint32(unix.EPERM))},
		{x86_64Call(mustNr(syscallsX86_64, "clone3")), errnoAct(uint32(unix.ENOSYS))},
		{x86_64Call(nrPersonality, 0xffffffff), allow},
		{x86_64Call(nrPersonality, 0x0040000), errnoAct(uint32(unix.EPERM))},
		{x86_64Call(nrPersonality, 0x1_00000008), errnoAct(uint32(unix.EPERM))},
		{i386Call(mustNr(syscallsI386, "socketcall")), allow},
		{i386Call(mustNr(syscallsI386, "mount")), errnoAct(uint32(unix.EPERM))},
		{i386Call(mustNr(syscallsI386, "personality"), 0x1_00000008), allow}, // 32-bit: only the low word
		{x86_64Call(mustNr(syscallsX32, "read")), allow},
		{x86_64Call(mustNr(syscallsX32, "mount")), errnoAct(uint32(unix.EPERM))},
		{x86_64Call(600), errnoAct(uint32(unix.EPERM))},
	} {
		if got := run(t, f.prog, tc.c); got != tc.want {
			t.Errorf("arch %#x nr %#x args %#x: got %s, want %s", tc.c.arch, tc.c.nr, tc.c.args[0], retName(got), retName(tc.want))
		}
	}
}

func TestUnknownNamesSkipped(t *testing.T) {
	prog := compile(t, &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
		{Names: []string{"no_such_syscall", "socketcall", "getpid"}, Action: specs.ActErrno}}})
	if got := run(t, prog, x86_64Call(nrGetpid)); got != errnoAct(1) {
		t.Errorf("getpid: got %s", retName(got))
	}
}

func TestCompileErrors(t *testing.T) {
	one := func(sc specs.LinuxSyscall) *specs.LinuxSeccomp {
		return &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{sc}}
	}
	for _, tc := range []struct {
		cfg  *specs.LinuxSeccomp
		want string
	}{
		{nil, "no config"},
		{&specs.LinuxSeccomp{}, "defaultAction: no action"},
		{&specs.LinuxSeccomp{DefaultAction: "SCMP_ACT_FOO"}, `defaultAction: unknown action "SCMP_ACT_FOO"`},
		{&specs.LinuxSeccomp{DefaultAction: specs.ActNotify}, "defaultAction: SCMP_ACT_NOTIFY is not supported"},
		{&specs.LinuxSeccomp{DefaultAction: specs.ActAllow, DefaultErrnoRet: errnoRet(1)}, "errnoRet is only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not SCMP_ACT_ALLOW"},
		{&specs.LinuxSeccomp{DefaultAction: specs.ActErrno, DefaultErrnoRet: errnoRet(70000)}, "errnoRet 70000 does not fit"},
		{&specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{"SCMP_ARCH_VAX"}}, `architectures[0]: unknown architecture "SCMP_ARCH_VAX"`},
		{&specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Flags: []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_FOO"}}, `flags[0]: unknown flag "SECCOMP_FILTER_FLAG_FOO"`},
		{&specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Flags: []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagWaitKillableRecv}}, "user-notification listener"},
		{one(specs.LinuxSyscall{Names: []string{"mkdir"}, Action: "SCMP_ACT_BOGUS"}), `syscalls[0] ["mkdir"]: unknown action "SCMP_ACT_BOGUS"`},
		{one(specs.LinuxSyscall{Names: []string{"mkdir"}, Action: specs.ActNotify}), `syscalls[0] ["mkdir"]: SCMP_ACT_NOTIFY is not supported`},
		{one(specs.LinuxSyscall{Names: []string{"mkdir"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 0, Op: "SCMP_CMP_SORTA"}}}), `syscalls[0] ["mkdir"]: args[0]: unknown operator "SCMP_CMP_SORTA"`},
		{one(specs.LinuxSyscall{Names: []string{"mkdir"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 6, Op: specs.OpEqualTo}}}), "args[0]: index 6"},
		{one(specs.LinuxSyscall{Action: specs.ActErrno}), "no syscall names"},
		{one(specs.LinuxSyscall{Names: []string{""}, Action: specs.ActErrno}), "empty syscall name"},
		{one(specs.LinuxSyscall{Names: []string{"mkdir"}, Action: specs.ActAllow, ErrnoRet: errnoRet(3)}), "errnoRet is only valid"},
	} {
		_, err := Compile(tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Compile: got error %v, want one containing %q", err, tc.want)
		}
	}
}

func TestFlags(t *testing.T) {
	f, err := Compile(&specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Flags: []specs.LinuxSeccompFlag{
		"SECCOMP_FILTER_FLAG_TSYNC", specs.LinuxSeccompFlagLog, specs.LinuxSeccompFlagSpecAllow}})
	if err != nil {
		t.Fatal(err)
	}
	want := uintptr(unix.SECCOMP_FILTER_FLAG_TSYNC | unix.SECCOMP_FILTER_FLAG_LOG | unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW)
	if f.flags != want {
		t.Errorf("flags %#x, want %#x", f.flags, want)
	}
}

func TestString(t *testing.T) {
	f, err := Compile(&specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{
		{Names: []string{"getpid"}, Action: specs.ActAllow},
		{Names: []string{"personality"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{
			{Index: 0, Op: specs.OpMaskedEqual, Value: 0xff, ValueTwo: 8}, {Index: 1, Op: specs.OpEqualTo, Value: 1 << 32}}}}})
	if err != nil {
		t.Fatal(err)
	}
	s := f.String()
	for _, want := range []string{"ld  [4]\t\t; arch", fmt.Sprintf("jeq #%#x", unix.AUDIT_ARCH_X86_64), "ret KILL_PROCESS",
		"; nr", "args[1] high word", "and #0xff", "ret ALLOW", "ret ERRNO(1)"} {
		if !strings.Contains(s, want) {
			t.Errorf("disassembly lacks %q:\n%s", want, s)
		}
	}
	t.Logf("\n%s", s)
}

// mustNr is a syscall's number in table t; the test cannot go on without it.
func mustNr(t sysTable, name string) uint32 {
	nr, ok := t.lookup(name)
	if !ok {
		panic("no syscall " + name)
	}
	return nr
}
