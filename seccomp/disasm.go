package seccomp

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// disasm prints instruction in at index pc in the style of the kernel's
// bpf_dbg, with absolute jump targets and seccomp_data fields named.
func disasm(pc int, in unix.SockFilter) string {
	to := func(off uint32) int { return pc + 1 + int(off) }
	switch in.Code {
	case unix.BPF_LD | unix.BPF_W | unix.BPF_ABS:
		return fmt.Sprintf("ld  [%d]\t\t; %s", in.K, fieldName(in.K))
	case unix.BPF_ALU | unix.BPF_AND | unix.BPF_K:
		return fmt.Sprintf("and #%#x", in.K)
	case unix.BPF_JMP | unix.BPF_JA:
		return fmt.Sprintf("ja  %d", to(in.K))
	case unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K:
		return fmt.Sprintf("jeq #%#x\t\tjt %d jf %d", in.K, to(uint32(in.Jt)), to(uint32(in.Jf)))
	case unix.BPF_JMP | unix.BPF_JGT | unix.BPF_K:
		return fmt.Sprintf("jgt #%#x\t\tjt %d jf %d", in.K, to(uint32(in.Jt)), to(uint32(in.Jf)))
	case unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K:
		return fmt.Sprintf("jge #%#x\t\tjt %d jf %d", in.K, to(uint32(in.Jt)), to(uint32(in.Jf)))
	case unix.BPF_RET | unix.BPF_K:
		return "ret " + retName(in.K)
	}
	return fmt.Sprintf("op %#x jt %d jf %d k %#x", in.Code, in.Jt, in.Jf, in.K)
}

// fieldName names the seccomp_data word at offset off.
func fieldName(off uint32) string {
	switch {
	case off == offNr:
		return "nr"
	case off == offArch:
		return "arch"
	case off >= offArgs && off < offArgs+6*8:
		i := (off - offArgs) / 8
		if (off-offArgs)%8 == 0 {
			return fmt.Sprintf("args[%d] low word", i)
		}
		return fmt.Sprintf("args[%d] high word", i)
	}
	return "?"
}

// retName spells a SECCOMP_RET_* value.
func retName(v uint32) string {
	data := v & unix.SECCOMP_RET_DATA
	switch v & unix.SECCOMP_RET_ACTION_FULL {
	case unix.SECCOMP_RET_KILL_PROCESS:
		return "KILL_PROCESS"
	case unix.SECCOMP_RET_KILL_THREAD:
		return "KILL_THREAD"
	case unix.SECCOMP_RET_TRAP:
		return "TRAP"
	case unix.SECCOMP_RET_ERRNO:
		return fmt.Sprintf("ERRNO(%d)", data)
	case unix.SECCOMP_RET_TRACE:
		return fmt.Sprintf("TRACE(%d)", data)
	case unix.SECCOMP_RET_LOG:
		return "LOG"
	case unix.SECCOMP_RET_ALLOW:
		return "ALLOW"
	}
	return fmt.Sprintf("%#x", v)
}
