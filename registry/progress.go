package registry

import (
	"encoding/json"
	"sync"
	"time"
)

// Progress is one progress message, in the JSON shape of Docker's
// JSONMessage, so that the daemon can stream it as-is to a Docker CLI:
// {"status":"Downloading","id":"3f4d90098f5b","progressDetail":{"current":1,"total":2}}.
type Progress struct {
	Status         string          `json:"status,omitempty"`
	ID             string          `json:"id,omitempty"`
	ProgressDetail *ProgressDetail `json:"progressDetail,omitempty"`
	ErrorDetail    *ErrorDetail    `json:"errorDetail,omitempty"`
	Error          string          `json:"error,omitempty"`
	Aux            json.RawMessage `json:"aux,omitempty"`
}

// ProgressDetail is the byte count of a transfer.
type ProgressDetail struct {
	Current int64 `json:"current"`
	Total   int64 `json:"total,omitempty"`
}

// ErrorDetail is a failure as Docker streams it.
type ErrorDetail struct {
	Message string `json:"message"`
}

// ProgressFunc receives progress messages. Calls come from several
// goroutines (one per layer) but never at the same time.
type ProgressFunc func(Progress)

// ErrorProgress is the message that ends a stream with err.
func ErrorProgress(err error) Progress {
	return Progress{Error: err.Error(), ErrorDetail: &ErrorDetail{Message: err.Error()}}
}

// reporter serialises calls to a ProgressFunc and throttles the byte
// counts of each transfer to one message per 100ms.
type reporter struct {
	mu   sync.Mutex
	fn   ProgressFunc
	last map[string]time.Time
}

func newReporter(fn ProgressFunc) *reporter {
	return &reporter{fn: fn, last: map[string]time.Time{}}
}

// status sends a message without a byte count.
func (r *reporter) status(id, status string) {
	if r.fn == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fn(Progress{Status: status, ID: id})
}

// bytes sends a byte count, unless one went out less than 100ms ago.
func (r *reporter) bytes(id, status string, current, total int64) {
	if r.fn == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	if current < total && now.Sub(r.last[id]) < 100*time.Millisecond {
		return
	}
	r.last[id] = now
	r.fn(Progress{Status: status, ID: id, ProgressDetail: &ProgressDetail{Current: current, Total: total}})
}

// aux sends an aux message (the push's {"Tag","Digest","Size"}).
func (r *reporter) aux(v any) {
	if r.fn == nil {
		return
	}
	b, _ := json.Marshal(v)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fn(Progress{Aux: b})
}

// shortID is the 12 hex characters Docker shows for a digest.
func shortID(d interface{ Encoded() string }) string {
	e := d.Encoded()
	if len(e) > 12 {
		return e[:12]
	}
	return e
}
