package api

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Filters is the filters= query parameter of the list endpoints
// (containers, networks, events, prunes): a key and the values it may
// take; an entry matches when it matches one value of every key.
type Filters map[string][]string

// ParseFilters reads the filters parameter: {"key":["value",...]}, or the
// older {"key":{"value":true}} that some clients still send.
func ParseFilters(s string) (Filters, error) {
	f := Filters{}
	if s == "" {
		return f, nil
	}
	if err := json.Unmarshal([]byte(s), (*map[string][]string)(&f)); err != nil {
		var old map[string]map[string]bool
		if json.Unmarshal([]byte(s), &old) != nil {
			return nil, fmt.Errorf("invalid filters %q: %v", s, err)
		}
		for k, m := range old {
			for v := range m {
				f[k] = append(f[k], v)
			}
		}
	}
	return f, nil
}

// Only refuses a key not among allowed.
func (f Filters) Only(allowed ...string) error {
	for k := range f {
		found := false
		for _, a := range allowed {
			found = found || a == k
		}
		if !found {
			return fmt.Errorf("invalid filter '%s'", k)
		}
	}
	return nil
}

// Match is true when key has no values, or ok holds for one of them.
func (f Filters) Match(key string, ok func(string) bool) bool {
	for _, v := range f[key] {
		if ok(v) {
			return true
		}
	}
	return len(f[key]) == 0
}

// MatchLabels is true when labels has every "key" or "key=value" of the
// label filter.
func (f Filters) MatchLabels(labels map[string]string) bool {
	for _, v := range f["label"] {
		k, val, hasVal := strings.Cut(v, "=")
		got, ok := labels[k]
		if !ok || (hasVal && got != val) {
			return false
		}
	}
	return true
}
