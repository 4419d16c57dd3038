package cluster

import (
	"context"
	"encoding/json"
	"net/netip"
	"sort"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// State is the whole cluster as of one etcd revision: what a member needs
// to program its data path (members' VTEPs, endpoints' addresses and MACs)
// and to answer DNS. Watch hands out a fresh State each time; it is never
// changed afterwards, so a receiver may keep it.
type State struct {
	Revision  int64
	Members   map[string]Member              // by name
	Networks  map[string]Network             // by ID
	Endpoints map[string]map[string]Endpoint // by network ID, then endpoint ID
}

func newState() *State {
	return &State{Members: map[string]Member{}, Networks: map[string]Network{}, Endpoints: map[string]map[string]Endpoint{}}
}

// Lookup answers a DNS question on network netID: the addresses of the
// endpoints whose name or alias is name (case-insensitive), sorted.
func (st *State) Lookup(netID, name string) []netip.Addr {
	var addrs []netip.Addr
	for _, ep := range st.Endpoints[netID] {
		if strings.EqualFold(ep.Name, name) {
			addrs = append(addrs, ep.Addr)
			continue
		}
		for _, a := range ep.Aliases {
			if strings.EqualFold(a, name) {
				addrs = append(addrs, ep.Addr)
				break
			}
		}
	}
	sort.Slice(addrs, func(i, j int) bool { return addrs[i].Less(addrs[j]) })
	return addrs
}

// EventKind says what changed.
type EventKind string

const (
	MemberJoined    EventKind = "member-joined" // also a member that registered again
	MemberLeft      EventKind = "member-left"   // closed, or its lease expired
	NetworkCreated  EventKind = "network-created"
	NetworkRemoved  EventKind = "network-removed"
	EndpointAdded   EventKind = "endpoint-added"
	EndpointRemoved EventKind = "endpoint-removed"
)

// Event is one change: Name is the member's name, the network's ID or the
// endpoint's ID; Network is the endpoint's network.
type Event struct {
	Kind    EventKind
	Name    string
	Network string
}

// Watch follows the cluster until ctx ends: it reads the whole state at
// one revision, calls fn with it (and an event for everything in it), then
// watches every key from the next revision on and calls fn after each
// batch of changes with the new state and the events. fn is called from
// one goroutine, one call at a time.
//
// If etcd goes away, the watch waits for it; if the watch cannot resume
// where it stopped (the revisions were compacted, the server lost its
// leader), Watch reads the whole state again and reports the difference as
// events. So fn always ends up with etcd's state, whatever happened.
// Watch returns ctx's error.
func (s *Store) Watch(ctx context.Context, fn func(st *State, events []Event)) error {
	seen := newState()
	for {
		st, err := s.readState(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			select { // etcd away: try again
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Second):
			}
			continue
		}
		fn(st.clone(), diff(seen, st))
		seen = st

		wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
		wch := s.cli.Watch(wctx, s.prefix, clientv3.WithPrefix(), clientv3.WithRev(st.Revision+1))
		for resp := range wch {
			if resp.Canceled || resp.Err() != nil {
				break // read everything again
			}
			var evs []Event
			for _, ev := range resp.Events {
				if e, ok := seen.apply(s.prefix, ev); ok {
					evs = append(evs, e)
				}
			}
			seen.Revision = resp.Header.Revision
			if len(evs) > 0 {
				fn(seen.clone(), evs)
			}
		}
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// readState reads every key of the prefix at one revision.
func (s *Store) readState(ctx context.Context) (*State, error) {
	rctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	resp, err := s.cli.Get(rctx, s.prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, s.failed("read the cluster state", err)
	}
	st := newState()
	st.Revision = resp.Header.Revision
	for _, kv := range resp.Kvs {
		st.apply(s.prefix, &clientv3.Event{Type: mvccpb.PUT, Kv: kv})
	}
	return st, nil
}

// apply changes st by one etcd event and says what it was. Keys it does
// not know (addresses/, or a record it cannot parse) change nothing.
func (st *State) apply(prefix string, ev *clientv3.Event) (Event, bool) {
	rest := strings.TrimPrefix(string(ev.Kv.Key), prefix)
	kind, name, _ := strings.Cut(rest, "/")
	put := ev.Type == mvccpb.PUT
	switch kind {
	case "members":
		if !put {
			delete(st.Members, name)
			return Event{Kind: MemberLeft, Name: name}, true
		}
		var m Member
		if json.Unmarshal(ev.Kv.Value, &m) != nil {
			return Event{}, false
		}
		st.Members[name] = m
		return Event{Kind: MemberJoined, Name: name}, true
	case "networks":
		if !put {
			delete(st.Networks, name)
			return Event{Kind: NetworkRemoved, Name: name}, true
		}
		var n Network
		if json.Unmarshal(ev.Kv.Value, &n) != nil {
			return Event{}, false
		}
		st.Networks[name] = n
		return Event{Kind: NetworkCreated, Name: name}, true
	case "endpoints":
		netID, id, ok := strings.Cut(name, "/")
		if !ok {
			return Event{}, false
		}
		if !put {
			delete(st.Endpoints[netID], id)
			if len(st.Endpoints[netID]) == 0 {
				delete(st.Endpoints, netID)
			}
			return Event{Kind: EndpointRemoved, Name: id, Network: netID}, true
		}
		var ep Endpoint
		if json.Unmarshal(ev.Kv.Value, &ep) != nil {
			return Event{}, false
		}
		if st.Endpoints[netID] == nil {
			st.Endpoints[netID] = map[string]Endpoint{}
		}
		st.Endpoints[netID][id] = ep
		return Event{Kind: EndpointAdded, Name: id, Network: netID}, true
	}
	return Event{}, false
}

// clone is a deep copy of st (records are values; maps are copied).
func (st *State) clone() *State {
	c := newState()
	c.Revision = st.Revision
	for k, v := range st.Members {
		c.Members[k] = v
	}
	for k, v := range st.Networks {
		c.Networks[k] = v
	}
	for n, eps := range st.Endpoints {
		c.Endpoints[n] = make(map[string]Endpoint, len(eps))
		for k, v := range eps {
			c.Endpoints[n][k] = v
		}
	}
	return c
}

// diff is the events that lead from old to new: what a member missed
// while it was not watching.
func diff(old, new *State) []Event {
	var evs []Event
	for name := range old.Members {
		if _, ok := new.Members[name]; !ok {
			evs = append(evs, Event{Kind: MemberLeft, Name: name})
		}
	}
	for name, m := range new.Members {
		if o, ok := old.Members[name]; !ok || o.Since != m.Since || o.Addr != m.Addr {
			evs = append(evs, Event{Kind: MemberJoined, Name: name})
		}
	}
	for id := range old.Networks {
		if _, ok := new.Networks[id]; !ok {
			evs = append(evs, Event{Kind: NetworkRemoved, Name: id})
		}
	}
	for id := range new.Networks {
		if _, ok := old.Networks[id]; !ok {
			evs = append(evs, Event{Kind: NetworkCreated, Name: id})
		}
	}
	for netID, eps := range old.Endpoints {
		for id := range eps {
			if _, ok := new.Endpoints[netID][id]; !ok {
				evs = append(evs, Event{Kind: EndpointRemoved, Name: id, Network: netID})
			}
		}
	}
	for netID, eps := range new.Endpoints {
		for id := range eps {
			if _, ok := old.Endpoints[netID][id]; !ok {
				evs = append(evs, Event{Kind: EndpointAdded, Name: id, Network: netID})
			}
		}
	}
	return evs
}
