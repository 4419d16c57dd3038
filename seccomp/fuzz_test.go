package seccomp

import (
	"encoding/json"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// FuzzCompile: a seccomp profile (the OCI config's JSON) either is
// refused or compiles to a program the kernel's checks would accept
// (verify: known opcodes, loads inside seccomp_data, jumps inside the
// program, a ret at the end), which the interpreter runs to a verdict
// for any call.
func FuzzCompile(f *testing.F) {
	for _, s := range []string{
		`{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86","SCMP_ARCH_X32"],"syscalls":[{"names":["read","write","exit_group"],"action":"SCMP_ACT_ALLOW"}]}`,
		`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["personality"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":8,"op":"SCMP_CMP_NE"},{"index":0,"value":4294967295,"valueTwo":0,"op":"SCMP_CMP_MASKED_EQ"}]}]}`,
		`{"defaultAction":"SCMP_ACT_KILL_PROCESS","defaultErrnoRet":1,"flags":["SECCOMP_FILTER_FLAG_LOG"],"syscalls":[{"names":["clone"],"action":"SCMP_ACT_TRACE","errnoRet":3}]}`,
		`{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["socket"],"action":"SCMP_ACT_ALLOW","args":[{"index":5,"value":1,"op":"SCMP_CMP_GE"},{"index":0,"value":2,"op":"SCMP_CMP_LT"}]}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var cfg specs.LinuxSeccomp
		if json.Unmarshal(data, &cfg) != nil {
			return
		}
		flt, err := Compile(&cfg)
		if err != nil {
			return
		}
		verify(t, flt.prog)
		for _, c := range []call{x86_64Call(0), x86_64Call(59, 1, 2), i386Call(11), x86_64Call(1<<30|1, ^uint64(0))} {
			run(t, flt.prog, c)
		}
	})
}
