package server

import (
	"encoding/json"
	"net/http"
	"strings"

	"minidock/api"
	"minidock/internal/errdefs"
)

// decodeStrict is decodeJSON for the requests that configure a container
// or a process (create, exec): a member the API types do not declare,
// with a value set, is refused with a 400 naming it (api.UnsupportedFields)
// instead of being dropped. Docker ignores unknown members; but a field
// Docker knows and minidock does not apply (CpusetCpus, OomKillDisable,
// ...) would be a promise not kept, and the docker CLI sends each of them
// empty unless its flag is given, so only the ones given are refused.
func decodeStrict(w http.ResponseWriter, r *http.Request, v any) error {
	var raw json.RawMessage
	if err := decodeJSON(w, r, &raw); err != nil { // size, emptiness, syntax
		return err
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return errdefs.Invalidf("invalid JSON in request body: %v", err)
	}
	if fields := api.UnsupportedFields(raw, v); len(fields) > 0 {
		return errdefs.Invalidf("%s: not supported by this daemon (refused rather than ignored)", strings.Join(fields, ", "))
	}
	return nil
}
