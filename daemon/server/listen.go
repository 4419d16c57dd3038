package server

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Where the daemon listens (-H, repeatable): unix:///path, a socket
// whose owner is root and group minidock (when that group exists), mode
// 0660; and tcp://ADDR:PORT, which only mutual TLS may open (--tlsverify
// with a CA that signs the clients' certificates), or, on a loopback
// address only, --insecure-tcp-loopback. Whoever reaches the API is root
// on the host (docs/security.md): a TCP port without client certificates
// would hand that to anyone who can route a packet to it.

// ListenOptions are the daemon's listening flags.
type ListenOptions struct {
	Hosts []string // -H: unix:///path, tcp://ADDR:PORT
	// --tlsverify: every tcp:// host speaks TLS 1.2 or newer and asks
	// each client for a certificate signed by TLSCACert.
	TLSVerify                  bool
	TLSCACert, TLSCert, TLSKey string
	// --insecure-tcp-loopback: a tcp:// host on a loopback address
	// without TLS (for tests and for tunnels that do their own
	// authentication).
	InsecureTCPLoopback bool
}

// listen takes every host's socket, or none. Each listener's connections
// count against lim (below TLS, so that a connection stuck in its
// handshake counts too).
func listen(o *ListenOptions, lim *connLimiter) ([]net.Listener, error) {
	tcfg, err := o.serverTLS()
	if err != nil {
		return nil, err
	}
	var lns []net.Listener
	for _, h := range o.Hosts {
		var ln net.Listener
		switch {
		case strings.HasPrefix(h, "unix://"):
			ln, err = listenUnix(h, lim)
		case strings.HasPrefix(h, "tcp://"):
			ln, err = listenTCP(h, tcfg, o.InsecureTCPLoopback, lim)
		default:
			err = fmt.Errorf("host %q: want unix:///path or tcp://ADDR:PORT", h)
		}
		if err != nil {
			closeAll(lns)
			return nil, err
		}
		lns = append(lns, ln)
	}
	return lns, nil
}

func closeAll(lns []net.Listener) {
	for _, l := range lns {
		l.Close()
		if u, ok := l.Addr().(*net.UnixAddr); ok {
			os.Remove(u.Name)
		}
	}
}

// listenUnix listens on unix://PATH, mode 0660, group minidock when that
// group exists. A socket file left by a dead daemon is replaced; one a
// live daemon answers on is refused.
func listenUnix(host string, lim *connLimiter) (net.Listener, error) {
	path, ok := strings.CutPrefix(host, "unix://")
	if !ok || path == "" {
		return nil, fmt.Errorf("host %q: want unix:///path", host)
	}
	if c, err := net.Dial("unix", path); err == nil {
		c.Close()
		return nil, fmt.Errorf("listen on %s: another daemon answers on this socket", path)
	}
	dir := filepath.Dir(path)
	_, statErr := os.Stat(dir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		if statErr != nil {
			os.Remove(dir) // ours, and empty
		}
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	gid := 0
	if g, err := user.LookupGroup("minidock"); err == nil {
		gid, _ = strconv.Atoi(g.Gid)
	}
	if err := os.Chown(path, 0, gid); err != nil {
		ln.Close()
		return nil, fmt.Errorf("chown %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		ln.Close()
		return nil, fmt.Errorf("chmod %s: %w", path, err)
	}
	return lim.listener(ln), nil
}

// listenTCP listens on tcp://ADDR:PORT: with tcfg, every connection is
// TLS with a client certificate; without it only on a loopback address
// and when insecureLoopback says so.
func listenTCP(host string, tcfg *tls.Config, insecureLoopback bool, lim *connLimiter) (net.Listener, error) {
	addr := strings.TrimPrefix(host, "tcp://")
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("host %q: want tcp://ADDR:PORT: %w", host, err)
	}
	if tcfg == nil {
		switch {
		case !isLoopback(h):
			return nil, fmt.Errorf("host %q: a TCP socket needs mutual TLS (--tlsverify --tlscacert CA --tlscert CERT --tlskey KEY): whoever reaches the API is root on this host; only a loopback address may go without, with --insecure-tcp-loopback", host)
		case !insecureLoopback:
			return nil, fmt.Errorf("host %q: a TCP socket without TLS needs --insecure-tcp-loopback (any local user could then drive the daemon as root), or use --tlsverify", host)
		}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", host, err)
	}
	if tcfg == nil {
		return lim.listener(ln), nil
	}
	return tls.NewListener(lim.listener(ln), tcfg), nil
}

// isLoopback reports whether a listening address is a loopback one:
// 127.0.0.0/8, ::1 or the name localhost (resolved by /etc/hosts).
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// serverTLS loads the TLS configuration of the tcp:// hosts: nil without
// --tlsverify. TLS 1.2 at least; a client must show a certificate that
// the CA signed, valid now, for client authentication.
func (o *ListenOptions) serverTLS() (*tls.Config, error) {
	if !o.TLSVerify {
		for flag, v := range map[string]string{"--tlscacert": o.TLSCACert, "--tlscert": o.TLSCert, "--tlskey": o.TLSKey} {
			if v != "" {
				return nil, fmt.Errorf("%s needs --tlsverify: minidock serves TCP with mutual TLS only", flag)
			}
		}
		return nil, nil
	}
	if o.TLSCACert == "" || o.TLSCert == "" || o.TLSKey == "" {
		return nil, errors.New("--tlsverify needs --tlscacert (the CA of the clients' certificates), --tlscert and --tlskey (the daemon's certificate and key)")
	}
	pool, err := loadCertPool(o.TLSCACert)
	if err != nil {
		return nil, fmt.Errorf("--tlscacert: %w", err)
	}
	cert, err := loadKeyPair(o.TLSCert, o.TLSKey)
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
	}, nil
}

// loadCertPool reads the PEM certificates of file as a pool of CAs.
func loadCertPool(file string) (*x509.CertPool, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("load CA certificate: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("load CA certificate %s: no PEM certificate in it", file)
	}
	return pool, nil
}

// loadKeyPair reads a PEM certificate and its private key, and refuses
// one that is not valid now.
func loadKeyPair(certFile, keyFile string) (tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return cert, fmt.Errorf("load certificate %s with key %s: %w", certFile, keyFile, err)
	}
	if leaf := cert.Leaf; leaf != nil {
		if now := time.Now(); now.Before(leaf.NotBefore) || now.After(leaf.NotAfter) {
			return cert, fmt.Errorf("certificate %s is valid from %s to %s, not now", certFile,
				leaf.NotBefore.UTC().Format(time.RFC3339), leaf.NotAfter.UTC().Format(time.RFC3339))
		}
	}
	return cert, nil
}

// describe lists the hosts for the daemon's log, saying how each TCP one
// is guarded.
func (o *ListenOptions) describe() string {
	var out []string
	for _, h := range o.Hosts {
		switch {
		case !strings.HasPrefix(h, "tcp://"):
		case o.TLSVerify:
			h += " (mutual TLS)"
		default:
			h += " (no TLS: --insecure-tcp-loopback)"
		}
		out = append(out, h)
	}
	return strings.Join(out, ", ")
}
