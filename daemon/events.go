package daemon

import (
	"context"
	"strings"
	"sync"
	"time"

	"minidock/api"
	"minidock/internal/errdefs"
	"minidock/network"
)

// events keeps the last eventBacklog events (for since=) and the
// subscribers of GET /events.
type events struct {
	mu   sync.Mutex
	past []api.EventMessage
	subs map[chan api.EventMessage]struct{}
}

const eventBacklog = 1024

// emit records a container event and sends it to every subscriber; a
// subscriber too slow to take it loses it. Callers hold d.mu.
func (d *Daemon) emit(c *Container, action string, attrs map[string]string) {
	now := time.Now()
	a := map[string]string{"image": c.ImageRef, "name": c.Name}
	for k, v := range c.Config.Labels {
		a[k] = v
	}
	for k, v := range attrs {
		a[k] = v
	}
	d.publish(api.EventMessage{
		Status: action, ID: c.ID, From: c.ImageRef, Type: "container", Action: action,
		Actor: api.EventActor{ID: c.ID, Attributes: a}, Scope: "local",
		Time: now.Unix(), TimeNano: now.UnixNano(),
	})
}

// emitNetwork records a network event: create, destroy, and connect or
// disconnect of container containerID.
func (d *Daemon) emitNetwork(n *network.Network, action, containerID string) {
	now := time.Now()
	a := map[string]string{"name": n.Name, "type": n.Driver}
	if containerID != "" {
		a["container"] = containerID
	}
	d.publish(api.EventMessage{Type: "network", Action: action, Actor: api.EventActor{ID: n.ID, Attributes: a},
		Scope: "local", Time: now.Unix(), TimeNano: now.UnixNano()})
}

// publish keeps m in the backlog and sends it to every subscriber.
func (d *Daemon) publish(m api.EventMessage) {
	e := &d.events
	e.mu.Lock()
	defer e.mu.Unlock()
	e.past = append(e.past, m)
	if len(e.past) > eventBacklog {
		e.past = e.past[len(e.past)-eventBacklog:]
	}
	for ch := range e.subs {
		select {
		case ch <- m:
		default:
		}
	}
}

// eventMatches applies the filters type, event (action), container (ID,
// ID prefix or name), network, volume, image and label.
func eventMatches(m api.EventMessage, f api.Filters) bool {
	return f.Match("type", func(v string) bool { return v == m.Type }) &&
		f.Match("event", func(v string) bool { return v == m.Action }) &&
		f.Match("container", func(v string) bool {
			if m.Type == "network" {
				return v != "" && strings.HasPrefix(m.Actor.Attributes["container"], v)
			}
			return m.Type == "container" && (strings.HasPrefix(m.Actor.ID, v) || m.Actor.Attributes["name"] == strings.TrimPrefix(v, "/"))
		}) &&
		f.Match("network", func(v string) bool {
			return m.Type == "network" && (strings.HasPrefix(m.Actor.ID, v) || m.Actor.Attributes["name"] == v)
		}) &&
		f.Match("volume", func(v string) bool { return m.Type == "volume" && strings.HasPrefix(m.Actor.ID, v) }) &&
		f.Match("image", func(v string) bool { return m.Actor.Attributes["image"] == v }) &&
		f.MatchLabels(m.Actor.Attributes)
}

// EventsOptions are GET /events's: the events since and until these
// times (unix nanoseconds; negative: unset), and filters type, event,
// container, network, volume, image and label.
type EventsOptions struct {
	Since, Until int64
	Filters      api.Filters
}

// Subscription is a client of the event stream: Past holds the recorded
// events since Since (the last 1024 are kept), Next the new ones.
type Subscription struct {
	Past []api.EventMessage
	ch   chan api.EventMessage
	o    EventsOptions
	d    *Daemon
}

// SubscribeEvents is GET /events.
func (d *Daemon) SubscribeEvents(o EventsOptions) (*Subscription, error) {
	if err := o.Filters.Only("type", "event", "container", "network", "volume", "image", "label"); err != nil {
		return nil, errdefs.Wrap(errdefs.InvalidParameter, err)
	}
	s := &Subscription{ch: make(chan api.EventMessage, 256), o: o, d: d}
	e := &d.events
	e.mu.Lock()
	defer e.mu.Unlock()
	if o.Since >= 0 {
		for _, m := range e.past {
			if m.TimeNano >= o.Since && (o.Until < 0 || m.TimeNano <= o.Until) && eventMatches(m, o.Filters) {
				s.Past = append(s.Past, m)
			}
		}
	}
	if e.subs == nil {
		e.subs = map[chan api.EventMessage]struct{}{}
	}
	e.subs[s.ch] = struct{}{}
	return s, nil
}

// Next waits for the next event that matches; false once Until has
// passed or ctx has ended.
func (s *Subscription) Next(ctx context.Context) (api.EventMessage, bool) {
	var deadline <-chan time.Time
	if s.o.Until >= 0 {
		wait := time.Until(time.Unix(0, s.o.Until))
		if wait <= 0 {
			return api.EventMessage{}, false
		}
		t := time.NewTimer(wait)
		defer t.Stop()
		deadline = t.C
	}
	for {
		select {
		case m := <-s.ch:
			if s.o.Until >= 0 && m.TimeNano > s.o.Until {
				return m, false
			}
			if eventMatches(m, s.o.Filters) {
				return m, true
			}
		case <-deadline:
			return api.EventMessage{}, false
		case <-ctx.Done():
			return api.EventMessage{}, false
		}
	}
}

// Close ends the subscription.
func (s *Subscription) Close() {
	e := &s.d.events
	e.mu.Lock()
	delete(e.subs, s.ch)
	e.mu.Unlock()
}
