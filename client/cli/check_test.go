package cli

import (
	"bytes"
	"strings"
	"testing"

	"minidock/check"
)

// check runs without a daemon: an -H nobody listens on changes nothing.
func TestCheckNeedsNoDaemon(t *testing.T) {
	out, errOut, code := runCLI(t, "-H", "unix:///nonexistent/minidock.sock", "check", "--format", "{{.Name}}")
	if code != 0 && code != 1 || errOut != "" {
		t.Fatalf("exit %d, stderr %q", code, errOut)
	}
	want := "root\nkernel\noverlayfs\ncgroups\nuserns\nip_forward\nnftables\nseccomp\nbusybox\ndelve\n"
	if out != want {
		t.Errorf("names:\n%s\nwant:\n%s", out, want)
	}
	if _, errOut, code := runCLI(t, "check", "extra"); code != 1 || !strings.Contains(errOut, "'minidock check' requires 0 arguments") {
		t.Errorf("check extra: exit %d, %q", code, errOut)
	}
}

// The text: status, name, what was found and the fix, wrapped to 80
// columns under the name; a count at the end.
func TestPrintChecks(t *testing.T) {
	var b bytes.Buffer
	printChecks(&b, []check.Result{
		{Name: "root", Status: check.OK, Found: "uid 0"},
		{Name: "ip_forward", Status: check.Warn, Found: "net.ipv4.ip_forward=0: containers reach only this host until the daemon turns it on",
			Fix: "sysctl -w net.ipv4.ip_forward=1 (the daemon does it when it starts)"},
		{Name: "nftables", Status: check.Fail, Found: "no nft in PATH", Fix: "apt-get install nftables"},
	})
	want := `ok    root        uid 0
warn  ip_forward  net.ipv4.ip_forward=0: containers reach only this host until
                  the daemon turns it on
                  fix: sysctl -w net.ipv4.ip_forward=1 (the daemon does it when
                       it starts)
fail  nftables    no nft in PATH
                  fix: apt-get install nftables

1 failure, 1 warning: containers cannot run here until the failures are fixed.
`
	if b.String() != want {
		t.Errorf("got:\n%s\nwant:\n%s", b.String(), want)
	}
}
