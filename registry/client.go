// Package registry is the client side of the Registry HTTP API v2 (the OCI
// distribution API): Pull resolves a name to a manifest, fetches each blob
// by digest, verifies it and unpacks it into the image store; Push
// uploads the blobs a registry lacks and then the manifest; Login checks
// credentials. Auth (basic, and Bearer tokens from the WWW-Authenticate
// challenge) is in auth.go, Docker's config.json in config.go, progress
// messages in progress.go. The server is package registry/server.
// See docs/registry.md.
package registry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure a Client. The zero value works: HTTPS with the
// system's CAs, plain HTTP only for loopback registries.
type Options struct {
	// InsecureRegistries may be reached over plain HTTP, or over HTTPS
	// without verifying the certificate: "host:port", "host", or a CIDR
	// ("10.0.0.0/8") that a literal IP host falls in. 127.0.0.0/8, ::1 and
	// "localhost" are always insecure, as in Docker.
	InsecureRegistries []string
	// CertsDir holds <host[:port]>/ca.crt (and other *.crt) as extra
	// roots, and <host>/*.cert + *.key as a client certificate.
	// Default /etc/docker/certs.d.
	CertsDir string
	// MaxConcurrentDownloads bounds the layers pulled at once (default 3),
	// MaxConcurrentUploads those pushed at once (default 5), as Docker.
	MaxConcurrentDownloads int
	MaxConcurrentUploads   int
	// DialTimeout bounds connecting (default 30s), ResponseTimeout waiting
	// for a response's headers (default 60s), IdleTimeout a body that
	// stops sending (default 60s).
	DialTimeout     time.Duration
	ResponseTimeout time.Duration
	IdleTimeout     time.Duration
	// UserAgent is sent with every request.
	UserAgent string
	// DialContext replaces the dialer (tests map names to 127.0.0.1).
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
}

// DefaultCertsDir is where per-registry CAs are looked up by default.
const DefaultCertsDir = "/etc/docker/certs.d"

// Client pulls and pushes images. It remembers, for its lifetime, how each
// registry was reached (HTTPS or HTTP, its auth challenge) and the tokens
// fetched. It is safe for concurrent use.
type Client struct {
	opts   Options
	mu     sync.Mutex
	hosts  map[string]*host
	tokens map[string]cachedToken
}

// NewClient makes a Client.
func NewClient(opts Options) *Client {
	if opts.CertsDir == "" {
		opts.CertsDir = DefaultCertsDir
	}
	if opts.MaxConcurrentDownloads <= 0 {
		opts.MaxConcurrentDownloads = 3
	}
	if opts.MaxConcurrentUploads <= 0 {
		opts.MaxConcurrentUploads = 5
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = 30 * time.Second
	}
	if opts.ResponseTimeout <= 0 {
		opts.ResponseTimeout = 60 * time.Second
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = 60 * time.Second
	}
	if opts.UserAgent == "" {
		opts.UserAgent = "minidock"
	}
	return &Client{opts: opts, hosts: map[string]*host{}, tokens: map[string]cachedToken{}}
}

// host is one registry as reached: its base URL, the HTTP client with its
// TLS settings, and the auth challenge its /v2/ answered (nil: none).
type host struct {
	name   string // "localhost:5000", "registry-1.docker.io"
	base   string // "http://localhost:5000"
	client *http.Client
	mu     sync.Mutex
	chal   *challenge
}

func (h *host) challenge() *challenge {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.chal
}

func (h *host) setChallenge(c *challenge) {
	h.mu.Lock()
	h.chal = c
	h.mu.Unlock()
}

// registryHost maps a reference's domain to the host that serves it:
// Docker Hub's API lives at registry-1.docker.io.
func registryHost(domain string) string {
	if domain == "docker.io" || domain == "index.docker.io" {
		return "registry-1.docker.io"
	}
	return domain
}

// isInsecure tells whether name (host[:port]) may use plain HTTP or an
// unverified certificate: loopback and "localhost" always, others when
// listed in Options.InsecureRegistries (by name or CIDR). No name is
// looked up in DNS to decide.
func (c *Client) isInsecure(name string) bool {
	hostOnly := name
	if h, _, err := net.SplitHostPort(name); err == nil {
		hostOnly = h
	}
	hostOnly = strings.Trim(hostOnly, "[]")
	if hostOnly == "localhost" {
		return true
	}
	ip := net.ParseIP(hostOnly)
	if ip != nil && ip.IsLoopback() {
		return true
	}
	for _, entry := range c.opts.InsecureRegistries {
		if entry == name || entry == hostOnly {
			return true
		}
		if _, cidr, err := net.ParseCIDR(entry); err == nil && ip != nil && cidr.Contains(ip) {
			return true
		}
	}
	return false
}

// tlsConfig builds the TLS settings for a registry: the system's roots
// plus <CertsDir>/<name>/*.crt, a client certificate from *.cert/*.key,
// and no verification at all for an insecure registry.
func (c *Client) tlsConfig(name string, insecure bool) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if insecure {
		cfg.InsecureSkipVerify = true
		return cfg, nil
	}
	dir := filepath.Join(c.opts.CertsDir, name)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return cfg, nil // no certs.d entry: the system's roots
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		switch {
		case strings.HasSuffix(e.Name(), ".crt"):
			b, err := os.ReadFile(p)
			if err != nil {
				return nil, fmt.Errorf("registry %s: CA %s: %w", name, p, err)
			}
			if !pool.AppendCertsFromPEM(b) {
				return nil, fmt.Errorf("registry %s: CA %s: no PEM certificate in it", name, p)
			}
		case strings.HasSuffix(e.Name(), ".cert"):
			key := strings.TrimSuffix(p, ".cert") + ".key"
			pair, err := tls.LoadX509KeyPair(p, key)
			if err != nil {
				return nil, fmt.Errorf("registry %s: client certificate %s: %w", name, p, err)
			}
			cfg.Certificates = append(cfg.Certificates, pair)
		}
	}
	cfg.RootCAs = pool
	return cfg, nil
}

// httpClient makes the HTTP client for one registry (or token server).
func (c *Client) httpClient(tlsCfg *tls.Config) *http.Client {
	dial := c.opts.DialContext
	if dial == nil {
		dial = (&net.Dialer{Timeout: c.opts.DialTimeout, KeepAlive: 30 * time.Second}).DialContext
	}
	return &http.Client{Transport: &http.Transport{
		DialContext:           dial,
		TLSClientConfig:       tlsCfg,
		TLSHandshakeTimeout:   c.opts.DialTimeout,
		ResponseHeaderTimeout: c.opts.ResponseTimeout,
		ExpectContinueTimeout: time.Second,
		MaxIdleConnsPerHost:   8,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}}
}

// host finds how to reach registry name, once per Client: GET /v2/ over
// HTTPS; for an insecure registry, then over plain HTTP if HTTPS failed.
// The answer (200, or 401 with a challenge) says which auth it wants.
func (c *Client) host(ctx context.Context, name string) (*host, error) {
	c.mu.Lock()
	h, ok := c.hosts[name]
	c.mu.Unlock()
	if ok {
		return h, nil
	}
	insecure := c.isInsecure(name)
	tlsCfg, err := c.tlsConfig(name, insecure)
	if err != nil {
		return nil, err
	}
	h = &host{name: name, client: c.httpClient(tlsCfg)}
	schemes := []string{"https"}
	if insecure {
		schemes = append(schemes, "http")
	}
	var errs []error
	for _, scheme := range schemes {
		h.base = scheme + "://" + name
		err := c.ping(ctx, h)
		if err == nil {
			c.mu.Lock()
			if old, ok := c.hosts[name]; ok {
				h = old
			} else {
				c.hosts[name] = h
			}
			c.mu.Unlock()
			return h, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("registry %s unreachable: %w", name, errors.Join(errs...))
}

// ping is GET /v2/: 200 (open) or 401 with a WWW-Authenticate challenge.
func (c *Client) ping(ctx context.Context, h *host) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.base+"/v2/", nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", c.opts.UserAgent)
	resp, err := h.client.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s/v2/: %w", h.base, err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	switch resp.StatusCode {
	case http.StatusOK:
		return nil
	case http.StatusUnauthorized:
		ch, err := parseChallenge(resp.Header.Get("WWW-Authenticate"))
		if err != nil {
			return fmt.Errorf("GET %s/v2/: %w", h.base, err)
		}
		h.setChallenge(ch)
		return nil
	}
	return fmt.Errorf("GET %s/v2/: %s (not a registry API v2 endpoint)", h.base, resp.Status)
}

// request is one call to a registry: what to send, and the credentials
// and scopes that authorise it.
type request struct {
	method string
	url    string            // absolute
	header map[string]string // extra headers
	body   func() io.Reader  // nil: none; called again for a retry
	length int64             // body length, -1 unknown
	auth   *AuthConfig
	scopes []string
}

// do sends a request, authorised as the host's challenge asks (basic
// credentials, or a Bearer token for the scopes). A 401 names a new or
// wider challenge: the token is fetched again and the request resent,
// once. The response body is bounded by Options.IdleTimeout: a registry
// that stops sending fails the read instead of hanging it.
func (c *Client) do(ctx context.Context, h *host, r request) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		rctx, cancel := context.WithCancel(ctx)
		var body io.Reader
		if r.body != nil {
			body = r.body()
		}
		req, err := http.NewRequestWithContext(rctx, r.method, r.url, body)
		if err != nil {
			cancel()
			return nil, err
		}
		if r.body != nil {
			req.ContentLength = r.length
		}
		req.Header.Set("User-Agent", c.opts.UserAgent)
		for k, v := range r.header {
			req.Header.Set(k, v)
		}
		if err := c.authorize(rctx, h, req, r.auth, r.scopes); err != nil {
			cancel()
			return nil, err
		}
		resp, err := h.client.Do(req)
		if err != nil {
			cancel()
			return nil, fmt.Errorf("%s %s: %w", r.method, redact(r.url), err)
		}
		if resp.StatusCode == http.StatusUnauthorized && attempt == 0 {
			// A first challenge, or an expired token or one lacking a
			// scope: take the challenge as answered, fetch fresh
			// credentials, and try once more.
			if ch, err := parseChallenge(resp.Header.Get("WWW-Authenticate")); err == nil {
				h.setChallenge(ch)
				c.forgetTokens(h.name)
				resp.Body.Close()
				cancel()
				continue
			}
		}
		resp.Body = newIdleBody(resp.Body, c.opts.IdleTimeout, cancel, r.method+" "+redact(r.url))
		return resp, nil
	}
}

// redact drops a URL's query (upload state, signatures) from messages.
func redact(u string) string {
	if i := strings.IndexByte(u, '?'); i >= 0 {
		return u[:i]
	}
	return u
}

// idleBody is a response body that cancels its request when no byte
// arrives for a while, and says so.
type idleBody struct {
	rc      io.ReadCloser
	timer   *time.Timer
	idle    time.Duration
	cancel  context.CancelFunc
	expired atomic.Bool
	what    string
}

func newIdleBody(rc io.ReadCloser, idle time.Duration, cancel context.CancelFunc, what string) *idleBody {
	b := &idleBody{rc: rc, idle: idle, cancel: cancel, what: what}
	b.timer = time.AfterFunc(idle, func() {
		b.expired.Store(true)
		cancel()
	})
	return b
}

func (b *idleBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if n > 0 {
		b.timer.Reset(b.idle)
	}
	if err != nil && err != io.EOF && b.expired.Load() {
		err = fmt.Errorf("%s: no data for %s: %w", b.what, b.idle, context.DeadlineExceeded)
	}
	return n, err
}

func (b *idleBody) Close() error {
	b.timer.Stop()
	err := b.rc.Close()
	b.cancel()
	return err
}
