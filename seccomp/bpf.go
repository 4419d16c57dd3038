package seccomp

import (
	"fmt"
	"sort"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Offsets into struct seccomp_data, the input of the program:
//
//	int   nr;                  //  0
//	__u32 arch;                //  4
//	__u64 instruction_pointer; //  8
//	__u64 args[6];             // 16, 24, ... 56
//
// x86 is little-endian: the low word of args[i] comes first.
const (
	offNr   = 0
	offArch = 4
	offArgs = 16
)

func argLo(i uint) uint32 { return offArgs + 8*uint32(i) }
func argHi(i uint) uint32 { return offArgs + 8*uint32(i) + 4 }

// maxShortJump is the farthest a conditional jump can go: jt and jf are
// 8-bit. Only BPF_JA has a 32-bit offset.
const maxShortJump = 255

// --- a tiny assembler with forward labels ---

// label names an instruction index that is set by place.
type label int

// next is the label of the following instruction (a jump offset of 0).
const next label = -1

type ref struct {
	at     int   // index of the jump instruction
	jt, jf label // targets; for BPF_JA, jt
}

type asm struct {
	insns  []unix.SockFilter
	labels []int // label -> instruction index, -1 until placed
	refs   []ref
}

func (a *asm) newLabel() label {
	a.labels = append(a.labels, -1)
	return label(len(a.labels) - 1)
}

func (a *asm) place(l label) { a.labels[l] = len(a.insns) }

func (a *asm) op(code uint16, k uint32) {
	a.insns = append(a.insns, unix.SockFilter{Code: code, K: k})
}

// load sets A to the 32-bit word at offset off of seccomp_data.
func (a *asm) load(off uint32) { a.op(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, off) }

// and sets A to A & k.
func (a *asm) and(k uint32) { a.op(unix.BPF_ALU|unix.BPF_AND|unix.BPF_K, k) }

// ret ends the program with a SECCOMP_RET_* value.
func (a *asm) ret(v uint32) { a.op(unix.BPF_RET|unix.BPF_K, v) }

// jump compares A with k (op is BPF_JEQ, BPF_JGT or BPF_JGE) and goes to jt
// if true, jf if false. Both targets must be at most 255 instructions on.
func (a *asm) jump(op uint16, k uint32, jt, jf label) {
	a.refs = append(a.refs, ref{at: len(a.insns), jt: jt, jf: jf})
	a.op(unix.BPF_JMP|op|unix.BPF_K, k)
}

// goTo jumps unconditionally, as far as needed.
func (a *asm) goTo(l label) {
	a.refs = append(a.refs, ref{at: len(a.insns), jt: l})
	a.op(unix.BPF_JMP|unix.BPF_JA, 0)
}

// code appends already linked instructions; their jumps are relative, so
// they stay valid.
func (a *asm) code(insns []unix.SockFilter) { a.insns = append(a.insns, insns...) }

// link fills in the jump offsets. Classic BPF only jumps forward.
func (a *asm) link() ([]unix.SockFilter, error) {
	offset := func(from int, l label) (int, error) {
		if l == next {
			return 0, nil
		}
		to := a.labels[l]
		if to < 0 {
			return 0, fmt.Errorf("instruction %d: jump to a label never placed", from)
		}
		if to <= from {
			return 0, fmt.Errorf("instruction %d: backward jump to %d", from, to)
		}
		return to - from - 1, nil
	}
	for _, r := range a.refs {
		in := &a.insns[r.at]
		jt, err := offset(r.at, r.jt)
		if err != nil {
			return nil, err
		}
		if in.Code == unix.BPF_JMP|unix.BPF_JA {
			in.K = uint32(jt)
			continue
		}
		jf, err := offset(r.at, r.jf)
		if err != nil {
			return nil, err
		}
		if jt > maxShortJump || jf > maxShortJump {
			return nil, fmt.Errorf("instruction %d: conditional jump of %d/%d exceeds %d", r.at, jt, jf, maxShortJump)
		}
		in.Jt, in.Jf = uint8(jt), uint8(jf)
	}
	return a.insns, nil
}

// --- the program ---

// program writes the whole filter:
//
//	arch dispatch:  load arch; one "jeq AUDIT_ARCH_x; ja section" pair per
//	                ABI; anything else -> badArchAction
//	x86_64 section: load nr; x32 bit set -> x32 section, or badArchAction
//	                (nr -1, a tracer skipping a call, goes on, as in libseccomp)
//	each section:   unconditional syscalls grouped by action, then one block
//	                per syscall with argument rules, then "ret default"
func (p *policy) program() ([]unix.SockFilter, error) {
	a := &asm{}
	sections := make([]label, len(p.abis))
	for i := range p.abis {
		sections[i] = a.newLabel()
	}
	a.load(offArch)
	for i, ab := range p.abis {
		if ab == abiX32 { // shares AUDIT_ARCH_X86_64; reached from the x86_64 section
			continue
		}
		other := a.newLabel()
		a.jump(unix.BPF_JEQ, ab.audit, next, other)
		a.goTo(sections[i])
		a.place(other)
	}
	a.ret(badArchAction)

	for i, ab := range p.abis {
		a.place(sections[i])
		a.load(offNr)
		if ab == abiX86_64 {
			body := a.newLabel()
			a.jump(unix.BPF_JGE, x32SyscallBit, next, body)
			if x := p.index(abiX32); x >= 0 {
				a.goTo(sections[x])
			} else {
				a.jump(unix.BPF_JEQ, 0xffffffff, body, next)
				a.ret(badArchAction)
			}
			a.place(body)
		}
		if err := p.section(a, ab); err != nil {
			return nil, fmt.Errorf("%s: %w", ab.name, err)
		}
	}
	return a.link()
}

// index is ab's position in p.abis, or -1.
func (p *policy) index(ab *abi) int {
	for i, x := range p.abis {
		if x == ab {
			return i
		}
	}
	return -1
}

// sysRules is what one syscall number gets in one ABI's section.
type sysRules struct {
	nr     uint32
	uncond *uint32 // action of an unconditional rule, if any
	rules  []rule  // rules with conditions, first match wins
}

// resolve looks the rules' names up in ab's table. Unknown names are skipped.
// As in libseccomp, an unconditional rule wins over conditional ones for the
// same syscall, and of two unconditional rules the first stays.
func (p *policy) resolve(ab *abi) []*sysRules {
	var order []*sysRules
	byNr := map[uint32]*sysRules{}
	for _, r := range p.rules {
		for _, name := range r.names {
			nr, ok := ab.table.lookup(name)
			if !ok {
				continue
			}
			s := byNr[nr]
			if s == nil {
				s = &sysRules{nr: nr}
				byNr[nr] = s
				order = append(order, s)
			}
			switch {
			case s.uncond != nil:
			case len(r.conds) == 0:
				act := r.action
				s.uncond, s.rules = &act, nil
			default:
				s.rules = append(s.rules, r)
			}
		}
	}
	return order
}

// groupSize bounds how many "jeq nr" share one "ret action": the first jeq
// jumps over the others to the ret, so it must stay within maxShortJump.
const groupSize = maxShortJump

// section writes one ABI's syscall checks; A holds seccomp_data.nr.
func (p *policy) section(a *asm, ab *abi) error {
	syscalls := p.resolve(ab)

	// Unconditional syscalls, grouped by action and sorted by number:
	//	jeq nr1, ret_l, next / jeq nr2, ret_l, next / ... / jeq nrN, ret_l, skip
	//	ret_l: ret action / skip:
	groups := map[uint32][]uint32{}
	var actions []uint32
	for _, s := range syscalls {
		if s.uncond == nil {
			continue
		}
		if _, ok := groups[*s.uncond]; !ok {
			actions = append(actions, *s.uncond)
		}
		groups[*s.uncond] = append(groups[*s.uncond], s.nr)
	}
	for _, act := range actions {
		nrs := groups[act]
		sort.Slice(nrs, func(i, j int) bool { return nrs[i] < nrs[j] })
		for len(nrs) > 0 {
			n := min(len(nrs), groupSize)
			retL, skipL := a.newLabel(), a.newLabel()
			for i, nr := range nrs[:n] {
				if i == n-1 {
					a.jump(unix.BPF_JEQ, nr, retL, skipL)
				} else {
					a.jump(unix.BPF_JEQ, nr, retL, next)
				}
			}
			a.place(retL)
			a.ret(act)
			a.place(skipL)
			nrs = nrs[n:]
		}
	}

	// Syscalls with argument rules: one block each.
	for _, s := range syscalls {
		if s.uncond != nil || len(s.rules) == 0 {
			continue
		}
		block, err := p.argBlock(ab, s.rules)
		if err != nil {
			return fmt.Errorf("syscall %d: %w", s.nr, err)
		}
		after := a.newLabel()
		if len(block) <= maxShortJump {
			a.jump(unix.BPF_JEQ, s.nr, next, after)
		} else { // too long to jump over: use a 32-bit ja
			in := a.newLabel()
			a.jump(unix.BPF_JEQ, s.nr, in, next)
			a.goTo(after)
			a.place(in)
		}
		a.code(block)
		a.place(after)
	}
	a.ret(p.def)
	return nil
}

// argBlock writes the rules of one syscall: each rule is its conditions
// (any failing one jumps to the next rule) then "ret action"; when no rule
// matches, "ret default". The block always returns, so it may clobber A.
func (p *policy) argBlock(ab *abi, rules []rule) ([]unix.SockFilter, error) {
	b := &asm{}
	for _, r := range rules {
		fail := b.newLabel()
		for _, c := range r.conds {
			cmpArg(b, c, ab.wide, fail)
		}
		b.ret(r.action)
		b.place(fail)
	}
	b.ret(p.def)
	return b.link()
}

// cmpArg falls through when condition c holds and jumps to fail when not.
// A 64-bit argument is compared as two 32-bit words, high word first: only
// when the high words are equal does the low word decide. For 32-bit ABIs
// (wide false) only the low words are compared, as libseccomp does.
func cmpArg(b *asm, c cond, wide bool, fail label) {
	lo, hi := argLo(c.index), argHi(c.index)
	vlo, vhi := uint32(c.value), uint32(c.value>>32)
	ok := b.newLabel()
	switch c.op {
	case specs.OpEqualTo: // hi == vhi && lo == vlo
		if wide {
			b.load(hi)
			b.jump(unix.BPF_JEQ, vhi, next, fail)
		}
		b.load(lo)
		b.jump(unix.BPF_JEQ, vlo, next, fail)
	case specs.OpNotEqual: // hi != vhi || lo != vlo
		if wide {
			b.load(hi)
			b.jump(unix.BPF_JEQ, vhi, next, ok)
		}
		b.load(lo)
		b.jump(unix.BPF_JEQ, vlo, fail, next)
	case specs.OpGreaterThan, specs.OpGreaterEqual: // hi > vhi || hi == vhi && lo >(=) vlo
		if wide {
			b.load(hi)
			b.jump(unix.BPF_JGT, vhi, ok, next)
			b.jump(unix.BPF_JEQ, vhi, next, fail)
		}
		b.load(lo)
		if c.op == specs.OpGreaterThan {
			b.jump(unix.BPF_JGT, vlo, next, fail)
		} else {
			b.jump(unix.BPF_JGE, vlo, next, fail)
		}
	case specs.OpLessThan, specs.OpLessEqual: // the negation of >= and >
		if wide {
			b.load(hi)
			b.jump(unix.BPF_JGT, vhi, fail, next)
			b.jump(unix.BPF_JEQ, vhi, next, ok)
		}
		b.load(lo)
		if c.op == specs.OpLessThan {
			b.jump(unix.BPF_JGE, vlo, fail, next)
		} else {
			b.jump(unix.BPF_JGT, vlo, fail, next)
		}
	case specs.OpMaskedEqual: // arg & value == valueTwo, word by word
		mlo, mhi := vlo, vhi
		wlo, whi := uint32(c.value2), uint32(c.value2>>32)
		if wide && (mhi != 0 || whi != 0) { // skip the no-op "hi & 0 == 0"
			b.load(hi)
			b.and(mhi)
			b.jump(unix.BPF_JEQ, whi, next, fail)
		}
		b.load(lo)
		b.and(mlo)
		b.jump(unix.BPF_JEQ, wlo, next, fail)
	}
	b.place(ok)
}
