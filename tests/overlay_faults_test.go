package tests

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestOverlayFaults: the data path is the kernels', the state etcd's.
// A daemon killed with SIGKILL leaves its containers talking across
// hosts; started again, it catches up with what changed meanwhile (a
// network made, a container started elsewhere, one of its own ended).
// A daemon that stays dead is dropped by the others when its lease
// expires. With etcd stopped, containers keep talking, network
// operations fail saying so, and work again once etcd is back.
func TestOverlayFaults(t *testing.T) {
	c := newOVCluster(t, "host-a", "host-b", "host-c")
	a, b, hc := c.hosts[0], c.hosts[1], c.hosts[2]
	blueID := strings.TrimSpace(a.mustCLI(t, "network", "create", "-d", "overlay", "blue"))
	a1 := a.run(t, "a1", "blue")
	b1 := b.run(t, "b1", "blue")
	b2 := b.run(t, "b2", "blue")
	if err := a1.sendTo("b1", b1); err != nil {
		t.Fatal(err)
	}

	t.Run("daemon killed", func(t *testing.T) {
		b.kill()
		// both ways: a1 to b1 by name (host A's DNS), and from b1's own
		// network namespace to a1 (its daemon is gone: no exec in it)
		if err := a1.sendTo("b1", b1); err != nil {
			t.Error(err)
		}
		if err := sendFromNetNS(b1, a1.ips["blue"], a1); err != nil {
			t.Errorf("b1 -> a1 with host-b's daemon dead: %v", err)
		}
		// meanwhile: a container starts on host C, a network is made, and
		// b2's process ends while no daemon of host B watches
		c1 := hc.run(t, "c1", "blue")
		a.mustCLI(t, "network", "create", "-d", "overlay", "green")
		syscall.Kill(b2.pid, syscall.SIGKILL)
		time.Sleep(200 * time.Millisecond)

		b.start(t) // within the lease: nobody dropped its containers
		if !slices.Contains(b.networks(t), "green/overlay/global") {
			t.Errorf("host-b does not list green: %v", b.networks(t))
		}
		// host B's data path and DNS know c1
		if err := b1.sendTo("c1", c1); err != nil {
			t.Error(err)
		}
		// b2's endpoint went from etcd (reconciled), so from every host
		deadline := time.Now().Add(5 * time.Second)
		for slices.ContainsFunc(c.etcdKeys(t), func(k string) bool { return strings.HasSuffix(k, "/"+b2.id) }) {
			if time.Now().After(deadline) {
				t.Fatalf("b2's endpoint is still in etcd: %v\n%s", c.etcdKeys(t), b.log())
			}
			time.Sleep(50 * time.Millisecond)
		}
		if out, code := a.cli("exec", "a1", "nslookup", "b2"); code == 0 {
			t.Errorf("a1 still resolves b2, which ended:\n%s", out)
		}
		a.mustCLI(t, "network", "rm", "green")
	})

	t.Run("lease expiry", func(t *testing.T) {
		vtepB := b.addr.String()
		viaB := func(h *ovHost) bool {
			return slices.ContainsFunc(h.forwarding(t, blueID), func(e string) bool { return strings.HasSuffix(e, ">"+vtepB) })
		}
		if !viaB(a) || !viaB(hc) {
			t.Fatalf("before: host-a forwards %v, host-c %v", a.forwarding(t, blueID), hc.forwarding(t, blueID))
		}
		b.kill()
		start := time.Now()
		for viaB(a) || viaB(hc) {
			if time.Since(start) > (ovTTL+5)*time.Second {
				t.Fatalf("host-b's entries are still there %v after its daemon died", time.Since(start))
			}
			time.Sleep(50 * time.Millisecond)
		}
		gone := time.Since(start)
		t.Logf("host-b's forwarding entries gone from hosts A and C %v after its daemon died (lease TTL %ds)", gone.Round(time.Millisecond), ovTTL)
		if gone < (ovTTL-1)*time.Second {
			t.Errorf("entries gone after %v, before the lease could expire", gone)
		}
		b.start(t)
		for !viaB(a) {
			if time.Since(start) > 30*time.Second {
				t.Fatalf("host-b's entries did not come back on host-a")
			}
			time.Sleep(50 * time.Millisecond)
		}
		if err := a1.sendTo("b1", b1); err != nil {
			t.Error(err)
		}
	})

	t.Run("etcd down", func(t *testing.T) {
		c.etcd.Stop()
		if err := a1.sendTo("b1", b1); err != nil {
			t.Errorf("with etcd stopped: %v", err)
		}
		// what the daemons know is still listed
		if !slices.Contains(hc.networks(t), "blue/overlay/global") {
			t.Errorf("host-c lists %v", hc.networks(t))
		}
		out, code := a.cli("network", "create", "-d", "overlay", "x")
		if code == 0 || !strings.Contains(out, "cluster store "+ovEtcd+" did not answer within") {
			t.Errorf("network create with etcd stopped: exit %d: %s", code, out)
		}
		out, code = hc.cli(append([]string{"run", "-d", "--name", "c3", "--network", "blue", "busybox"}, sumServer...)...)
		if code == 0 || !strings.Contains(out, "did not answer within") {
			t.Errorf("run on blue with etcd stopped: exit %d: %s", code, out)
		}
		hc.cli("rm", "-f", "c3")

		c.etcd.Start()
		start := time.Now()
		for {
			out, code := a.cli("network", "create", "-d", "overlay", "x")
			if code == 0 {
				break
			}
			if time.Since(start) > 20*time.Second {
				t.Fatalf("network create still fails %v after etcd is back: %s", time.Since(start), out)
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Logf("network create -d overlay succeeded %v after etcd was back", time.Since(start).Round(time.Millisecond))
		c3 := hc.run(t, "c3", "blue")
		if err := a1.sendTo("c3", c3); err != nil {
			t.Error(err)
		}
		a.mustCLI(t, "network", "rm", "x")
	})
}

// sendFromNetNS sends 1 MiB from container from's network namespace
// (entered by the test: its daemon may be down) to addr:7000 and checks
// that server recorded its checksum.
func sendFromNetNS(from *ovContainer, addr string, server *ovContainer) error {
	sum := sha256.New()
	err := inNetNS(fmt.Sprintf("/proc/%d/ns/net", from.pid), func() error {
		conn, err := net.DialTimeout("tcp4", addr+":7000", 3*time.Second)
		if err != nil {
			return err
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		_, err = io.CopyN(io.MultiWriter(conn, sum), rand.Reader, 1<<20)
		return err
	})
	if err != nil {
		return err
	}
	want := hex.EncodeToString(sum.Sum(nil))
	deadline := time.Now().Add(10 * time.Second)
	for {
		sums, _ := os.ReadFile(fmt.Sprintf("/proc/%d/root/tmp/sums", server.pid))
		if strings.Contains(string(sums), want) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s never recorded checksum %s", server.name, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestOverlayStoreAway: a daemon whose etcd does not answer at start
// says so, serves its local networks, refuses overlay operations with
// the reason, and joins once etcd answers. Bad cluster flags stop the
// daemon with their reason; `-d overlay` on a daemon without a cluster
// store says it is not in one.
func TestOverlayStoreAway(t *testing.T) {
	c := newOVCluster(t)
	c.etcd.Stop()
	a := c.addHost("host-a", c.hostAddr(0))

	if log := a.log(); !strings.Contains(log, "cluster store "+ovEtcd+": connect: cluster store "+ovEtcd+" did not answer within 3s; serving the local networks, joining when it answers") {
		t.Errorf("the daemon's log does not say etcd is away:\n%s", log)
	}
	if out := a.mustCLI(t, "info"); !strings.Contains(out, "WARNING: not in the cluster "+ovEtcd+": connect: cluster store "+ovEtcd+" did not answer within 3s") {
		t.Errorf("info:\n%s", out)
	}
	out, code := a.cli("network", "create", "-d", "overlay", "blue")
	if code == 0 || !strings.Contains(out, "this daemon has not joined the cluster") {
		t.Errorf("network create -d overlay with etcd away: exit %d: %s", code, out)
	}
	// the local networks work: a container on the default bridge, reached
	// from another one by address
	l1 := a.run(t, "l1", "bridge")
	l2 := a.run(t, "l2", "bridge")
	if err := l2.sendTo(l1.ips["bridge"], l1); err != nil {
		t.Error(err)
	}

	c.etcd.Start()
	start := time.Now()
	for !strings.Contains(a.mustCLI(t, "info"), "Cluster Peers: 1\n  host-a: "+a.addr.String()) {
		if time.Since(start) > 20*time.Second {
			t.Fatalf("host-a did not join after etcd came back:\n%s", a.log())
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("host-a joined %v after etcd came back", time.Since(start).Round(time.Millisecond))
	a.mustCLI(t, "network", "create", "-d", "overlay", "blue")
	a.mustCLI(t, "network", "rm", "blue")

	t.Run("bad flags", func(t *testing.T) {
		for _, tc := range []struct {
			flags []string
			want  string
		}{
			{[]string{"--cluster-store", ovEtcd}, "--cluster-store " + ovEtcd + " needs --cluster-advertise ADDR|IFACE"},
			{[]string{"--cluster-advertise", "10.98.0.11"}, "--cluster-advertise and --cluster-store-opt need --cluster-store"},
			{[]string{"--cluster-store", "http://10.98.0.1:2379", "--cluster-advertise", "10.98.0.11"}, `want etcd://HOST:PORT`},
			{[]string{"--cluster-store", ovEtcd, "--cluster-advertise", "192.0.2.1"}, "192.0.2.1 is not an address of this host"},
			{[]string{"--cluster-store", ovEtcd, "--cluster-advertise", "10.98.0.11:2377"}, "without a port"},
			{[]string{"--cluster-store", ovEtcd, "--cluster-advertise", "10.98.0.11", "--cluster-store-opt", "kv.cacertfile=x"}, `unknown option "kv.cacertfile"`},
		} {
			root := t.TempDir()
			args := append([]string{"--target", fmt.Sprint(a.ns.pid), "--net", "--mount", "--uts", "--", binary, "daemon",
				"--data-root", root, "--exec-root", root + "/run", "--cgroup-parent", "/minidock-ovtest-bad", "--nft-table", "minidock_ovtest_bad"}, tc.flags...)
			out, err := exec.Command("nsenter", args...).CombinedOutput()
			if err == nil || !strings.Contains(string(out), tc.want) {
				t.Errorf("daemon %s: %v, %s; want an error with %q", strings.Join(tc.flags, " "), err, out, tc.want)
			}
		}
	})

	t.Run("not in a cluster", func(t *testing.T) {
		e := newEngine(t)
		out, code := e.cli("network", "create", "-d", "overlay", "blue")
		if code == 0 || !strings.Contains(out, "this daemon is not in a cluster") {
			t.Errorf("exit %d: %s", code, out)
		}
	})
}
