package client

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// TLSFiles name the PEM files of mutual TLS with a daemon: the CA that
// signed the daemon's certificate, and the client's own certificate and
// key, which the daemon checks against its CA.
type TLSFiles struct {
	CACert, Cert, Key string
}

// Config loads the files into a client TLS configuration: TLS 1.2 at
// least, the daemon's certificate verified against CACert (and its name
// against the host dialled), the client's certificate shown on request.
// Each file that does not load is an error naming it.
func (f TLSFiles) Config() (*tls.Config, error) {
	data, err := os.ReadFile(f.CACert)
	if err != nil {
		return nil, fmt.Errorf("load CA certificate (--tlscacert): %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("load CA certificate %s (--tlscacert): no PEM certificate in it", f.CACert)
	}
	cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return nil, fmt.Errorf("load client certificate %s with key %s (--tlscert, --tlskey): %w", f.Cert, f.Key, err)
	}
	if leaf := cert.Leaf; leaf != nil && time.Now().After(leaf.NotAfter) {
		return nil, fmt.Errorf("client certificate %s expired on %s", f.Cert, leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool, Certificates: []tls.Certificate{cert}}, nil
}

// unreachable says why the daemon could not be reached: a socket this
// user may not open is named as such, with the usual cause.
func (c *Client) unreachable(err error) error {
	if errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM) {
		return fmt.Errorf("permission denied while trying to connect to the minidock daemon socket at %s: is the daemon running, are you in the minidock group? (%w)", c.host, err)
	}
	return fmt.Errorf("cannot reach the minidock daemon at %s (is it running?): %w", c.host, err)
}
