package tests

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"minidock/internal/testutil"
)

// The API over the network (docs/security.md): a daemon listens on TCP
// only with mutual TLS (or on loopback with --insecure-tcp-loopback);
// clients reach it with -H tcp://, the TLS flags or docker's environment;
// one client drives several daemons; the unix socket is 0660
// root:minidock.

// tlsDaemon is an engine that also listens on tcp://addr with mutual
// TLS, its certificates signed by ca; certs is a DOCKER_CERT_PATH for a
// client of it.
type tlsDaemon struct {
	*engine
	addr  string
	ca    *testCA
	certs string
}

func newTLSDaemon(t *testing.T) *tlsDaemon {
	ca := newTestCA(t, "minidock test CA")
	from, to := validNow()
	srv := ca.issue(t, "minidock daemon", true, from, to)
	dir := writeCertDir(t, ca, srv)
	addr := freeTCPAddr(t)
	e := newEngineAt(t, "", "-H", "tcp://"+addr, "--tlsverify", "--tlscacert", filepath.Join(dir, "ca.pem"),
		"--tlscert", filepath.Join(dir, "cert.pem"), "--tlskey", filepath.Join(dir, "key.pem"))
	return &tlsDaemon{engine: e, addr: addr, ca: ca, certs: writeCertDir(t, ca, ca.issue(t, "client", false, from, to))}
}

// tlsFlags are the client flags of a cert dir.
func tlsFlags(dir string) []string {
	return []string{"--tlsverify", "--tlscacert", filepath.Join(dir, "ca.pem"), "--tlscert", filepath.Join(dir, "cert.pem"), "--tlskey", filepath.Join(dir, "key.pem")}
}

// clientEnv runs the minidock client with args and environment env
// (added to this process's, the connection variables removed).
func runClient(t *testing.T, env []string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); k != "MINIDOCK_HOST" && !strings.HasPrefix(k, "DOCKER_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), 0
}

// A daemon refuses, before it makes anything, a TCP socket that anyone
// could drive: one without TLS (unless on loopback and asked for), TLS
// without client certificates, and certificates that do not load.
func TestDaemonRefusesInsecureTCP(t *testing.T) {
	ca := newTestCA(t, "ca")
	from, to := validNow()
	good := writeCertDir(t, ca, ca.issue(t, "daemon", true, from, to))
	expired := writeCertDir(t, ca, ca.issue(t, "daemon", true, time.Now().Add(-48*time.Hour), time.Now().Add(-24*time.Hour)))
	other := writeCertDir(t, ca, newTestCA(t, "other").issue(t, "daemon", true, from, to))
	addr := freeTCPAddr(t)
	tlsArgs := func(dir string) []string {
		return []string{"--tlsverify", "--tlscacert", filepath.Join(dir, "ca.pem"), "--tlscert", filepath.Join(dir, "cert.pem"), "--tlskey", filepath.Join(dir, "key.pem")}
	}
	mismatched := append(tlsArgs(good)[:5], "--tlskey", filepath.Join(other, "key.pem"))
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-H", "tcp://0.0.0.0:" + strings.Split(addr, ":")[1]}, "needs mutual TLS"},
		{[]string{"-H", "tcp://0.0.0.0:" + strings.Split(addr, ":")[1], "--insecure-tcp-loopback"}, "needs mutual TLS"},
		{[]string{"-H", "tcp://" + addr}, "needs --insecure-tcp-loopback"},
		{[]string{"-H", "tcp://" + addr, "--tlscert", filepath.Join(good, "cert.pem")}, "--tlscert needs --tlsverify"},
		{[]string{"-H", "tcp://" + addr, "--tlsverify"}, "--tlsverify needs --tlscacert"},
		{append([]string{"-H", "tcp://" + addr}, tlsArgs(expired)...), "not now"},
		{append([]string{"-H", "tcp://" + addr}, mismatched...), "key.pem"},
		{append([]string{"-H", "tcp://" + addr, "--tlsverify", "--tlscacert", "/nonexistent/ca.pem"}, tlsArgs(good)[3:]...), "/nonexistent/ca.pem"},
		{append([]string{"-H", "tcp://" + addr, "--tlsverify", "--tlscacert", filepath.Join(good, "key.pem")}, tlsArgs(good)[3:]...), "no PEM certificate"},
		{[]string{"-H", "udp://" + addr}, "want unix:///path or tcp://ADDR:PORT"},
	} {
		root := t.TempDir()
		args := append([]string{"daemon", "--data-root", filepath.Join(root, "data"), "--exec-root", filepath.Join(root, "exec")}, tc.args...)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		out, err := exec.CommandContext(ctx, binary, args...).CombinedOutput()
		cancel()
		if err == nil || !strings.Contains(string(out), tc.want) {
			t.Errorf("daemon %s: %v, %q; want a refusal saying %q", strings.Join(tc.args, " "), err, out, tc.want)
		}
		if ents, _ := os.ReadDir(root); len(ents) != 0 {
			t.Errorf("daemon %s left %v behind", strings.Join(tc.args, " "), ents)
		}
	}
}

// Mutual TLS: the minidock client drives the daemon over TCP with the
// TLS flags and with docker's environment (a run, whose attach is
// hijacked over TLS); clients without a certificate, with one from
// another CA, with an expired one, with TLS 1.1, and plain HTTP are
// all turned away before the API.
func TestDaemonMutualTLS(t *testing.T) {
	d := newTLSDaemon(t)
	d.importBusybox("busybox:latest")
	host := "tcp://" + d.addr

	out, code := runClient(t, nil, append(append([]string{"-H", host}, tlsFlags(d.certs)...), "run", "--rm", "busybox", "echo", "hi over tls")...)
	if code != 0 || out != "hi over tls\n" {
		t.Fatalf("run over TLS: exit %d: %q", code, out)
	}
	env := []string{"DOCKER_HOST=" + host, "DOCKER_TLS_VERIFY=1", "DOCKER_CERT_PATH=" + d.certs}
	if out, code := runClient(t, env, "create", "--name", "by-env", "busybox", "true"); code != 0 {
		t.Fatalf("create with DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH: exit %d: %s", code, out)
	}
	// MINIDOCK_HOST comes before DOCKER_HOST (and DOCKER_TLS_VERIFY does
	// not apply to a unix socket)
	out, code = runClient(t, append(env, "MINIDOCK_HOST=unix://"+d.sock), "ps", "-a", "--format", "{{.Names}}")
	if code != 0 || strings.TrimSpace(out) != "by-env" {
		t.Errorf("ps with MINIDOCK_HOST over DOCKER_HOST: exit %d: %q", code, out)
	}
	// -H comes before both
	out, code = runClient(t, append(env, "MINIDOCK_HOST=unix:///nonexistent.sock"), append(append([]string{"-H", host}, tlsFlags(d.certs)...), "ps", "-aq")...)
	if code != 0 || len(strings.Fields(out)) != 1 {
		t.Errorf("ps with -H over MINIDOCK_HOST: exit %d: %q", code, out)
	}

	// The refusals. A good client first, so that a refusal is the
	// certificate's doing and not the daemon's being away.
	from, to := validNow()
	good := d.ca.issue(t, "client", false, from, to)
	expired := d.ca.issue(t, "client", false, time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour))
	foreign := newTestCA(t, "another CA").issue(t, "client", false, from, to)
	if st, err := tlsPing(d.addr, tlsClientConfig(t, d.ca, &good)); err != nil || st != "200 OK" {
		t.Fatalf("a client with a good certificate: %q, %v", st, err)
	}
	old := tlsClientConfig(t, d.ca, &good)
	old.MinVersion, old.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
	for name, cfg := range map[string]*tls.Config{
		"no certificate":                  tlsClientConfig(t, d.ca, nil),
		"a certificate of another CA":     tlsClientConfig(t, d.ca, &foreign),
		"an expired certificate":          tlsClientConfig(t, d.ca, &expired),
		"TLS 1.1 with a good certificate": old,
	} {
		if st, err := tlsPing(d.addr, cfg); err == nil {
			t.Errorf("a client with %s was answered %q", name, st)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
	// plain HTTP to the TLS port: a 400 from the TLS layer, never the API
	conn, err := net.DialTimeout("tcp", d.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(conn, "GET /_ping HTTP/1.1\r\nHost: d\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err == nil {
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode == 200 || string(body) == "OK" {
			t.Errorf("plain HTTP to the TLS port was answered %s %q", resp.Status, body)
		}
	}
	conn.Close()
	// the minidock client with a foreign certificate says what happened
	foreignDir := writeCertDir(t, d.ca, foreign)
	out, code = runClient(t, nil, append(append([]string{"-H", host}, tlsFlags(foreignDir)...), "ps")...)
	if code == 0 || !strings.Contains(out, "tls") {
		t.Errorf("client with a foreign certificate: exit %d: %q", code, out)
	}
	// and one whose files do not load names them
	out, code = runClient(t, nil, "-H", host, "--tlsverify", "--tlscacert", "/nonexistent/ca.pem", "ps")
	if code == 0 || !strings.Contains(out, "/nonexistent/ca.pem") {
		t.Errorf("client with a missing CA file: exit %d: %q", code, out)
	}
	out, code = runClient(t, nil, "-H", "unix://"+d.sock, "--tlsverify", "ps")
	if code == 0 || !strings.Contains(out, "needs a tcp:// host") {
		t.Errorf("--tlsverify with a unix socket: exit %d: %q", code, out)
	}
}

// tlsPing is GET /_ping over TLS with cfg: the status line, or why there
// is none.
func tlsPing(addr string, cfg *tls.Config) (string, error) {
	tr := &http.Transport{TLSClientConfig: cfg}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	resp, err := c.Get("https://" + addr + "/_ping")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(body) != "OK" {
		return resp.Status, fmt.Errorf("answered %s %q", resp.Status, body)
	}
	return resp.Status, nil
}

// The official docker CLI (28) with --tlsverify drives minidock over TCP:
// version, a run with its attach, ps; and through DOCKER_HOST,
// DOCKER_TLS_VERIFY and DOCKER_CERT_PATH.
func TestDockerCLIOverTLS(t *testing.T) {
	requireDockerCLI(t)
	d := newTLSDaemon(t)
	d.importBusybox("busybox:latest")
	docker := func(env []string, args ...string) (string, int) {
		cmd := exec.Command(dockerCLI, args...)
		cmd.Env = append(os.Environ(), append(env, "DOCKER_CONFIG="+t.TempDir())...)
		return d.command(cmd)
	}
	flags := append([]string{"-H", "tcp://" + d.addr}, tlsFlags(d.certs)...)
	if out, code := docker(nil, append(flags, "version", "--format", "{{.Server.Os}}")...); code != 0 || strings.TrimSpace(out) != "linux" {
		t.Fatalf("docker --tlsverify version: exit %d: %s", code, out)
	}
	if out, code := docker(nil, append(flags, "run", "--rm", "--name", "over-tls", "busybox", "echo", "docker over tls")...); code != 0 || out != "docker over tls\n" {
		t.Fatalf("docker --tlsverify run: exit %d: %q", code, out)
	}
	env := []string{"DOCKER_HOST=tcp://" + d.addr, "DOCKER_TLS_VERIFY=1", "DOCKER_CERT_PATH=" + d.certs}
	if out, code := docker(env, "run", "-d", "--name", "by-env", "busybox", "sleep", "60"); code != 0 {
		t.Fatalf("docker run -d with DOCKER_HOST: exit %d: %s", code, out)
	}
	if out, code := docker(env, "ps", "--format", "{{.Names}}"); code != 0 || strings.TrimSpace(out) != "by-env" {
		t.Errorf("docker ps with DOCKER_HOST: exit %d: %q", code, out)
	}
	// without a certificate docker is refused too
	if out, code := docker(nil, "-H", "tcp://"+d.addr, "--tlsverify", "--tlscacert", filepath.Join(d.certs, "ca.pem"),
		"--tlscert", "/nonexistent", "--tlskey", "/nonexistent", "ps"); code == 0 {
		t.Errorf("docker without a client certificate: %s", out)
	}
}

// One client, several daemons: the same minidock binary makes a
// container on each, by -H per call (one over the unix socket, one over
// TCP with TLS), and each daemon knows only its own.
func TestOneClientTwoDaemons(t *testing.T) {
	one := newEngine(t)
	two := newTLSDaemon(t)
	hosts := map[string][]string{
		"one": {"-H", "unix://" + one.sock},
		"two": append([]string{"-H", "tcp://" + two.addr}, tlsFlags(two.certs)...),
	}
	for _, e := range []*engine{one, two.engine} {
		e.importBusybox("busybox:latest")
	}
	for name, h := range hosts {
		if out, code := runClient(t, nil, append(h, "run", "--name", "on-"+name, "busybox", "echo", name)...); code != 0 || out != name+"\n" {
			t.Fatalf("run on daemon %s: exit %d: %q", name, code, out)
		}
	}
	for name, h := range hosts {
		out, code := runClient(t, nil, append(h, "ps", "-a", "--format", "{{.Names}}")...)
		if code != 0 || strings.TrimSpace(out) != "on-"+name {
			t.Errorf("ps -a on daemon %s: exit %d: %q", name, code, out)
		}
	}
}

// A daemon on a loopback TCP port without TLS, when asked for by name.
func TestInsecureLoopbackTCP(t *testing.T) {
	addr := freeTCPAddr(t)
	e := newEngineAt(t, "", "-H", "tcp://"+addr, "--insecure-tcp-loopback")
	out, code := runClient(t, nil, "-H", "tcp://"+addr, "version")
	if code != 0 || !strings.Contains(out, "Server:") {
		t.Errorf("version over plain loopback TCP: exit %d: %q\n%s", code, out, e.log())
	}
}

// The unix socket is 0660 root:minidock: a user outside the group is
// told why the daemon cannot be reached; a member of the group reaches
// it. The user (and the group, if there is none) are made by the test.
func TestSocketPermissionDenied(t *testing.T) {
	testutil.RequireRoot(t)
	name := fmt.Sprintf("mdsock%d", os.Getpid()%100000)
	madeGroup := false
	if _, err := user.LookupGroup("minidock"); err != nil {
		if out, err := exec.Command("groupadd", "minidock").CombinedOutput(); err != nil {
			t.Fatalf("groupadd minidock: %v: %s", err, out)
		}
		madeGroup = true
	}
	if out, err := exec.Command("useradd", "--no-create-home", "--shell", "/bin/sh", name).CombinedOutput(); err != nil {
		t.Fatalf("useradd %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() {
		exec.Command("userdel", name).Run()
		if madeGroup {
			exec.Command("groupdel", "minidock").Run()
		}
	})
	e := newEngine(t) // after the group exists: its socket is root:minidock
	var st syscall.Stat_t
	if err := syscall.Stat(e.sock, &st); err != nil {
		t.Fatal(err)
	}
	g, _ := user.LookupGroup("minidock")
	if st.Mode&0o777 != 0o660 || st.Uid != 0 || fmt.Sprint(st.Gid) != g.Gid {
		t.Errorf("socket %s: mode %o, owner %d:%d; want 0660 root:minidock (%s)", e.sock, st.Mode&0o777, st.Uid, st.Gid, g.Gid)
	}
	asUser := func() (string, int) {
		cmd := exec.Command("runuser", "-u", name, "--", binary, "-H", "unix://"+e.sock, "ps")
		cmd.Env = []string{"PATH=/usr/bin:/bin", "HOME=/nonexistent"}
		return e.command(cmd)
	}
	out, code := asUser()
	if code == 0 || !strings.Contains(out, "permission denied") || !strings.Contains(out, "is the daemon running, are you in the minidock group") {
		t.Errorf("a user outside the minidock group: exit %d: %q", code, out)
	}
	if out, err := exec.Command("usermod", "-aG", "minidock", name).CombinedOutput(); err != nil {
		t.Fatalf("usermod: %v: %s", err, out)
	}
	if out, code := asUser(); code != 0 || !strings.Contains(out, "CONTAINER ID") {
		t.Errorf("a member of the minidock group: exit %d: %q", code, out)
	}
}
