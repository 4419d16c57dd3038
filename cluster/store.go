// Package cluster is the state that several minidock daemons share through
// etcd (the --cluster-store): who is in the cluster (members, each under a
// lease it keeps alive), the overlay networks (name, subnet, VNI), the
// addresses handed out on them and the endpoints that hold them. Every
// write that must not collide with another member's is an etcd transaction
// that compares before it writes; every member follows the others' writes
// through one watch. The data path that acts on this state is package vxlan.
// See docs/overlay-network.md.
//
// The keys, under Config.Prefix ("/minidock/v1/" by default):
//
//	members/<name>                  Member, attached to the member's lease
//	networks/<id>                   Network
//	addresses/<network id>/<ip>     the endpoint ID that holds ip
//	endpoints/<network id>/<id>     Endpoint
//
// Values are JSON, so `etcdctl get --prefix /minidock/` is readable.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// DefaultPrefix is where a production daemon keeps its keys.
const DefaultPrefix = "/minidock/v1/"

// The kinds of error a caller may want to tell apart (errors.Is). Every
// error of this package also says what was being done and on what.
var (
	// ErrUnavailable: etcd did not answer in time. Nothing was changed;
	// the same call may succeed once etcd is back.
	ErrUnavailable = errors.New("cluster store unavailable")
	ErrNotFound    = errors.New("not found")
	ErrConflict    = errors.New("conflict") // a name, VNI, subnet, address or member already taken
	ErrInUse       = errors.New("in use")   // a network that still has endpoints
	ErrInvalid     = errors.New("invalid")  // bad input
)

// kindError is a message of its own that errors.Is matches to one of the
// kinds above, so that messages read naturally ("VNI 4096 is used by
// network blue") and still classify.
type kindError struct {
	kind error
	msg  string
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }

func errorf(kind error, format string, a ...any) error {
	return &kindError{kind: kind, msg: fmt.Sprintf(format, a...)}
}

// Config says where etcd is and how long to wait for it.
type Config struct {
	// Endpoints are etcd's client addresses, host:port each
	// (ParseStoreURL turns --cluster-store into this).
	Endpoints []string
	// Prefix of every key; DefaultPrefix if empty. It must end in "/".
	Prefix string
	// Timeout bounds each request and the first contact; 5s if zero.
	Timeout time.Duration
}

// Store is a connection to the cluster store. It is safe for use by
// several goroutines.
type Store struct {
	cli    *clientv3.Client
	prefix string
	cfg    Config
}

// ParseStoreURL parses the daemon's --cluster-store value,
// "etcd://HOST:PORT[,HOST:PORT...]", into etcd client endpoints.
func ParseStoreURL(s string) ([]string, error) {
	rest, ok := strings.CutPrefix(s, "etcd://")
	if !ok {
		return nil, errorf(ErrInvalid, "cluster store %q: want etcd://HOST:PORT[,HOST:PORT...]", s)
	}
	var eps []string
	for _, hp := range strings.Split(rest, ",") {
		i := strings.LastIndexByte(hp, ':')
		if i <= 0 || i == len(hp)-1 || strings.ContainsAny(hp, "/?#@ ") {
			return nil, errorf(ErrInvalid, "cluster store %q: %q is not HOST:PORT", s, hp)
		}
		eps = append(eps, hp)
	}
	return eps, nil
}

// Open connects to etcd and checks that it answers (one read, bounded by
// cfg.Timeout). An etcd that does not answer is an ErrUnavailable naming
// the endpoints; the caller can go on without a cluster (serving its
// local networks) and try again later.
//
// The client is told to log nothing: its errors come back through the
// calls, each saying what was being done.
func Open(cfg Config) (*Store, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, errorf(ErrInvalid, "cluster store: no etcd endpoint given")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if !strings.HasPrefix(cfg.Prefix, "/") || !strings.HasSuffix(cfg.Prefix, "/") {
		return nil, errorf(ErrInvalid, "cluster store: key prefix %q must start and end with '/'", cfg.Prefix)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   cfg.Endpoints,
		DialTimeout: cfg.Timeout,
		Logger:      zap.NewNop(),
		// Keep-alive pings let a watch notice a dead server.
		DialKeepAliveTime:    5 * time.Second,
		DialKeepAliveTimeout: cfg.Timeout,
		// Try to reconnect at least every second: gRPC's default backoff
		// grows to two minutes, so after a long outage the store would
		// stay unusable that long after etcd is back.
		DialOptions: []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
			MinConnectTimeout: cfg.Timeout,
		})},
	})
	if err != nil {
		return nil, fmt.Errorf("cluster store etcd://%s: %w", strings.Join(cfg.Endpoints, ","), err)
	}
	s := &Store{cli: cli, prefix: cfg.Prefix, cfg: cfg}
	ctx, cancel := s.ctx()
	defer cancel()
	if _, err := cli.Get(ctx, s.prefix+"members/", clientv3.WithPrefix(), clientv3.WithCountOnly()); err != nil {
		cli.Close()
		return nil, s.failed("connect", err)
	}
	return s, nil
}

// Close ends the connection (a Registration made through it is not
// revoked: it expires with its lease).
func (s *Store) Close() error { return s.cli.Close() }

// URL is the store as --cluster-store names it: etcd://HOST:PORT[,...].
func (s *Store) URL() string { return "etcd://" + strings.Join(s.cfg.Endpoints, ",") }

// ctx is one request's deadline.
func (s *Store) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), s.cfg.Timeout)
}

// failed turns a failed etcd call into this package's error: a deadline
// that passed (etcd down or unreachable) is ErrUnavailable.
func (s *Store) failed(op string, err error) error {
	if code := status.Code(err); errors.Is(err, context.DeadlineExceeded) ||
		code == codes.DeadlineExceeded || code == codes.Unavailable {
		return errorf(ErrUnavailable, "%s: cluster store %s did not answer within %s", op, s.URL(), s.cfg.Timeout)
	}
	return fmt.Errorf("%s: cluster store: %w", op, err)
}

// The keys.
func (s *Store) memberKey(name string) string        { return s.prefix + "members/" + name }
func (s *Store) networkKey(id string) string         { return s.prefix + "networks/" + id }
func (s *Store) addressesKey(netID string) string    { return s.prefix + "addresses/" + netID + "/" }
func (s *Store) endpointsKey(netID string) string    { return s.prefix + "endpoints/" + netID + "/" }
func (s *Store) endpointKey(netID, id string) string { return s.endpointsKey(netID) + id }

// plainName: a letter or digit, then letters, digits, '_', '.' or '-' —
// safe in a key, an interface seed and a file name.
func plainName(s string) bool {
	for i, r := range s {
		alnum := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
		if !alnum && (i == 0 || (r != '_' && r != '.' && r != '-')) {
			return false
		}
	}
	return s != "" && len(s) <= 128
}
