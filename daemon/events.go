package daemon

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"minidock/api"
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
func (d *Daemon) emitNetwork(n *network, action, containerID string) {
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

// parseEventTime reads since/until: unix seconds, with an optional
// fraction, or an RFC 3339 time.
func parseEventTime(s string) (int64, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UnixNano(), nil
	}
	sec, frac, _ := strings.Cut(s, ".")
	n, err := strconv.ParseInt(sec, 10, 64)
	if err != nil {
		return 0, badRequest("invalid time %q: unix seconds or RFC 3339", s)
	}
	ns := n * 1e9
	if frac != "" {
		frac = (frac + "000000000")[:9]
		f, err := strconv.ParseInt(frac, 10, 64)
		if err != nil {
			return 0, badRequest("invalid time %q: unix seconds or RFC 3339", s)
		}
		ns += f
	}
	return ns, nil
}

// eventMatches applies the filters type, event (action), container (ID,
// ID prefix or name), image and label.
func eventMatches(m api.EventMessage, f map[string][]string) bool {
	return anyMatch(f["type"], func(v string) bool { return v == m.Type }) &&
		anyMatch(f["event"], func(v string) bool { return v == m.Action }) &&
		anyMatch(f["container"], func(v string) bool {
			if m.Type == "network" {
				return v != "" && strings.HasPrefix(m.Actor.Attributes["container"], v)
			}
			return m.Type == "container" && (strings.HasPrefix(m.Actor.ID, v) || m.Actor.Attributes["name"] == strings.TrimPrefix(v, "/"))
		}) &&
		anyMatch(f["network"], func(v string) bool {
			return m.Type == "network" && (strings.HasPrefix(m.Actor.ID, v) || m.Actor.Attributes["name"] == v)
		}) &&
		anyMatch(f["image"], func(v string) bool { return m.Actor.Attributes["image"] == v }) &&
		allLabels(m.Actor.Attributes, f["label"])
}

// systemEvents is GET /events?since=&until=&filters=: the recorded
// events since `since`, then new ones as they happen, until `until` or
// the client hangs up.
func (d *Daemon) systemEvents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var since, until int64 = -1, -1
	var err error
	if s := q.Get("since"); s != "" {
		if since, err = parseEventTime(s); err != nil {
			writeError(w, err)
			return
		}
	}
	if s := q.Get("until"); s != "" {
		if until, err = parseEventTime(s); err != nil {
			writeError(w, err)
			return
		}
	}
	filters, err := parseFilters(q.Get("filters"))
	if err != nil {
		writeError(w, err)
		return
	}
	for k := range filters {
		switch k {
		case "type", "event", "container", "network", "image", "label":
		default:
			writeError(w, badRequest("invalid filter '%s'", k))
			return
		}
	}
	ch := make(chan api.EventMessage, 256)
	e := &d.events
	e.mu.Lock()
	var backlog []api.EventMessage
	if since >= 0 {
		for _, m := range e.past {
			if m.TimeNano >= since && (until < 0 || m.TimeNano <= until) {
				backlog = append(backlog, m)
			}
		}
	}
	if e.subs == nil {
		e.subs = map[chan api.EventMessage]struct{}{}
	}
	e.subs[ch] = struct{}{}
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		delete(e.subs, ch)
		e.mu.Unlock()
	}()

	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	for _, m := range backlog {
		if eventMatches(m, filters) {
			enc.Encode(m)
		}
	}
	w.(http.Flusher).Flush()
	var deadline <-chan time.Time
	if until >= 0 {
		wait := time.Until(time.Unix(0, until))
		if wait <= 0 {
			return
		}
		deadline = time.After(wait)
	}
	for {
		select {
		case m := <-ch:
			if until >= 0 && m.TimeNano > until {
				return
			}
			if !eventMatches(m, filters) {
				continue
			}
			if err := enc.Encode(m); err != nil {
				return
			}
			w.(http.Flusher).Flush()
		case <-deadline:
			return
		case <-r.Context().Done():
			return
		}
	}
}
