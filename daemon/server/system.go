package server

import (
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"minidock/daemon"
	"minidock/internal/errdefs"
)

func (rt router) version(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, rt.d.Version(r.Context()))
}

func (rt router) info(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, rt.d.Info(r.Context()))
}

// events is GET /events?since=&until=&filters=: the recorded events since
// `since`, then new ones as they happen, until `until` or the client
// hangs up.
func (rt router) events(w http.ResponseWriter, r *http.Request) {
	o := daemon.EventsOptions{Since: -1, Until: -1}
	var err error
	q := r.URL.Query()
	for name, to := range map[string]*int64{"since": &o.Since, "until": &o.Until} {
		if s := q.Get(name); s != "" {
			t, err := parseTime(s)
			if err != nil {
				writeError(w, err)
				return
			}
			*to = unixNano(t)
		}
	}
	if o.Filters, err = filters(r); err != nil {
		writeError(w, err)
		return
	}
	sub, err := rt.d.SubscribeEvents(o)
	if err != nil {
		writeError(w, err)
		return
	}
	defer sub.Close()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	for _, m := range sub.Past {
		enc.Encode(m)
	}
	w.(http.Flusher).Flush()
	for {
		m, ok := sub.Next(r.Context())
		if !ok {
			return
		}
		if err := enc.Encode(m); err != nil {
			return
		}
		w.(http.Flusher).Flush()
	}
}

// parseTime reads since/until: unix seconds, with an optional fraction
// ("1700000000.5", as the docker CLI sends), or an RFC 3339 time. Far
// future seconds stay in the future: they go through time.Unix, never
// through seconds × 1e9 in an int64, which wraps around into the past
// (and "since the year 33658" into "everything").
func parseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	sec, frac, _ := strings.Cut(s, ".")
	n, err := strconv.ParseInt(sec, 10, 64)
	if err != nil || len(frac) > 9 {
		return time.Time{}, errdefs.Invalidf("invalid time %q: unix seconds or RFC 3339", s)
	}
	var ns int64
	if frac != "" {
		if ns, err = strconv.ParseInt((frac + "000000000")[:9], 10, 64); err != nil {
			return time.Time{}, errdefs.Invalidf("invalid time %q: unix seconds or RFC 3339", s)
		}
	}
	// time.Unix itself wraps beyond year 292277026596: keep to years
	// 1 to 9999
	const first, last = -62135596800, 253402300799
	return time.Unix(min(max(n, first), last), ns), nil
}

// unixNano is t in unix nanoseconds, held within int64's range.
func unixNano(t time.Time) int64 {
	switch {
	case t.After(time.Unix(0, math.MaxInt64)):
		return math.MaxInt64
	case t.Before(time.Unix(0, math.MinInt64)):
		return math.MinInt64
	}
	return t.UnixNano()
}
