package registry

import (
	"context"
	"crypto/tls"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"minidock/internal/peers"
	"minidock/internal/testimage"
	"minidock/registry/server"
)

func TestIsInsecure(t *testing.T) {
	c := NewClient(Options{InsecureRegistries: []string{"myreg:5000", "10.0.0.0/8", "plain.lan"}})
	for name, want := range map[string]bool{
		"127.0.0.1:5000": true, "127.9.9.9": true, "[::1]:5000": true, "localhost:5000": true,
		"myreg:5000": true, "myreg:5001": false, "10.1.2.3:5000": true, "11.1.2.3:5000": false,
		"plain.lan:443": true, "registry-1.docker.io": false, "localhost.evil.example:5000": false,
	} {
		if got := c.isInsecure(name); got != want {
			t.Errorf("isInsecure(%q) = %v, want %v", name, got, want)
		}
	}
}

// TestTLS: a registry that is not insecure is reached over HTTPS only,
// verified with the system's CAs plus certs.d/<host>/ca.crt; loopback
// registries and those named insecure may use plain HTTP. The name
// registry.test is mapped to 127.0.0.1 by the dialer (no DNS).
func TestTLS(t *testing.T) {
	caPEM, _, _, cert := peers.Certificate(t, "registry.test", "127.0.0.1")
	srv, err := server.New(server.Options{Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	tlsSrv := httptest.NewUnstartedServer(srv)
	tlsSrv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	tlsSrv.StartTLS()
	defer tlsSrv.Close()
	plainSrv := httptest.NewServer(srv)
	defer plainSrv.Close()
	tlsAddr := strings.TrimPrefix(tlsSrv.URL, "https://")
	plainAddr := strings.TrimPrefix(plainSrv.URL, "http://")
	_, tlsPort, _ := net.SplitHostPort(tlsAddr)
	_, plainPort, _ := net.SplitHostPort(plainAddr)
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		h, p, _ := net.SplitHostPort(addr)
		if h == "registry.test" {
			addr = net.JoinHostPort("127.0.0.1", p)
		} else if net.ParseIP(h) == nil {
			t.Errorf("the client looked up %q", addr)
		}
		return (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, network, addr)
	}
	ti := testimage.Make(t, 30, 1, 4<<10, true, false, "amd64")
	testimage.PushRaw(t, plainAddr, "tls/app", "1", ti)
	certs := t.TempDir()

	pull := func(opts Options, ref string) error {
		opts.DialContext, opts.CertsDir = dial, certs
		_, err := testClient(opts).Pull(ctxT(t), newStore(t), ref, PullOptions{})
		return err
	}
	secure := "registry.test:" + tlsPort + "/tls/app:1"
	if err := pull(Options{}, secure); err == nil || !strings.Contains(err.Error(), "certificate signed by unknown authority") {
		t.Errorf("HTTPS with an unknown CA: %v", err)
	}
	os.MkdirAll(filepath.Join(certs, "registry.test:"+tlsPort), 0o755)
	os.WriteFile(filepath.Join(certs, "registry.test:"+tlsPort, "ca.crt"), caPEM, 0o644)
	if err := pull(Options{}, secure); err != nil {
		t.Errorf("HTTPS with certs.d/registry.test:%s/ca.crt: %v", tlsPort, err)
	}
	// Loopback: HTTPS without verification, or plain HTTP.
	if err := pull(Options{}, tlsAddr+"/tls/app:1"); err != nil {
		t.Errorf("HTTPS on 127.0.0.1 (insecure by default): %v", err)
	}
	if err := pull(Options{}, plainAddr+"/tls/app:1"); err != nil {
		t.Errorf("HTTP on 127.0.0.1: %v", err)
	}
	// A named registry speaking plain HTTP: only when named insecure.
	plainNamed := "registry.test:" + plainPort + "/tls/app:1"
	if err := pull(Options{}, plainNamed); err == nil || !strings.Contains(err.Error(), "server gave HTTP response to HTTPS client") {
		t.Errorf("plain HTTP for a registry not named insecure: %v", err)
	}
	if err := pull(Options{InsecureRegistries: []string{"registry.test:" + plainPort}}, plainNamed); err != nil {
		t.Errorf("plain HTTP for a registry named insecure: %v", err)
	}
}
