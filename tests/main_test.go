// Package tests drives the real minidock binary, as root, on a busybox
// bundle. With MINIDOCK_TEST_RUNTIME=runc the same runtime tests run
// against runc: they check the OCI contract, not minidock's quirks.
package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"minidock/runtime"
)

// binary is the minidock binary under test (built once by TestMain).
var binary string

func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "init" {
		// The runtime used as a library (runtime_library_test.go)
		// re-executes /proc/self/exe, this test binary, as the init:
		// play that role, as cmd/minidock does.
		runtime.InitMain(os.Args[2:])
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	if b := os.Getenv("MINIDOCK_BIN"); b != "" {
		binary = b
	} else {
		dir, err := os.MkdirTemp("", "minidock-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		binary = filepath.Join(dir, "minidock")
		build := exec.Command("go", "build", "-o", binary, "../cmd/minidock")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build minidock:", err)
			return 1
		}
		// traversable by uids of user namespaces
		os.Chmod(dir, 0o755)
	}
	return m.Run()
}
