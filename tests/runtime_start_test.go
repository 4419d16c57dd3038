package tests

import (
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestRuntimeInitsAreCheap: every role of the one binary pays the package
// initialisers of every package linked in, twice per container (the
// runtime and the init). minidock's own packages keep theirs to almost
// nothing: regular expressions compiled on first use (sync.OnceValue),
// tables instead of map literals. GODEBUG=inittrace=1 reports what each
// package's init allocated; more than 8 KiB means work that should wait.
// (Measured in bytes, which do not depend on the machine's load; the time
// it costs is in BenchmarkRunTrue.)
func TestRuntimeInitsAreCheap(t *testing.T) {
	cmd := exec.Command(binary, "runtime", "--version")
	cmd.Env = append(os.Environ(), "GODEBUG=inittrace=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	line := regexp.MustCompile(`^init (\S+) @\S+ ms, \S+ ms clock, (\d+) bytes, (\d+) allocs$`)
	seen := 0
	for _, l := range strings.Split(string(out), "\n") {
		m := line.FindStringSubmatch(l)
		if m == nil || !strings.HasPrefix(m[1], "minidock/") {
			continue
		}
		seen++
		if bytes, _ := strconv.Atoi(m[2]); bytes > 8<<10 {
			t.Errorf("package %s allocates %s bytes in %s allocations at init: compile or build it on first use", m[1], m[2], m[3])
		}
	}
	if seen == 0 {
		t.Fatalf("no minidock package in the init trace:\n%s", out)
	}
}
