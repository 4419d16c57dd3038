package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"sort"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// Member is one daemon of the cluster, as the others see it.
type Member struct {
	// Name is unique in the cluster (a daemon uses its host name).
	Name string `json:"name"`
	// Addr is --cluster-advertise: the member's address on the underlay,
	// where the others send its containers' VXLAN packets (its VTEP).
	Addr netip.Addr `json:"addr"`
	// Routes are the IPv4 routes of the member's host (and the subnet of
	// its gateway bridge): no overlay subnet may overlap one of them.
	Routes []netip.Prefix `json:"routes,omitempty"`
	// Since is when the member registered.
	Since time.Time `json:"since"`
}

func (m Member) validate() error {
	if !plainName(m.Name) {
		return errorf(ErrInvalid, "member name %q: want letters, digits, '_', '.' or '-'", m.Name)
	}
	if !m.Addr.Is4() || m.Addr.IsUnspecified() || m.Addr.IsLoopback() {
		return errorf(ErrInvalid, "member %s: advertise address %v is not an IPv4 address other members can reach", m.Name, m.Addr)
	}
	return nil
}

// Registration is this daemon's membership: its record in etcd, attached
// to a lease that a goroutine keeps alive. When the daemon dies, nobody
// renews the lease; etcd deletes the record when the lease's TTL runs out,
// and every other member's watch sees the member leave.
type Registration struct {
	s      *Store
	m      Member
	ttl    int64 // seconds
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	lease   clientv3.LeaseID
	lastErr error
}

// Register puts m into the cluster under a lease of ttl (rounded up to
// whole seconds; etcd raises a TTL below its minimum, about 1.5 s) and
// keeps the lease alive until Close. A name held by a live member with
// another address is an ErrConflict; the same name at the same address is
// this daemon restarted before its old lease ran out, and takes the record
// over.
//
// If etcd is away for longer than the TTL, the lease is lost and the
// record deleted; the keep-alive goroutine registers again as soon as etcd
// answers.
func (s *Store) Register(m Member, ttl time.Duration) (*Registration, error) {
	if err := m.validate(); err != nil {
		return nil, err
	}
	if ttl < time.Second {
		return nil, errorf(ErrInvalid, "member %s: lease TTL %s is under a second", m.Name, ttl)
	}
	if m.Since.IsZero() {
		m.Since = time.Now().UTC()
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Registration{s: s, m: m, ttl: int64((ttl + time.Second - 1) / time.Second), cancel: cancel, done: make(chan struct{})}
	if err := r.register(); err != nil {
		cancel()
		return nil, err
	}
	go r.keepAlive(ctx)
	return r, nil
}

// register grants a lease and writes the member's record under it, in a
// transaction: put if the key is absent; else, if the record there has the
// same address, replace it (compare-and-swap on its mod revision).
func (r *Registration) register() error {
	m := r.Member()
	s, key := r.s, r.s.memberKey(m.Name)
	op := "register member " + m.Name
	val, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	ctx, cancel := s.ctx()
	defer cancel()
	lease, err := s.cli.Grant(ctx, r.ttl)
	if err != nil {
		return s.failed(op+": grant lease", err)
	}
	put := clientv3.OpPut(key, string(val), clientv3.WithLease(lease.ID))
	for try := 0; try < 10; try++ {
		resp, err := s.cli.Txn(ctx).
			If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
			Then(put).Else(clientv3.OpGet(key)).Commit()
		if err != nil {
			return s.failed(op, err)
		}
		if resp.Succeeded {
			return r.setLease(lease.ID)
		}
		kvs := resp.Responses[0].GetResponseRange().Kvs
		if len(kvs) == 0 {
			continue // deleted meanwhile: try the create again
		}
		var old Member
		if err := json.Unmarshal(kvs[0].Value, &old); err != nil {
			return fmt.Errorf("%s: read %s: %w", op, key, err)
		}
		if old.Addr != m.Addr {
			s.cli.Revoke(ctx, lease.ID)
			return errorf(ErrConflict, "%s: the name is held by a live member at %v (this one advertises %v)", op, old.Addr, m.Addr)
		}
		resp, err = s.cli.Txn(ctx).
			If(clientv3.Compare(clientv3.ModRevision(key), "=", kvs[0].ModRevision)).
			Then(put).Commit()
		if err != nil {
			return s.failed(op, err)
		}
		if resp.Succeeded {
			return r.setLease(lease.ID)
		}
	}
	s.cli.Revoke(ctx, lease.ID)
	return errorf(ErrConflict, "%s: the record kept changing under us", op)
}

func (r *Registration) setLease(id clientv3.LeaseID) error {
	r.mu.Lock()
	r.lease, r.lastErr = id, nil
	r.mu.Unlock()
	return nil
}

// keepAlive renews the lease (the client sends a renewal every TTL/3);
// when the lease is lost, it registers again, retrying every second.
func (r *Registration) keepAlive(ctx context.Context) {
	defer close(r.done)
	for {
		r.mu.Lock()
		lease := r.lease
		r.mu.Unlock()
		if ch, err := r.s.cli.KeepAlive(ctx, lease); err == nil {
			for range ch {
			}
		}
		// The channel closes when ctx ends, when the store is closed, or
		// when no renewal got through for a whole TTL: then the lease is
		// gone.
		for ctx.Err() == nil && r.s.cli.Ctx().Err() == nil {
			err := r.register()
			if err == nil {
				break
			}
			r.mu.Lock()
			r.lastErr = err
			r.mu.Unlock()
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
		if ctx.Err() != nil || r.s.cli.Ctx().Err() != nil {
			return
		}
	}
}

// Err is the last failure to register again after the lease was lost, or
// nil while the member is registered.
func (r *Registration) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastErr
}

// Member is the record this registration keeps.
func (r *Registration) Member() Member {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.m
}

// SetRoutes replaces the routes in the member's record (a bridge network
// made or removed on its host changes them), under the same lease, so
// that a network created anywhere afterwards is checked against them. If
// the lease has just been lost, the keep-alive registers the new record.
func (r *Registration) SetRoutes(routes []netip.Prefix) error {
	r.mu.Lock()
	r.m.Routes = routes
	m, lease := r.m, r.lease
	r.mu.Unlock()
	op := "update the routes of member " + m.Name
	val, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	ctx, cancel := r.s.ctx()
	defer cancel()
	if _, err := r.s.cli.Put(ctx, r.s.memberKey(m.Name), string(val), clientv3.WithLease(lease)); err != nil {
		return r.s.failed(op, err)
	}
	return nil
}

// Stop stops the renewals and leaves the record to its lease: the member
// leaves the cluster when the TTL runs out, unless the daemon is back
// before that and takes its record over (Register). A daemon that stops
// while its containers keep running uses it, so that the other members
// keep reaching them across a restart.
func (r *Registration) Stop() {
	r.cancel()
	<-r.done
}

// Close stops the renewals and revokes the lease, so the member leaves the
// cluster at once. If etcd does not answer, the member leaves when the
// lease expires, and Close says so.
func (r *Registration) Close() error {
	r.cancel()
	<-r.done
	r.mu.Lock()
	lease := r.lease
	r.mu.Unlock()
	ctx, cancel := r.s.ctx()
	defer cancel()
	if _, err := r.s.cli.Revoke(ctx, lease); err != nil {
		return r.s.failed("leave the cluster as "+r.m.Name+" (the lease will expire by itself)", err)
	}
	return nil
}

// Members lists the live members, by name.
func (s *Store) Members() ([]Member, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	resp, err := s.cli.Get(ctx, s.prefix+"members/", clientv3.WithPrefix())
	if err != nil {
		return nil, s.failed("list members", err)
	}
	var ms []Member
	for _, kv := range resp.Kvs {
		var m Member
		if err := json.Unmarshal(kv.Value, &m); err != nil {
			return nil, fmt.Errorf("list members: %s: %w", kv.Key, err)
		}
		ms = append(ms, m)
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Name < ms[j].Name })
	return ms, nil
}
