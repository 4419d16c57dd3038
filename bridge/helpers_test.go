package bridge

// Helpers of the real-kernel tests. Every kernel test works inside a
// "sandbox": a fresh network namespace that stands for the host, so that
// the tests never touch the real host's links, routes, sysctls or nftables,
// and run in parallel with anyone else's. Namespaces here are anonymous
// (netns.New on a locked thread, no /run/netns mount): they vanish when the
// last fd and thread in them are gone, so a killed test leaves nothing.

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"minidock/internal/testutil"
)

// ns is one test network namespace, held open by its fd.
type ns struct {
	h    netns.NsHandle
	path string // /proc/self/fd/<fd>: what Attach opens
}

// newNS makes an empty network namespace (only lo, down).
func newNS(t testing.TB) *ns {
	t.Helper()
	type res struct {
		h   netns.NsHandle
		err error
	}
	ch := make(chan res)
	go func() {
		// unshare(CLONE_NEWNET) moves this thread; it is never unlocked,
		// so the runtime throws the thread away when the goroutine ends.
		runtime.LockOSThread()
		h, err := netns.New()
		ch <- res{h, err}
	}()
	r := <-ch
	if r.err != nil {
		t.Fatalf("new network namespace: %v", r.err)
	}
	n := &ns{h: r.h, path: fmt.Sprintf("/proc/self/fd/%d", int(r.h))}
	t.Cleanup(func() { n.h.Close() })
	return n
}

// do runs fn on a thread inside n and waits for it. The thread is
// discarded afterwards, so no other goroutine ever runs in n by accident.
func (n *ns) do(fn func() error) error {
	ch := make(chan error)
	go func() {
		runtime.LockOSThread()
		if err := netns.Set(n.h); err != nil {
			ch <- fmt.Errorf("setns: %w", err)
			return
		}
		ch <- fn()
	}()
	return <-ch
}

func (n *ns) must(t testing.TB, what string, fn func() error) {
	t.Helper()
	if err := n.do(fn); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// newSandbox is a namespace standing for the host, with lo up.
func newSandbox(t testing.TB) *ns {
	t.Helper()
	testutil.RequireRoot(t)
	s := newNS(t)
	s.must(t, "lo up", func() error {
		lo, err := netlink.LinkByName("lo")
		if err != nil {
			return err
		}
		return netlink.LinkSetUp(lo)
	})
	return s
}

var seq atomic.Int32

// linkName is a unique link name: mdt<pid%1000><n>.
func linkName() string { return fmt.Sprintf("mdt%d%d", os.Getpid()%1000, seq.Add(1)) }

// testTable is this process's nft table name.
func testTable() string { return fmt.Sprintf("minidock_test_%d", os.Getpid()) }

// links lists the link names of the calling thread's namespace.
func links() ([]string, error) {
	ls, err := netlink.LinkList()
	if err != nil {
		return nil, err
	}
	var names []string
	for _, l := range ls {
		names = append(names, l.Attrs().Name)
	}
	return names, nil
}

// serveEcho listens on addr inside n; each connection gets one line back:
// "<the client's address as seen here> <the line it sent>".
func serveEcho(t testing.TB, n *ns, addr string) {
	t.Helper()
	var l net.Listener
	n.must(t, "listen "+addr, func() (err error) {
		l, err = net.Listen("tcp4", addr)
		return err
	})
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				line, _ := bufio.NewReader(c).ReadString('\n')
				host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
				fmt.Fprintf(c, "%s %s", host, line)
			}()
		}
	}()
}

// talk dials addr from inside n, sends a line and returns the reply
// ("<client address seen by the server> hello").
func talk(n *ns, addr string, timeout time.Duration) (string, error) {
	var c net.Conn
	err := n.do(func() (err error) {
		c, err = net.DialTimeout("tcp4", addr, timeout)
		return err
	})
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(timeout))
	if _, err := fmt.Fprintln(c, "hello"); err != nil {
		return "", err
	}
	reply, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(reply), err
}

// TestMain checks, after all tests, that the host namespace holds no link
// and no nft table of ours: the sandboxes must have absorbed everything.
func TestMain(m *testing.M) {
	code := m.Run()
	if os.Geteuid() == 0 {
		names, _ := links()
		for _, n := range names {
			if strings.HasPrefix(n, fmt.Sprintf("mdt%d", os.Getpid()%1000)) {
				fmt.Fprintf(os.Stderr, "leak: link %s left on the host\n", n)
				code = 1
			}
		}
		if out, err := runNft("list", "tables"); err == nil && strings.Contains(out, testTable()) {
			fmt.Fprintf(os.Stderr, "leak: nft table %s left on the host\n", testTable())
			code = 1
		}
	}
	os.Exit(code)
}

// runNft runs nft with args in the calling thread's namespace.
func runNft(args ...string) (string, error) {
	out, err := exec.Command("nft", args...).CombinedOutput()
	return string(out), err
}
