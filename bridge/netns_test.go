package bridge

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

func TestNamedNetNS(t *testing.T) {
	sb := newSandbox(t)
	path := filepath.Join(t.TempDir(), "netns", "c1")
	if err := CreateNetNS(path); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { RemoveNetNS(path) })
	if err := CreateNetNS(path); err == nil {
		t.Error("CreateNetNS over an existing file succeeded")
	}

	// The file is a namespace of its own, not the test's.
	var pinned, own syscall.Stat_t
	if err := syscall.Stat(path, &pinned); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Stat("/proc/self/ns/net", &own); err != nil {
		t.Fatal(err)
	}
	if pinned.Ino == own.Ino || pinned.Dev != own.Dev {
		t.Fatalf("%s: inode %d dev %d, want a network namespace other than ours (%d)", path, pinned.Ino, pinned.Dev, own.Ino)
	}

	// It can be wired by path, before any process is in it.
	br := linkName()
	sb.must(t, "wire", func() error {
		if err := EnsureBridge(br, "10.213.11.1/24"); err != nil {
			return err
		}
		return Attach(Endpoint{Bridge: br, HostIf: linkName(), NetNS: path, Address: netip.MustParsePrefix("10.213.11.2/24")})
	})
	h, err := netns.GetFromPath(path)
	if err != nil {
		t.Fatal(err)
	}
	c := &ns{h: h, path: path}
	t.Cleanup(func() { h.Close() })
	c.must(t, "eth0 inside", func() error { _, err := netlink.LinkByName("eth0"); return err })

	if err := RemoveNetNS(path); err != nil {
		t.Fatal(err)
	}
	if err := RemoveNetNS(path); err != nil {
		t.Errorf("second RemoveNetNS: %v", err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("%s still there: %v", path, err)
	}
	mi, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mi), path) {
		t.Errorf("%s still mounted", path)
	}
	// Our handle still holds the namespace; once closed, it and the veth
	// pair go. Deleting the bridge is the test's part.
	sb.must(t, "delete bridge", func() error { return DeleteBridge(br) })
}
