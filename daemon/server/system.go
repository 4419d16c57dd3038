package server

import (
	"encoding/json"
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
	if s := q.Get("since"); s != "" {
		if o.Since, err = parseEventTime(s); err != nil {
			writeError(w, err)
			return
		}
	}
	if s := q.Get("until"); s != "" {
		if o.Until, err = parseEventTime(s); err != nil {
			writeError(w, err)
			return
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

// parseEventTime reads since/until: unix seconds, with an optional
// fraction, or an RFC 3339 time; it returns unix nanoseconds.
func parseEventTime(s string) (int64, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UnixNano(), nil
	}
	sec, frac, _ := strings.Cut(s, ".")
	n, err := strconv.ParseInt(sec, 10, 64)
	if err != nil {
		return 0, errdefs.Invalidf("invalid time %q: unix seconds or RFC 3339", s)
	}
	ns := n * 1e9
	if frac != "" {
		frac = (frac + "000000000")[:9]
		f, err := strconv.ParseInt(frac, 10, 64)
		if err != nil {
			return 0, errdefs.Invalidf("invalid time %q: unix seconds or RFC 3339", s)
		}
		ns += f
	}
	return ns, nil
}
