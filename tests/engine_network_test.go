package tests

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"minidock/api"
)

// Networking through the daemon. Traffic goes only to 127.0.0.1 and to
// containers on bridges the test's daemon made; the daemon runs with
// --dns none, so no lookup leaves the machine.

// webServer is a busybox httpd serving "hello from <name>" on port 8000.
func webServer(name string) []string {
	return []string{"sh", "-c", "mkdir -p /www && echo hello from " + name + " > /www/index.html && exec httpd -f -p 8000 -h /www"}
}

// probe sends an HTTP request to ip:8000 with busybox nc from a new
// container on network: the page's line, or "unreachable: " and nc's
// complaint (timed out, network unreachable) when it cannot connect
// within 2 s. (Debian's static busybox wget dies of SIGSEGV whenever -T is
// given, reachable or not: it cannot tell.)
func (e *engine) probe(network, ip string) string {
	e.t.Helper()
	out, _ := e.cli("run", "--rm", "--network", network, "busybox", "sh", "-c",
		`out=$(printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 2 `+ip+` 8000 2>&1); echo "$out" | grep 'hello from' || echo "unreachable: $out"`)
	return out
}

// requireUnreachable checks a probe's answer: no page, and nc could not
// connect.
func requireUnreachable(t *testing.T, out string) {
	t.Helper()
	require.True(t, strings.HasPrefix(out, "unreachable: nc: "), "the probe got: %q", out)
}

// waitHTTP polls url from the host until it answers.
func waitHTTP(t *testing.T, url string) string {
	t.Helper()
	var body string
	require.Eventually(t, func() bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		body = string(data)
		return resp.StatusCode == 200
	}, 10*time.Second, 50*time.Millisecond, "GET %s", url)
	return body
}

func TestNetworkUserDefined(t *testing.T) {
	e := newEngine(t)
	e.importBusybox("busybox:latest")
	n1 := strings.TrimSpace(e.mustCLI("network", "create", "n1"))
	e.mustCLI("network", "create", "--subnet", "10.219.7.0/24", "n2")

	var net1 api.Network
	e.must(200, "GET", "/networks/n1", nil, &net1)
	require.Equal(t, n1, net1.ID)
	require.Equal(t, "bridge", net1.Driver)
	require.Len(t, net1.IPAM.Config, 1)
	bridgeName := net1.Options["com.docker.network.bridge.name"]
	require.True(t, hostLinks()[bridgeName], "the network's bridge %s", bridgeName)

	e.mustCLI("run", "-d", "--name", "web1", "--network", "n1", "--network-alias", "www", "busybox", webServer("web1")[0], webServer("web1")[1], webServer("web1")[2])
	e.mustCLI("run", "-d", "--name", "web2", "--network", "n2", "busybox", webServer("web2")[0], webServer("web2")[1], webServer("web2")[2])
	c1, c2 := e.inspect("web1"), e.inspect("web2")
	ip1, ip2 := c1.NetworkSettings.Networks["n1"].IPAddress, c2.NetworkSettings.Networks["n2"].IPAddress
	sub1 := netip.MustParsePrefix(net1.IPAM.Config[0].Subnet)
	require.True(t, sub1.Contains(netip.MustParseAddr(ip1)), "web1's address %s is in n1's subnet %s", ip1, sub1)
	require.True(t, netip.MustParsePrefix("10.219.7.0/24").Contains(netip.MustParseAddr(ip2)), ip2)
	waitHTTP(t, "http://"+ip1+":8000/")
	waitHTTP(t, "http://"+ip2+":8000/")

	// same network: by name, by alias, by short ID
	out := e.mustCLI("run", "--rm", "--network", "n1", "busybox", "sh", "-c",
		"wget -qO- http://web1:8000/ && wget -qO- http://www:8000/ && wget -qO- http://"+c1.ID[:12]+":8000/")
	require.Equal(t, strings.Repeat("hello from web1\n", 3), out)
	// another network: neither the address nor the name; the same probe
	// reaches the server from its own network
	require.Equal(t, "hello from web2\n", e.probe("n2", ip2))
	requireUnreachable(t, e.probe("n1", ip2))
	out, code := e.cli("run", "--rm", "--network", "n1", "busybox", "sh", "-c", "nslookup web2 2>&1 | grep -q NXDOMAIN && echo nxdomain")
	require.Equal(t, 0, code, out)
	require.Equal(t, "nxdomain\n", out)
	// n1's DNS server does not answer n2's containers (the firewall's input chain)
	out, _ = e.cli("run", "--rm", "--network", "n2", "busybox", "timeout", "5", "nslookup", "web1", net1.IPAM.Config[0].Gateway)
	require.Contains(t, out, "no servers could be reached")
	// an unknown name: NXDOMAIN from the embedded server, not a timeout
	out, _ = e.cli("run", "--rm", "--network", "n1", "busybox", "nslookup", "no-such-name.example")
	require.Contains(t, out, "NXDOMAIN")
	// resolv.conf points at the network's gateway (the embedded DNS server)
	out = e.mustCLI("run", "--rm", "--network", "n1", "busybox", "cat", "/etc/resolv.conf")
	require.Equal(t, "nameserver "+net1.IPAM.Config[0].Gateway+"\n", out)

	// the network lists its running containers; it cannot go while they run
	e.must(200, "GET", "/networks/n1", nil, &net1)
	require.Contains(t, net1.Containers, c1.ID)
	st, body := e.do("DELETE", "/networks/n1", nil)
	require.Equal(t, 403, st, string(body))
	require.Contains(t, string(body), "active endpoints")

	// connect web1 to n2 live: eth1, and names on n2 resolve for it
	e.mustCLI("network", "connect", "n2", "web1")
	out = e.mustCLI("exec", "web1", "sh", "-c", "ip -4 -o addr show eth1 | wc -l; wget -qO- http://web2:8000/")
	require.Equal(t, "1\nhello from web2\n", out)
	e.mustCLI("network", "disconnect", "n2", "web1")
	out, _ = e.cli("exec", "web1", "cat", "/sys/class/net/eth1/address")
	require.Contains(t, out, "No such file")

	e.mustCLI("rm", "-f", "web1", "web2")
	e.mustCLI("network", "rm", "n1")
	// network events, replayed
	st, body = e.do("GET", fmt.Sprintf(`/events?since=0&until=%d&filters={"network":["n1"]}`, time.Now().Unix()+1), nil)
	require.Equal(t, 200, st)
	var actions []string
	for _, line := range strings.Split(strings.TrimSpace(string(body)), "\n") {
		var m api.EventMessage
		require.NoError(t, json.Unmarshal([]byte(line), &m), line)
		actions = append(actions, m.Action)
	}
	require.Equal(t, "create", actions[0])
	require.Equal(t, "destroy", actions[len(actions)-1])
	require.Contains(t, actions, "connect")
	require.Contains(t, actions, "disconnect")
	require.False(t, hostLinks()[bridgeName], "bridge of a removed network")
	out = e.mustCLI("network", "prune")
	require.Contains(t, out, "n2")
	out = e.mustCLI("network", "ls", "-q")
	require.Len(t, strings.Fields(out), 3, "bridge, host, none: %s", out)
}

func TestNetworkKinds(t *testing.T) {
	e := newEngine(t)
	e.importBusybox("busybox:latest")
	links := func(out string) []string {
		var names []string
		for _, line := range strings.Split(out, "\n")[2:] {
			if name, _, ok := strings.Cut(line, ":"); ok {
				names = append(names, strings.TrimSpace(name))
			}
		}
		return names
	}

	// none: only lo, and it is up
	out := e.mustCLI("run", "--rm", "--network", "none", "busybox", "sh", "-c", "cat /proc/net/dev; cat /sys/class/net/lo/operstate /sys/class/net/lo/flags")
	require.Equal(t, []string{"lo"}, links(out))
	require.Contains(t, out, "0x9", "lo is up (IFF_UP|IFF_LOOPBACK)")

	// default bridge: lo and eth0, a default route via the bridge
	out = e.mustCLI("run", "--rm", "busybox", "sh", "-c", "cat /proc/net/dev; ip route")
	require.ElementsMatch(t, []string{"lo", "eth0"}, links(out))
	require.Contains(t, out, "default via "+strings.Split(e.bip, "/")[0])

	// host: the host's links, among them the daemon's bridge; the host's name
	out = e.mustCLI("run", "--rm", "--network", "host", "busybox", "sh", "-c", "cat /proc/net/dev; hostname")
	require.Contains(t, links(out), e.bridge)
	host, _ := os.Hostname()
	require.True(t, strings.HasSuffix(out, host+"\n"), out)

	// container: the other's interfaces, address and hostname
	w := webServer("first")
	e.mustCLI("run", "-d", "--name", "first", "-h", "firsthost", "busybox", w[0], w[1], w[2])
	ip := e.inspect("first").NetworkSettings.IPAddress
	require.NotEmpty(t, ip)
	// the bound /etc files' mount points are in the init layer, not in the
	// container's changes
	st, body := e.do("GET", "/containers/first/changes", nil)
	require.Equal(t, 200, st, string(body))
	require.NotContains(t, string(body), "/etc/hosts")
	require.NotContains(t, string(body), "/etc/resolv.conf")
	out = e.mustCLI("run", "--rm", "--network", "container:first", "busybox", "sh", "-c", "ip -4 -o addr show eth0; hostname")
	require.Contains(t, out, "inet "+ip+"/")
	require.True(t, strings.HasSuffix(out, "firsthost\n"), out)

	// --internal: no default route, and the default bridge's container is
	// out of reach (which the same probe reaches from the default bridge)
	e.mustCLI("network", "create", "--internal", "inner")
	out = e.mustCLI("run", "--rm", "--network", "inner", "busybox", "ip", "route")
	require.NotContains(t, out, "default")
	require.Equal(t, "hello from first\n", e.probe("bridge", ip))
	requireUnreachable(t, e.probe("inner", ip))
	e.mustCLI("network", "rm", "inner")

	// bad input: a clear error, nothing made
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--network", "nosuchnet"}, "network nosuchnet not found"},
		{[]string{"--network", "container:nosuch"}, "No such container"},
		{[]string{"--network", "container:first", "-p", "80"}, "conflicting options"},
		{[]string{"--ip", "10.1.2.3"}, "user defined networks only"},
		{[]string{"-p", "99999"}, "not a port number"},
	} {
		out, code := e.cli(append(append([]string{"run", "--rm"}, tc.args...), "busybox", "true")...)
		require.NotEqual(t, 0, code, out)
		require.Contains(t, out, tc.want, tc.args)
	}
	st, body = e.do("POST", "/networks/create", map[string]any{"Name": "bad", "IPAM": map[string]any{"Config": []map[string]string{{"Subnet": "10.5.5.1/24"}}}})
	require.Equal(t, 400, st, string(body))
	require.Contains(t, string(body), "host bits")
	// an overlay network needs a cluster store (docs/overlay-network.md)
	st, body = e.do("POST", "/networks/create", map[string]any{"Name": "bad", "Driver": "overlay"})
	require.Equal(t, 403, st, string(body))
	require.Contains(t, string(body), "not in a cluster")
	st, body = e.do("POST", "/networks/create", map[string]any{"Name": "bad", "Driver": "nosuchdriver"})
	require.Equal(t, 404, st, string(body))
	// a driver option the bridge driver does not apply is refused, named
	st, body = e.do("POST", "/networks/create", map[string]any{"Name": "bad", "Options": map[string]string{"com.docker.network.driver.mtu": "1400"}})
	require.Equal(t, 400, st, string(body))
	require.Contains(t, string(body), `com.docker.network.driver.mtu`)
	require.Contains(t, string(body), `is not supported by the bridge driver`)
	st, body = e.do("POST", "/networks/create", map[string]any{"Name": "clash", "IPAM": map[string]any{"Config": []map[string]string{{"Subnet": e.bip[:strings.LastIndex(e.bip, ".")] + ".0/24"}}}})
	require.Equal(t, 403, st, string(body))
	e.mustCLI("network", "create", "dup")
	st, _ = e.do("POST", "/networks/create", map[string]any{"Name": "dup"})
	require.Equal(t, 409, st)
	st, _ = e.do("DELETE", "/networks/bridge", nil)
	require.Equal(t, 403, st)
	e.mustCLI("network", "rm", "dup")
}

func TestNetworkPublishedPorts(t *testing.T) {
	e := newEngine(t)
	e.importBusybox("busybox:latest")
	w := webServer("published")
	e.mustCLI("run", "-d", "--name", "pub", "-p", "127.0.0.1::8000", "busybox", w[0], w[1], w[2])
	out := strings.TrimSpace(e.mustCLI("port", "pub", "8000"))
	require.True(t, strings.HasPrefix(out, "127.0.0.1:"), out)
	hostPort := strings.TrimPrefix(out, "127.0.0.1:")
	require.Equal(t, "hello from published\n", waitHTTP(t, "http://127.0.0.1:"+hostPort+"/"))

	// the list shows it; the port is held on the host
	var list []api.ContainerSummary
	e.must(200, "GET", "/containers/json", nil, &list)
	require.Len(t, list, 1)
	require.Equal(t, []api.Port{{IP: "127.0.0.1", PrivatePort: 8000, PublicPort: list[0].Ports[0].PublicPort, Type: "tcp"}}, list[0].Ports)
	_, err := net.Listen("tcp4", "127.0.0.1:"+hostPort)
	require.Error(t, err, "the published port is held")

	// a port already taken: a clear error, and nothing half-wired
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	taken := ln.Addr().(*net.TCPAddr).Port
	before := e.links()
	out, code := e.cli("run", "--rm", "-p", fmt.Sprintf("127.0.0.1:%d:80", taken), "busybox", "true")
	ln.Close()
	require.NotEqual(t, 0, code)
	require.Contains(t, out, fmt.Sprintf("port 127.0.0.1:%d/tcp is already in use", taken))
	require.Eventually(t, func() bool { return sameKeys(e.links(), before) }, 3*time.Second, 50*time.Millisecond, "links changed")

	// -P publishes the exposed ports
	e.must(201, "POST", "/containers/create?name=all", map[string]any{"Image": "busybox", "Cmd": webServer("all"),
		"ExposedPorts": map[string]any{"8000/tcp": map[string]any{}}, "HostConfig": map[string]any{"PublishAllPorts": true}}, nil)
	e.must(204, "POST", "/containers/all/start", nil, nil)
	ports := e.inspect("all").NetworkSettings.Ports["8000/tcp"]
	require.Len(t, ports, 1)
	require.Equal(t, "hello from all\n", waitHTTP(t, "http://127.0.0.1:"+ports[0].HostPort+"/"))

	// stop releases the port and its rule
	e.mustCLI("stop", "-t", "1", "pub")
	l2, err := net.Listen("tcp4", "127.0.0.1:"+hostPort)
	require.NoError(t, err, "port released on stop")
	l2.Close()
	rules, _ := exec.Command("nft", "list", "table", "inet", e.nftTable).CombinedOutput()
	require.NotContains(t, string(rules), "dport "+hostPort+" ")
	require.Contains(t, string(rules), "dport "+ports[0].HostPort+" ")
	e.mustCLI("rm", "-f", "pub", "all")
	rules, _ = exec.Command("nft", "list", "table", "inet", e.nftTable).CombinedOutput()
	require.NotContains(t, string(rules), "dnat ip to")
}

// links lists the host's links that this engine's daemon may have made.
func (e *engine) links() map[string]bool {
	out := map[string]bool{}
	for name := range hostLinks() {
		if daemonLink(name, e.bridge) {
			out[name] = true
		}
	}
	return out
}

func sameKeys(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

// A daemon restart (kill -9) keeps the networks, and running containers
// keep their addresses, names and published ports; a clean stop with no
// container running leaves no bridge, veth or rule.
func TestNetworkDaemonRestart(t *testing.T) {
	e := newEngine(t)
	e.importBusybox("busybox:latest")
	e.mustCLI("network", "create", "keep")
	w := webServer("kept")
	e.mustCLI("run", "-d", "--name", "kept", "--network", "keep", "-p", "127.0.0.1::8000", "busybox", w[0], w[1], w[2])
	hostPort := e.inspect("kept").NetworkSettings.Ports["8000/tcp"][0].HostPort
	ip := e.inspect("kept").NetworkSettings.Networks["keep"].IPAddress
	waitHTTP(t, "http://127.0.0.1:"+hostPort+"/")

	e.killDaemon()
	require.Equal(t, "hello from kept\n", waitHTTP(t, "http://"+ip+":8000/"), "connectivity without a daemon")
	e.start()
	var nets []api.Network
	e.must(200, "GET", "/networks", nil, &nets)
	names := []string{}
	for _, n := range nets {
		names = append(names, n.Name)
	}
	require.ElementsMatch(t, []string{"bridge", "host", "none", "keep"}, names)
	require.Equal(t, ip, e.inspect("kept").NetworkSettings.Networks["keep"].IPAddress)
	require.Equal(t, "hello from kept\n", waitHTTP(t, "http://127.0.0.1:"+hostPort+"/"))
	out := e.mustCLI("run", "--rm", "--network", "keep", "busybox", "wget", "-qO-", "http://kept:8000/")
	require.Equal(t, "hello from kept\n", out)
	// the new container did not get kept's address
	out = e.mustCLI("run", "--rm", "--network", "keep", "busybox", "sh", "-c", "ip -4 -o addr show eth0")
	require.NotContains(t, out, "inet "+ip+"/")

	// --rm containers come and go, then a clean stop: nothing is left
	e.mustCLI("rm", "-f", "kept")
	e.mustCLI("run", "--rm", "-p", "127.0.0.1::80", "busybox", "true")
	e.stop()
	e.checkNetworkLeaks()
	require.False(t, hostLinks()[e.bridge], "default bridge left after a clean stop")
	e.start() // the network comes back
	require.True(t, hostLinks()[e.bridge])
	e.must(200, "GET", "/networks/keep", nil, nil)
	e.mustCLI("network", "rm", "keep")
}

// The official docker CLI's network commands and run -p.
func TestNetworkDockerCLI(t *testing.T) {
	requireDockerCLI(t)
	e := newEngine(t)
	e.importBusybox("busybox:latest")
	run := func(args ...string) string {
		out, code := e.docker(args...)
		require.Equal(t, 0, code, "docker %s: %s", strings.Join(args, " "), out)
		return out
	}
	run("network", "create", "--subnet", "10.219.9.0/24", "dnet")
	out := run("network", "ls")
	require.Contains(t, out, "dnet")
	var nets []api.Network
	require.NoError(t, json.Unmarshal([]byte(run("network", "inspect", "dnet")), &nets))
	require.Equal(t, "10.219.9.0/24", nets[0].IPAM.Config[0].Subnet)
	w := webServer("docker")
	run("run", "-d", "--pull", "never", "--name", "dweb", "--network", "dnet", "--ip", "10.219.9.50", "-p", "127.0.0.1::8000", "busybox", w[0], w[1], w[2])
	out = strings.TrimSpace(run("port", "dweb", "8000"))
	require.True(t, strings.HasPrefix(out, "127.0.0.1:"), out)
	require.Equal(t, "hello from docker\n", waitHTTP(t, "http://"+out+"/"))
	out = run("run", "--rm", "--pull", "never", "--network", "dnet", "busybox", "wget", "-qO-", "http://dweb:8000/")
	require.Equal(t, "hello from docker\n", out)
	out = run("inspect", "-f", "{{.NetworkSettings.Networks.dnet.IPAddress}}", "dweb")
	require.Equal(t, "10.219.9.50\n", out)
	// connect and disconnect a running container, prune what is unused
	run("network", "create", "other")
	run("network", "connect", "--alias", "web-other", "other", "dweb")
	out = run("inspect", "-f", "{{len .NetworkSettings.Networks}} {{.NetworkSettings.Networks.other.Aliases}}", "dweb")
	require.Equal(t, "2 [web-other]\n", out)
	out = run("run", "--rm", "--pull", "never", "--network", "other", "busybox", "wget", "-qO-", "http://web-other:8000/")
	require.Equal(t, "hello from docker\n", out)
	run("network", "disconnect", "other", "dweb")
	require.Equal(t, "1\n", run("inspect", "-f", "{{len .NetworkSettings.Networks}}", "dweb"))
	run("network", "create", "unused")
	out = run("network", "prune", "-f")
	require.Contains(t, out, "unused")
	require.Contains(t, out, "other")
	require.NotContains(t, out, "dnet")
	run("rm", "-f", "dweb")
	run("network", "rm", "dnet")
}

// A saved network whose subnet overlaps a route when the daemon starts
// again is kept (listed, removable, saved) but cannot be joined.
func TestNetworkBrokenAfterRestart(t *testing.T) {
	e := newEngine(t)
	e.importBusybox("busybox:latest")
	e.mustCLI("network", "create", "--subnet", "10.219.11.0/24", "later")
	e.stop()
	dummy := fmt.Sprintf("mdtd%d", os.Getpid()%100000)
	out, err := exec.Command("ip", "link", "add", dummy, "type", "bridge").CombinedOutput() // any link that can hold an address
	require.NoError(t, err, string(out))
	t.Cleanup(func() { exec.Command("ip", "link", "del", dummy).Run() })
	out, err = exec.Command("ip", "addr", "add", "10.219.11.1/24", "dev", dummy).CombinedOutput()
	require.NoError(t, err, string(out))

	e.start()
	require.Contains(t, e.mustCLI("network", "ls"), "later")
	msg, code := e.cli("run", "--rm", "--network", "later", "busybox", "true")
	require.NotEqual(t, 0, code)
	require.Contains(t, msg, "network later cannot be used")
	e.stop()
	e.start() // still saved
	require.Contains(t, e.mustCLI("network", "ls"), "later")
	e.mustCLI("network", "rm", "later")
	require.NotContains(t, e.mustCLI("network", "ls"), "later")
}
