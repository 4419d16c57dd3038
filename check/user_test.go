package check_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"minidock/check"
	"minidock/client/cli"
)

// With MINIDOCK_CHECK_CLI=1 the test binary is `minidock`'s command line:
// TestAsUser runs it so as another user, as a person would run the binary.
func TestMain(m *testing.M) {
	if os.Getenv("MINIDOCK_CHECK_CLI") == "1" {
		os.Exit(cli.Main(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// runCheck runs `minidock check ARGS` as uid (the test binary as the
// command line), returning stdout and the exit code.
func runCheck(t *testing.T, bin string, uid, gid int, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"check"}, args...)...)
	cmd.Env = []string{"MINIDOCK_CHECK_CLI=1", "HOME=/", "PATH=" + os.Getenv("PATH")}
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("check as uid %d: %v", uid, err)
	}
	if errOut.Len() > 0 {
		t.Errorf("check as uid %d wrote to stderr: %s", uid, errOut.String())
	}
	return out.String(), code
}

// addUser makes a system user for the test and removes it (and its
// group) when the test ends.
func addUser(t *testing.T) (name string, uid, gid int) {
	t.Helper()
	name = fmt.Sprintf("mdcheck%d", os.Getpid())
	if out, err := exec.Command("useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", "--user-group", name).CombinedOutput(); err != nil {
		t.Fatalf("useradd %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("userdel", name).CombinedOutput(); err != nil {
			t.Errorf("userdel %s: %v: %s", name, err, out)
		}
		if _, err := exec.Command("id", name).CombinedOutput(); err == nil {
			t.Errorf("user %s still there after userdel", name)
		}
	})
	ids := func(flag string) int {
		out, err := exec.Command("id", flag, name).Output()
		if err != nil {
			t.Fatalf("id %s %s: %v", flag, name, err)
		}
		n, _ := strconv.Atoi(strings.TrimSpace(string(out)))
		return n
	}
	return name, ids("-u"), ids("-g")
}

// copyBinary copies the test binary where another user can run it (go
// test's build directory is root's alone).
func copyBinary(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "minidock-check-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	src, err := os.Open("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	bin := filepath.Join(dir, "minidock")
	dst, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	return bin
}

func decode(t *testing.T, out string) map[string]check.Result {
	t.Helper()
	got := map[string]check.Result{}
	s := bufio.NewScanner(strings.NewReader(out))
	for s.Scan() {
		var r check.Result
		if err := json.Unmarshal(s.Bytes(), &r); err != nil {
			t.Fatalf("--format json line %q: %v", s.Text(), err)
		}
		got[r.Name] = r
	}
	if len(got) != 10 {
		t.Fatalf("--format json: %d checks, want 10:\n%s", len(got), out)
	}
	return got
}

// `minidock check` as root and as a user made for the test: both report
// every check (no crash, no stderr), and the user's report says what is
// different for a user: not root, the user namespace probe made as that
// uid, nftables not probed.
func TestAsUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("runs check as root and as a user it makes: root")
	}
	bin := copyBinary(t)

	out, code := runCheck(t, bin, 0, 0, "--format", "json")
	asRoot := decode(t, out)
	if code != 0 && !check.Failed(mapValues(asRoot)) {
		t.Errorf("as root: exit %d with no failure", code)
	}
	if r := asRoot["root"]; r.Status != check.OK || r.Found != "uid 0" {
		t.Errorf("as root, root: %+v", r)
	}
	if r := asRoot["userns"]; !strings.Contains(r.Found, "clone(CLONE_NEWUSER) as uid 0") {
		t.Errorf("as root, userns: %+v", r)
	}

	name, uid, gid := addUser(t)
	out, code = runCheck(t, bin, uid, gid, "--format", "json")
	asUser := decode(t, out)
	if code != 0 && !check.Failed(mapValues(asUser)) {
		t.Errorf("as %s: exit %d with no failure", name, code)
	}
	if r := asUser["root"]; r.Status != check.Warn || !strings.Contains(r.Found, fmt.Sprintf("uid %d", uid)) || r.Fix == "" {
		t.Errorf("as %s, root: %+v", name, r)
	}
	if r := asUser["userns"]; !strings.Contains(r.Found, fmt.Sprintf("clone(CLONE_NEWUSER) as uid %d", uid)) {
		t.Errorf("as %s, userns: %+v", name, r)
	}
	if r := asUser["nftables"]; r.Status == check.OK && !strings.Contains(r.Found, "probed as root only") {
		t.Errorf("as %s, nftables: %+v", name, r)
	}
	for _, n := range []string{"kernel", "overlayfs", "cgroups", "ip_forward", "seccomp"} {
		if asUser[n].Status != asRoot[n].Status {
			t.Errorf("%s: %s as root, %s as %s: %+v", n, asRoot[n].Status, asUser[n].Status, name, asUser[n])
		}
	}

	// the text, as the user sees it
	text, _ := runCheck(t, bin, uid, gid)
	if !strings.Contains(text, fmt.Sprintf("warn  root        uid %d", uid)) || !strings.Contains(text, "fix: run `minidock daemon`") {
		t.Errorf("as %s, text:\n%s", name, text)
	}
	for _, line := range strings.Split(text, "\n") {
		if len(line) > 80 {
			t.Errorf("line wider than 80 columns: %q", line)
		}
	}
}

func mapValues(m map[string]check.Result) []check.Result {
	var out []check.Result
	for _, r := range m {
		out = append(out, r)
	}
	return out
}
