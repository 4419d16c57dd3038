package cgroup

// The v2 device controller. cgroup v2 has no devices.* files: instead the
// kernel runs every BPF_PROG_TYPE_CGROUP_DEVICE program attached to the
// cgroup (and to its ancestors) when a process in it opens or mknods a
// device node, and refuses the access with EPERM unless each program
// returns 1. The program gets a struct bpf_cgroup_dev_ctx:
//
//	u32 access_type   // low 16 bits: BPF_DEVCG_DEV_{BLOCK,CHAR}; high 16: BPF_DEVCG_ACC_{MKNOD,READ,WRITE}
//	u32 major
//	u32 minor
//
// deviceProgram compiles the rules' devState into eBPF instructions by hand
// (runc uses cilium/ebpf's assembler for the same program);
// attachDeviceProgram loads it with bpf(BPF_PROG_LOAD) and attaches it to
// the cgroup directory with bpf(BPF_PROG_ATTACH), replacing the program
// attached before; detachDevicePrograms takes them off again.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"runtime"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"minidock/internal/trace"
)

// bpfInsn is one eBPF instruction as the kernel reads it (struct bpf_insn):
// an opcode, destination and source registers in one byte (dst in the low
// nibble), a signed 16-bit offset (jumps count instructions from the next
// one) and a signed 32-bit immediate.
type bpfInsn struct {
	code     uint8
	dst, src uint8
	off      int16
	imm      int32
}

// Registers: R0 holds the return value, R1 the context pointer on entry.
const (
	r0 = iota
	r1
	r2
	r3
	r4
	r5
)

// Opcodes, spelled out from their parts (include/uapi/linux/bpf.h).
const (
	opLoadWord = unix.BPF_LDX | unix.BPF_MEM | unix.BPF_W // dst = *(u32 *)(src + off)
	opAnd32Imm = unix.BPF_ALU | unix.BPF_AND | unix.BPF_K // dst &= imm (32-bit)
	opRsh32Imm = unix.BPF_ALU | unix.BPF_RSH | unix.BPF_K // dst >>= imm (32-bit)
	opMov32Imm = unix.BPF_ALU | unix.BPF_MOV | unix.BPF_K // dst = imm (32-bit)
	opMov32Reg = unix.BPF_ALU | unix.BPF_MOV | unix.BPF_X // dst = src (32-bit)
	opJneImm   = unix.BPF_JMP | unix.BPF_JNE | unix.BPF_K // if dst != imm: pc += off
	opJneReg   = unix.BPF_JMP | unix.BPF_JNE | unix.BPF_X // if dst != src: pc += off
	opJeqImm   = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K // if dst == imm: pc += off
	opExit     = unix.BPF_JMP | unix.BPF_EXIT             // return R0
)

// deviceProgram compiles s into a cgroup device program:
//
//	R2 = type, R3 = access, R4 = major, R5 = minor   (from the context in R1)
//	for each exception, a block that jumps to the next block unless the
//	    device matches, else returns the opposite of the default
//	return the default (1 allows, 0 denies)
//
// An exception to deny-by-default must cover every bit of the access asked
// for; an exception to allow-by-default denies as soon as it covers one
// bit. That is how the v1 kernel matches exceptions, so both drivers agree.
func deviceProgram(s *devState) []bpfInsn {
	prog := []bpfInsn{
		{code: opLoadWord, dst: r2, src: r1, off: 0},
		{code: opAnd32Imm, dst: r2, imm: 0xffff},
		{code: opLoadWord, dst: r3, src: r1, off: 0},
		{code: opRsh32Imm, dst: r3, imm: 16},
		{code: opLoadWord, dst: r4, src: r1, off: 4},
		{code: opLoadWord, dst: r5, src: r1, off: 8},
	}
	verdict := func(allow bool) []bpfInsn {
		v := int32(0)
		if allow {
			v = 1
		}
		return []bpfInsn{{code: opMov32Imm, dst: r0, imm: v}, {code: opExit}}
	}
	for _, k := range s.keys() {
		acc := s.except[k]
		typ := int32(unix.BPF_DEVCG_DEV_CHAR)
		if k.typ == 'b' {
			typ = unix.BPF_DEVCG_DEV_BLOCK
		}
		var bpfAcc int32
		for _, a := range []struct {
			bit devAccess
			v   int32
		}{{accRead, unix.BPF_DEVCG_ACC_READ}, {accWrite, unix.BPF_DEVCG_ACC_WRITE}, {accMknod, unix.BPF_DEVCG_ACC_MKNOD}} {
			if acc&a.bit != 0 {
				bpfAcc |= a.v
			}
		}
		// Jumps with off 0 are "to the next block", patched below.
		block := []bpfInsn{{code: opJneImm, dst: r2, imm: typ}}
		if acc != accAll {
			block = append(block,
				bpfInsn{code: opMov32Reg, dst: r1, src: r3},
				bpfInsn{code: opAnd32Imm, dst: r1, imm: bpfAcc})
			if s.defaultAllow {
				// Deny exception: no asked-for bit in it, no match.
				block = append(block, bpfInsn{code: opJeqImm, dst: r1, imm: 0})
			} else {
				// Allow exception: a bit asked for but not in it, no match.
				block = append(block, bpfInsn{code: opJneReg, dst: r1, src: r3})
			}
		}
		if k.major != wildcard {
			block = append(block, bpfInsn{code: opJneImm, dst: r4, imm: int32(k.major)})
		}
		if k.minor != wildcard {
			block = append(block, bpfInsn{code: opJneImm, dst: r5, imm: int32(k.minor)})
		}
		block = append(block, verdict(!s.defaultAllow)...)
		for i := range block {
			if block[i].code&0x07 == unix.BPF_JMP && block[i].code != opExit {
				block[i].off = int16(len(block) - i - 1)
			}
		}
		prog = append(prog, block...)
	}
	return append(prog, verdict(s.defaultAllow)...)
}

// encode lays the instructions out as the kernel reads them.
func encode(prog []bpfInsn) []byte {
	b := make([]byte, 0, 8*len(prog))
	for _, in := range prog {
		b = append(b, in.code, in.dst&0x0f|in.src<<4)
		b = binary.LittleEndian.AppendUint16(b, uint16(in.off))
		b = binary.LittleEndian.AppendUint32(b, uint32(in.imm))
	}
	return b
}

// The parts of union bpf_attr that each bpf(2) command reads. The kernel's
// __aligned_u64 pointer fields are unsafe.Pointer here (8 bytes on the
// 64-bit machines minidock runs on), so that Go keeps what they point to
// alive and in place until the call returns.
type (
	bpfProgLoadAttr struct {
		progType    uint32
		insnCnt     uint32
		insns       unsafe.Pointer
		license     unsafe.Pointer
		logLevel    uint32
		logSize     uint32
		logBuf      unsafe.Pointer
		kernVersion uint32
		progFlags   uint32
		progName    [unix.BPF_OBJ_NAME_LEN]byte
	}
	bpfProgAttachAttr struct {
		targetFd     uint32
		attachBpfFd  uint32
		attachType   uint32
		attachFlags  uint32
		replaceBpfFd uint32
	}
	bpfProgQueryAttr struct {
		targetFd    uint32
		attachType  uint32
		queryFlags  uint32
		attachFlags uint32
		progIds     unsafe.Pointer
		progCnt     uint32
		_           uint32
	}
	bpfGetFdByIDAttr struct {
		id, nextID, openFlags uint32
	}
)

// bpf calls bpf(2) with attr (a pointer to one of the structs above).
func bpf[T any](cmd int, attr *T) (int, error) {
	r, _, errno := unix.Syscall(unix.SYS_BPF, uintptr(cmd), uintptr(unsafe.Pointer(attr)), unsafe.Sizeof(*attr))
	runtime.KeepAlive(attr)
	if errno != 0 {
		return -1, errno
	}
	return int(r), nil
}

// loadDeviceProgram is bpf(BPF_PROG_LOAD) of a BPF_PROG_TYPE_CGROUP_DEVICE
// program. The verifier checks it first; if it refuses, the load is done
// again with the verifier's log, which goes into the error.
func loadDeviceProgram(prog []bpfInsn) (int, error) {
	code := encode(prog)
	// The license only matters for GPL-only helpers, and this program
	// calls no helper at all.
	license := []byte("Apache-2.0\x00")
	attr := bpfProgLoadAttr{
		progType: unix.BPF_PROG_TYPE_CGROUP_DEVICE,
		insnCnt:  uint32(len(prog)),
		insns:    unsafe.Pointer(&code[0]),
		license:  unsafe.Pointer(&license[0]),
	}
	copy(attr.progName[:], "minidock_dev")
	fd, err := bpf(unix.BPF_PROG_LOAD, &attr)
	if err != nil {
		log := make([]byte, 64<<10)
		attr.logLevel, attr.logSize = 1, uint32(len(log))
		attr.logBuf = unsafe.Pointer(&log[0])
		if fd2, err2 := bpf(unix.BPF_PROG_LOAD, &attr); err2 == nil {
			fd, err = fd2, nil
		} else if n := bytes.IndexByte(log, 0); n > 0 {
			err = fmt.Errorf("%w; verifier log:\n%s", err, log[:n])
		}
	}
	if err != nil {
		return -1, fmt.Errorf("bpf(BPF_PROG_LOAD, BPF_PROG_TYPE_CGROUP_DEVICE): %w", err)
	}
	return fd, nil
}

// attachedDevicePrograms opens the device programs attached to the cgroup
// dirFd itself (not those of its ancestors): bpf(BPF_PROG_QUERY) lists
// their ids, bpf(BPF_PROG_GET_FD_BY_ID) opens each.
func attachedDevicePrograms(dirFd int) ([]int, error) {
	ids := make([]uint32, 64) // the kernel allows 64 programs per cgroup and type
	attr := bpfProgQueryAttr{
		targetFd:   uint32(dirFd),
		attachType: unix.BPF_CGROUP_DEVICE,
		progIds:    unsafe.Pointer(&ids[0]),
		progCnt:    uint32(len(ids)),
	}
	_, err := bpf(unix.BPF_PROG_QUERY, &attr)
	if err != nil {
		return nil, fmt.Errorf("bpf(BPF_PROG_QUERY, BPF_CGROUP_DEVICE): %w", err)
	}
	var fds []int
	for _, id := range ids[:attr.progCnt] {
		fd, err := bpf(unix.BPF_PROG_GET_FD_BY_ID, &bpfGetFdByIDAttr{id: id})
		if errors.Is(err, unix.ENOENT) {
			continue // detached and freed meanwhile
		}
		if err != nil {
			closeAll(fds)
			return nil, fmt.Errorf("bpf(BPF_PROG_GET_FD_BY_ID, %d): %w", id, err)
		}
		fds = append(fds, fd)
	}
	return fds, nil
}

func closeAll(fds []int) {
	for _, fd := range fds {
		_ = unix.Close(fd)
	}
}

// attachDeviceProgram attaches the program progFd to the cgroup dirFd
// with BPF_F_ALLOW_MULTI, in place of the programs attached before, as runc
// does: when exactly one was there, BPF_F_REPLACE swaps it atomically
// (Linux 5.6); otherwise the new program is attached first and the old
// ones detached after, so that for a moment both apply (all attached
// programs must allow an access) and no access slips through.
func attachDeviceProgram(dirFd, progFd int) error {
	old, err := attachedDevicePrograms(dirFd)
	if err != nil {
		return err
	}
	defer closeAll(old)
	attr := bpfProgAttachAttr{
		targetFd:    uint32(dirFd),
		attachBpfFd: uint32(progFd),
		attachType:  unix.BPF_CGROUP_DEVICE,
		attachFlags: unix.BPF_F_ALLOW_MULTI,
	}
	if len(old) == 1 {
		replace := attr
		replace.attachFlags |= unix.BPF_F_REPLACE
		replace.replaceBpfFd = uint32(old[0])
		_, err := bpf(unix.BPF_PROG_ATTACH, &replace)
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("bpf(BPF_PROG_ATTACH, BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI|BPF_F_REPLACE): %w", err)
		}
		// EINVAL: a kernel without BPF_F_REPLACE.
	}
	if _, err := bpf(unix.BPF_PROG_ATTACH, &attr); err != nil {
		return fmt.Errorf("bpf(BPF_PROG_ATTACH, BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI): %w", err)
	}
	return detach(dirFd, old)
}

// detach is bpf(BPF_PROG_DETACH) of each program in fds from the cgroup.
func detach(dirFd int, fds []int) error {
	for _, fd := range fds {
		attr := bpfProgAttachAttr{targetFd: uint32(dirFd), attachBpfFd: uint32(fd), attachType: unix.BPF_CGROUP_DEVICE}
		if _, err := bpf(unix.BPF_PROG_DETACH, &attr); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("bpf(BPF_PROG_DETACH, BPF_CGROUP_DEVICE): %w", err)
		}
	}
	return nil
}

// setDevices compiles the rules into a device program and attaches it to
// the cgroup in place of the one there before (Create and Update). The
// kernel keeps the program while it is attached, so the descriptors are
// closed on return. No rules means "leave the devices alone".
func (m *v2) setDevices(rules []specs.LinuxDeviceCgroup) error {
	if len(rules) == 0 {
		return nil
	}
	parsed, err := parseDeviceRules(rules)
	if err != nil {
		return err
	}
	s, err := devStateOf(parsed)
	if err != nil {
		return err
	}
	prog := deviceProgram(s)
	progFd, err := loadDeviceProgram(prog)
	if m.t != nil {
		m.t.CallResult(traceStep, "bpf", fmt.Sprintf("BPF_PROG_LOAD, BPF_PROG_TYPE_CGROUP_DEVICE, %d instructions, %d device rules", len(prog), len(rules)),
			resultFd(progFd, err), "the device rules as a program the kernel runs at each open or mknod of a device")
	}
	if err != nil {
		return err
	}
	defer unix.Close(progFd)
	dirFd, err := unix.Open(m.dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", m.dir, err)
	}
	defer unix.Close(dirFd)
	err = m.t.Call(traceStep, "bpf", fmt.Sprintf("BPF_PROG_ATTACH, %s, BPF_CGROUP_DEVICE, BPF_F_ALLOW_MULTI", m.dir), "attach the device program to the cgroup", attachDeviceProgram(dirFd, progFd))
	if err != nil {
		return fmt.Errorf("device rules on %s: %w", m.dir, err)
	}
	return nil
}

// detachDevicePrograms detaches every device program from the cgroup
// (Destroy). rmdir alone would also let them go, but only once the kernel
// frees the cgroup, which may be a while later.
func (m *v2) detachDevicePrograms() error {
	dirFd, err := unix.Open(m.dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open %s: %w", m.dir, err)
	}
	defer unix.Close(dirFd)
	fds, err := attachedDevicePrograms(dirFd)
	if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EINVAL) {
		return nil // a kernel without bpf(2) or cgroup BPF: nothing attached
	}
	if err != nil {
		return fmt.Errorf("%s: %w", m.dir, err)
	}
	defer closeAll(fds)
	if err := detach(dirFd, fds); err != nil {
		return fmt.Errorf("%s: %w", m.dir, err)
	}
	return nil
}

// resultFd spells the result of a call that returns a descriptor.
func resultFd(fd int, err error) string {
	if err != nil {
		return trace.Result(err)
	}
	return fmt.Sprintf("fd %d", fd)
}
