package seccomp

import (
	"errors"
	"fmt"
	"slices"
	"sort"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// x32SyscallBit marks x32 syscalls: an x32 process enters the kernel like an
// x86_64 one (AUDIT_ARCH_X86_64) but with this bit set in the number.
const x32SyscallBit = 0x40000000

// badArchAction is returned for a syscall of an ABI the filter was not
// built for. libseccomp defaults to KILL_THREAD; we kill the whole process,
// because a multithreaded program that lost one thread is left in an
// undefined state.
const badArchAction = unix.SECCOMP_RET_KILL_PROCESS

// abi is one syscall ABI the filter can have a section for.
type abi struct {
	name  specs.Arch
	audit uint32   // seccomp_data.arch for this ABI
	table sysTable // syscall name -> seccomp_data.nr
	wide  bool     // args are 64-bit: compare both halves
}

// The three ABIs an x86_64 kernel runs. As in libseccomp, i386 and x32 args
// are compared as 32-bit values (their low words).
var (
	abiX86_64 = &abi{specs.ArchX86_64, unix.AUDIT_ARCH_X86_64, syscallsX86_64, true}
	abiI386   = &abi{specs.ArchX86, unix.AUDIT_ARCH_I386, syscallsI386, false}
	abiX32    = &abi{specs.ArchX32, unix.AUDIT_ARCH_X86_64, syscallsX32, false}
)

// foreignArches are valid OCI architectures that an x86_64 kernel never
// reports; listing them changes nothing, their syscalls (if any ever came)
// would get badArchAction like any arch missing from the filter.
var foreignArches = []specs.Arch{
	specs.ArchARM, specs.ArchAARCH64,
	specs.ArchMIPS, specs.ArchMIPS64, specs.ArchMIPS64N32,
	specs.ArchMIPSEL, specs.ArchMIPSEL64, specs.ArchMIPSEL64N32,
	specs.ArchPPC, specs.ArchPPC64, specs.ArchPPC64LE,
	specs.ArchS390, specs.ArchS390X,
	specs.ArchPARISC, specs.ArchPARISC64,
	specs.ArchRISCV64, specs.ArchLOONGARCH64,
	specs.ArchM68K, specs.ArchSH, specs.ArchSHEB,
}

// filterFlags are the cfg.Flags we pass to seccomp(2).
var filterFlags = []struct {
	name specs.LinuxSeccompFlag
	bit  uintptr
}{
	{"SECCOMP_FILTER_FLAG_TSYNC", unix.SECCOMP_FILTER_FLAG_TSYNC},
	{specs.LinuxSeccompFlagLog, unix.SECCOMP_FILTER_FLAG_LOG},
	{specs.LinuxSeccompFlagSpecAllow, unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW},
}

// policy is a checked config: what the program generator works from.
type policy struct {
	def   uint32 // SECCOMP_RET_* value of defaultAction
	abis  []*abi // x86_64 first
	flags uintptr
	rules []rule // in config order
}

// rule is one syscalls[] entry: its action applies to its names when all
// conds hold (no conds: always).
type rule struct {
	names  []string
	action uint32
	conds  []cond
}

// cond is one args[] entry.
type cond struct {
	index  uint // argument 0-5
	op     specs.LinuxSeccompOperator
	value  uint64 // compared value; the mask for MASKED_EQ
	value2 uint64 // the expected value for MASKED_EQ
}

// parse checks every field of cfg and returns the policy.
func parse(cfg *specs.LinuxSeccomp) (*policy, error) {
	def, err := action(cfg.DefaultAction, cfg.DefaultErrnoRet)
	if err != nil {
		return nil, fmt.Errorf("defaultAction: %w", err)
	}
	p := &policy{def: def, abis: []*abi{abiX86_64}}

	// The native ABI is always filtered (as libseccomp's seccomp_init does);
	// architectures adds others.
	for i, a := range cfg.Architectures {
		var add *abi
		switch {
		case a == specs.ArchX86_64:
		case a == specs.ArchX86:
			add = abiI386
		case a == specs.ArchX32:
			add = abiX32
		case slices.Contains(foreignArches, a):
		default:
			return nil, fmt.Errorf("architectures[%d]: unknown architecture %q", i, a)
		}
		if add != nil && p.index(add) < 0 {
			p.abis = append(p.abis, add)
		}
	}

	for i, fl := range cfg.Flags {
		bit, err := flag(fl)
		if err != nil {
			return nil, fmt.Errorf("flags[%d]: %w", i, err)
		}
		p.flags |= bit
	}

	for i, sc := range cfg.Syscalls {
		r, err := parseRule(sc)
		if err != nil {
			return nil, fmt.Errorf("syscalls[%d] %q: %w", i, sc.Names, err)
		}
		// As runc does: a rule with the default action changes nothing
		// (and libseccomp refuses it).
		if r.action == p.def {
			continue
		}
		p.rules = append(p.rules, splitSameArg(r)...)
	}
	return p, nil
}

// parseRule checks one syscalls[] entry.
func parseRule(sc specs.LinuxSyscall) (rule, error) {
	if len(sc.Names) == 0 {
		return rule{}, errors.New("no syscall names")
	}
	for _, n := range sc.Names {
		if n == "" {
			return rule{}, errors.New("empty syscall name")
		}
	}
	act, err := action(sc.Action, sc.ErrnoRet)
	if err != nil {
		return rule{}, err
	}
	r := rule{names: sc.Names, action: act}
	for j, a := range sc.Args {
		if a.Index > 5 {
			return rule{}, fmt.Errorf("args[%d]: index %d: syscalls have arguments 0 to 5", j, a.Index)
		}
		switch a.Op {
		case specs.OpNotEqual, specs.OpLessThan, specs.OpLessEqual, specs.OpEqualTo,
			specs.OpGreaterEqual, specs.OpGreaterThan, specs.OpMaskedEqual:
		default:
			return rule{}, fmt.Errorf("args[%d]: unknown operator %q", j, a.Op)
		}
		r.conds = append(r.conds, cond{index: a.Index, op: a.Op, value: a.Value, value2: a.ValueTwo})
	}
	return r, nil
}

// splitSameArg copies runc: when two conditions of one rule test the same
// argument, each condition becomes a rule of its own (they are ORed instead
// of ANDed). Otherwise the rule is returned as it is.
func splitSameArg(r rule) []rule {
	seen := map[uint]bool{}
	dup := false
	for _, c := range r.conds {
		dup = dup || seen[c.index]
		seen[c.index] = true
	}
	if !dup {
		return []rule{r}
	}
	out := make([]rule, len(r.conds))
	for i, c := range r.conds {
		out[i] = rule{names: r.names, action: r.action, conds: []cond{c}}
	}
	return out
}

// action turns an OCI action and its errnoRet into a SECCOMP_RET_* value.
func action(a specs.LinuxSeccompAction, errnoRet *uint) (uint32, error) {
	var ret uint32
	switch a {
	case specs.ActKill, specs.ActKillThread:
		ret = unix.SECCOMP_RET_KILL_THREAD
	case specs.ActKillProcess:
		ret = unix.SECCOMP_RET_KILL_PROCESS
	case specs.ActTrap:
		ret = unix.SECCOMP_RET_TRAP
	case specs.ActErrno:
		ret = unix.SECCOMP_RET_ERRNO
	case specs.ActTrace:
		ret = unix.SECCOMP_RET_TRACE
	case specs.ActAllow:
		ret = unix.SECCOMP_RET_ALLOW
	case specs.ActLog:
		ret = unix.SECCOMP_RET_LOG
	case specs.ActNotify:
		return 0, errors.New("SCMP_ACT_NOTIFY is not supported: it needs a user-notification listener (listenerPath), which minidock does not implement")
	case "":
		return 0, errors.New("no action")
	default:
		return 0, fmt.Errorf("unknown action %q", a)
	}
	if a != specs.ActErrno && a != specs.ActTrace {
		if errnoRet != nil {
			return 0, fmt.Errorf("errnoRet is only valid with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not %s", a)
		}
		return ret, nil
	}
	// ERRNO and TRACE carry 16 bits of data (the kernel caps an errno at
	// 4095); both default to EPERM, as in runc.
	if errnoRet == nil {
		return ret | uint32(unix.EPERM), nil
	}
	if *errnoRet > unix.SECCOMP_RET_DATA {
		return 0, fmt.Errorf("%s: errnoRet %d does not fit in 16 bits", a, *errnoRet)
	}
	return ret | uint32(*errnoRet), nil
}

// flag turns one cfg.Flags entry into its SECCOMP_FILTER_FLAG_* bit.
func flag(fl specs.LinuxSeccompFlag) (uintptr, error) {
	for _, f := range filterFlags {
		if f.name == fl {
			return f.bit, nil
		}
	}
	if fl == specs.LinuxSeccompFlagWaitKillableRecv {
		return 0, fmt.Errorf("%s only applies to a user-notification listener, which minidock does not implement", fl)
	}
	return 0, fmt.Errorf("unknown flag %q", fl)
}

// sysTable is one ABI's syscalls, sorted by name (zsyscalls_x86.go).
type sysTable []struct {
	name string
	nr   uint32
}

// lookup returns the number of syscall name.
func (t sysTable) lookup(name string) (uint32, bool) {
	i := sort.Search(len(t), func(i int) bool { return t[i].name >= name })
	if i < len(t) && t[i].name == name {
		return t[i].nr, true
	}
	return 0, false
}
