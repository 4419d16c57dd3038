package client

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"minidock/api"
)

// The transport behind New: tcp:// with mutual TLS, for the day the
// daemon listens on TCP (the unix socket is exercised against the real
// daemon by tests/). A TLS server on loopback that demands a client
// certificate answers a typed call, an error reply and a hijacked attach;
// a client without a certificate is turned away.
func TestTCPMutualTLS(t *testing.T) {
	ca, caKey := newCert(t, nil, nil, "minidock test CA", true)
	serverCert, serverKey := newCert(t, ca, caKey, "127.0.0.1", false)
	clientCert, clientKey := newCert(t, ca, caKey, "client", false)
	pool := x509.NewCertPool()
	pool.AddCert(ca)

	mux := http.NewServeMux()
	mux.HandleFunc("GET /v"+api.Version+"/containers/json", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("all") != "1" || r.URL.Query().Get("filters") != `{"label":["a=b"]}` {
			http.Error(w, `{"message":"query `+r.URL.RawQuery+`"}`, 400)
			return
		}
		json.NewEncoder(w).Encode([]api.ContainerSummary{{ID: "abc", Names: []string{"/one"}}})
	})
	mux.HandleFunc("GET /v"+api.Version+"/containers/{name}/json", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(404)
		io.WriteString(w, `{"message":"No such container: `+r.PathValue("name")+`"}`)
	})
	mux.HandleFunc("POST /v"+api.Version+"/containers/{name}/attach", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Upgrade") != "tcp" {
			http.Error(w, "no upgrade", 400)
			return
		}
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer conn.Close()
		buf.WriteString("HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n")
		buf.Flush()
		line, _ := buf.ReadString('\n')
		api.WriteFrame(conn, api.Stdout, []byte("echo: "+line))
	})
	srv := httptest.NewUnstartedServer(mux)
	srv.TLS = &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{serverCert.Raw}, PrivateKey: serverKey}},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
	}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused client below
	srv.StartTLS()
	defer srv.Close()
	host := "tcp://" + srv.Listener.Addr().String()

	c, err := New(Config{Host: host, TLS: &tls.Config{
		RootCAs:      pool,
		Certificates: []tls.Certificate{{Certificate: [][]byte{clientCert.Raw}, PrivateKey: clientKey}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	list, err := c.ContainerList(ctx, ContainerListOptions{All: true, Limit: -1, Filters: Filters{"label": {"a=b"}}})
	if err != nil || len(list) != 1 || list[0].ID != "abc" {
		t.Fatalf("ContainerList = %+v, %v", list, err)
	}
	_, err = c.ContainerInspect(ctx, "nosuch")
	if !IsNotFound(err) || err.Error() != "Error response from daemon: No such container: nosuch" {
		t.Errorf("inspect of a missing container: %v", err)
	}
	conn, err := c.ContainerAttach(ctx, "one", AttachOptions{Stdin: true, Stdout: true})
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(conn, "hello\n")
	var out strings.Builder
	if err := api.Demux(bufio.NewReader(conn), &out, io.Discard); err != nil || out.String() != "echo: hello\n" {
		t.Errorf("attach over TLS: %q, %v", out.String(), err)
	}
	conn.Close()

	// no client certificate: the handshake fails, and says so
	anon, err := New(Config{Host: host, TLS: &tls.Config{RootCAs: pool}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := anon.ContainerList(ctx, ContainerListOptions{Limit: -1}); err == nil {
		t.Error("a client without a certificate was served")
	}
}

func TestNewRefusesBadHosts(t *testing.T) {
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{Host: "/run/minidock.sock"}, "want unix:///path or tcp://host:port"},
		{Config{Host: "unix://"}, "want unix:///path"},
		{Config{Host: "tcp://nohost"}, "tcp://HOST:PORT"},
		{Config{Host: "unix:///x.sock", TLS: &tls.Config{}}, "TLS needs a tcp:// host"},
	} {
		if _, err := New(c.cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%+v) = %v, want %q", c.cfg, err, c.want)
		}
	}
}

// newCert makes a certificate for name signed by parent (self-signed when
// parent is nil).
func newCert(t *testing.T, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, name string, isCA bool) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IsCA:         isCA, BasicConstraintsValid: true,
	}
	if ip := net.ParseIP(name); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert, key
}
