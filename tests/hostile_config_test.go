package tests

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"strings"
	"testing"

	"minidock/api"
)

// Hostile configurations: each is refused with a 400 (or 409) that says
// why, and nothing is made. Found when the engine was probed (issue 12).

// Names that go into /etc/hosts, /etc/hostname, /etc/resolv.conf and the
// UTS namespace are RFC 1123 names: a newline would add a line of the
// client's choosing. Good ones are applied.
func TestCreateRefusesBadNames(t *testing.T) {
	e := newEngine(t)
	e.importBusybox("busybox:latest")
	for _, tc := range []struct {
		cfg  map[string]any
		want string
	}{
		{map[string]any{"Hostname": "web\n6.6.6.6 evil"}, "invalid hostname"},
		{map[string]any{"Hostname": "has space"}, "invalid hostname"},
		{map[string]any{"Hostname": "-dash"}, "invalid hostname"},
		{map[string]any{"Hostname": strings.Repeat("a", 65)}, "invalid hostname"},
		{map[string]any{"Domainname": "example.com\nnameserver 6.6.6.6"}, "invalid domain name"},
		{map[string]any{"HostConfig": map[string]any{"ExtraHosts": []string{"evil\n6.6.6.6 bank:1.2.3.4"}}}, "invalid extra host"},
		{map[string]any{"HostConfig": map[string]any{"ExtraHosts": []string{"a b:1.2.3.4"}}}, "invalid extra host"},
		{map[string]any{"HostConfig": map[string]any{"Dns": []string{"1.1.1.1\nnameserver 6.6.6.6"}}}, "invalid DNS server"},
		{map[string]any{"HostConfig": map[string]any{"DnsSearch": []string{"example.com\nnameserver 6.6.6.6"}}}, "invalid DNS search domain"},
		{map[string]any{"HostConfig": map[string]any{"DnsOptions": []string{"ndots:1\nnameserver 6.6.6.6"}}}, "invalid DNS option"},
		{map[string]any{"HostConfig": map[string]any{"DnsOptions": []string{"ndots:"}}}, "invalid DNS option"},
	} {
		cfg := map[string]any{"Image": "busybox", "Cmd": []string{"true"}}
		for k, v := range tc.cfg {
			cfg[k] = v
		}
		st, body := e.do("POST", "/containers/create", cfg)
		if st != 400 || !strings.Contains(string(body), tc.want) {
			t.Errorf("create with %q: %d %s; want 400 %q", tc.cfg, st, body, tc.want)
		}
	}
	var list []api.ContainerSummary
	e.must(200, "GET", "/containers/json?all=1", nil, &list)
	if len(list) != 0 {
		t.Errorf("refused creates left %d containers", len(list))
	}

	// good names are applied
	id := e.create("named", map[string]any{"Image": "busybox", "Hostname": "web-1", "Domainname": "example.com",
		"Cmd": []string{"sh", "-c", "cat /etc/hosts /etc/resolv.conf /proc/sys/kernel/domainname; hostname"},
		"HostConfig": map[string]any{"ExtraHosts": []string{"db.internal:10.1.2.3"}, "Dns": []string{"192.0.2.53"},
			"DnsSearch": []string{"corp.example"}, "DnsOptions": []string{"ndots:2", "rotate"}}})
	resp := e.request("POST", "/containers/"+id+"/wait?condition=next-exit", nil)
	e.must(204, "POST", "/containers/"+id+"/start", nil, nil)
	if code := waitCode(t, resp); code != 0 {
		t.Fatalf("exit %d", code)
	}
	out, _ := e.logs(id, "")
	for _, want := range []string{"10.1.2.3\tdb.internal\n", "nameserver 192.0.2.53\n", "search corp.example\n", "options ndots:2 rotate\n", "example.com\nweb-1\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("the container's files lack %q:\n%s", want, out)
		}
	}
}

// NanoCpus beyond the host's CPUs (2^63-1 overflowed into "no limit")
// and below 0.01 CPU are refused.
func TestCreateRefusesImpossibleCPUs(t *testing.T) {
	e := newEngine(t)
	e.importBusybox("busybox:latest")
	for _, n := range []int64{math.MaxInt64, 1 << 40, 1e6} {
		st, body := e.do("POST", "/containers/create", map[string]any{"Image": "busybox", "Cmd": []string{"true"}, "HostConfig": map[string]any{"NanoCpus": n}})
		if st != 400 || !strings.Contains(string(body), "range of CPUs") {
			t.Errorf("NanoCpus %d: %d %s; want 400", n, st, body)
		}
	}
	e.create("half", map[string]any{"Image": "busybox", "Cmd": []string{"true"}, "HostConfig": map[string]any{"NanoCpus": 5e8}})
}

// A network on a subnet no interface can use (multicast, loopback,
// link-local, 0/8, class E) is a 400 naming the range.
func TestNetworkCreateRefusesUnusableSubnets(t *testing.T) {
	e := newEngine(t)
	for _, sub := range []string{"224.0.0.0/24", "239.1.0.0/16", "127.3.0.0/24", "169.254.7.0/24", "0.0.0.0/24", "240.0.0.0/24", "255.255.255.0/30"} {
		st, body := e.do("POST", "/networks/create", map[string]any{"Name": "bad", "IPAM": map[string]any{"Config": []map[string]string{{"Subnet": sub}}}})
		if st != 400 || !strings.Contains(string(body), "overlaps") {
			t.Errorf("network create on %s: %d %s; want 400 naming the range", sub, st, body)
		}
	}
	var nets []api.Network
	e.must(200, "GET", "/networks", nil, &nets)
	for _, n := range nets {
		if n.Name == "bad" {
			t.Errorf("a refused network was made: %+v", n)
		}
	}
}

// A network never adopts a bridge it did not make: a network create
// naming a host bridge (an administrator's, or another daemon's) is
// refused and the bridge stays; network rm and the daemon's stop delete
// only the bridges their daemon made; an administrator's --bridge is
// used and left in place.
func TestNetworkNeverTakesAHostBridge(t *testing.T) {
	host := fmt.Sprintf("mdh%d", os.Getpid()%100000)
	if out, err := exec.Command("ip", "link", "add", host, "type", "bridge").CombinedOutput(); err != nil {
		t.Fatalf("ip link add: %v: %s", err, out)
	}
	defer exec.Command("ip", "link", "del", host).Run()
	a := newEngine(t)
	b := newEngine(t)
	create := func(e *engine, name, br string) (int, string) {
		st, body := e.do("POST", "/networks/create", map[string]any{"Name": name, "Options": map[string]string{"com.docker.network.bridge.name": br}})
		return st, string(body)
	}
	if st, body := create(a, "admins", host); st != 409 || !strings.Contains(body, "exists on the host") {
		t.Errorf("network create on the host's bridge %s: %d %s; want 409", host, st, body)
	}
	shared := fmt.Sprintf("mds%d", os.Getpid()%100000)
	if st, body := create(a, "mine", shared); st != 201 {
		t.Fatalf("network create: %d %s", st, body)
	}
	if st, body := create(b, "theirs", shared); st != 409 || !strings.Contains(body, "exists on the host") {
		t.Errorf("network create on another daemon's bridge: %d %s; want 409", st, body)
	}
	if !linkExists(shared) || !linkExists(host) {
		t.Fatalf("a refused create deleted a bridge")
	}
	a.must(204, "DELETE", "/networks/mine", nil, nil)
	if linkExists(shared) {
		t.Errorf("network rm left its own bridge %s", shared)
	}

	// the default network on an administrator's bridge: used, not deleted
	c := newEngineAt(t, "", "--bridge", host)
	c.importBusybox("busybox:latest")
	if out := c.mustCLI("run", "--rm", "busybox", "ip", "-4", "-o", "addr", "show", "eth0"); !strings.Contains(out, "inet ") {
		t.Errorf("a container on the default bridge %s: %q", host, out)
	}
	c.stop()
	if !linkExists(host) {
		t.Errorf("the daemon deleted the administrator's bridge %s", host)
	}
}

func linkExists(name string) bool {
	_, err := os.Stat("/sys/class/net/" + name)
	return err == nil
}
