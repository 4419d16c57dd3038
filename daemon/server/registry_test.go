package server

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"minidock/api"
	"minidock/internal/errdefs"
)

// TestOnlyQuery: a parameter the route does not know is a 400 naming it.
func TestOnlyQuery(t *testing.T) {
	r := httptest.NewRequest("POST", "/images/create?fromImage=a&tag=1&zeta=1&alpha=2", nil)
	err := onlyQuery(r, "fromImage", "tag", "platform")
	if !errdefs.Is(err, errdefs.InvalidParameter) || !strings.Contains(err.Error(), "unknown query parameter alpha, zeta") {
		t.Errorf("onlyQuery: %v", err)
	}
	if err := onlyQuery(r, "fromImage", "tag", "zeta", "alpha"); err != nil {
		t.Errorf("all known: %v", err)
	}
	if err := onlyQuery(httptest.NewRequest("POST", "/auth?x=1", nil)); err == nil || !strings.Contains(err.Error(), "takes none") {
		t.Errorf("a route without parameters: %v", err)
	}
}

// TestProgressStream: an error before the first message is an HTTP
// error with its status; after it, the stream's last message.
func TestProgressStream(t *testing.T) {
	w := httptest.NewRecorder()
	p := &progressStream{w: w}
	p.finish(errdefs.NotFoundf("pull access denied for x"))
	if w.Code != 404 || !strings.Contains(w.Body.String(), `"message":"pull access denied for x"`) {
		t.Errorf("error before any message: %d %s", w.Code, w.Body)
	}
	w = httptest.NewRecorder()
	p = &progressStream{w: w}
	p.send(api.JSONMessage{Status: "Pulling from x", ID: "1"})
	p.finish(errors.New("digest mismatch for blob sha256:abc"))
	want := `{"status":"Pulling from x","id":"1"}` + "\n" +
		`{"error":"digest mismatch for blob sha256:abc","errorDetail":{"message":"digest mismatch for blob sha256:abc"}}` + "\n"
	if w.Code != 200 || w.Body.String() != want || w.Header().Get("Content-Type") != "application/json" {
		t.Errorf("error after a message: %d %q", w.Code, w.Body)
	}
}
