package peers

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// TokenServer is a small token service, as Docker Hub's auth server is:
// GET /token?service=&scope=repository:NAME:ACTIONS, with HTTP basic
// credentials or none. Anyone gets pull; the user with the right
// password also gets push. Gate puts it in front of a registry.
type TokenServer struct {
	User, Pass string
	*httptest.Server

	mu      sync.Mutex
	granted map[string][]string // token -> scopes granted
	asked   []string            // scopes asked, one entry per request
}

// TokenService is the service name the gate's challenge names.
const TokenService = "minidock-test"

// NewTokenServer starts a token server on 127.0.0.1, stopped when the
// test ends.
func NewTokenServer(t testing.TB, user, pass string) *TokenServer {
	ts := &TokenServer{User: user, Pass: pass, granted: map[string][]string{}}
	ts.Server = httptest.NewServer(http.HandlerFunc(ts.serve))
	t.Cleanup(ts.Close)
	return ts
}

func (ts *TokenServer) serve(w http.ResponseWriter, r *http.Request) {
	u, p, hasCreds := r.BasicAuth()
	if hasCreds && (u != ts.User || p != ts.Pass) {
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte(`{"details":"incorrect username or password"}`))
		return
	}
	if r.URL.Query().Get("service") != TokenService {
		http.Error(w, "unknown service", http.StatusBadRequest)
		return
	}
	var grant []string
	for _, s := range r.URL.Query()["scope"] {
		parts := strings.Split(s, ":")
		if len(parts) != 3 {
			continue
		}
		var actions []string
		for _, a := range strings.Split(parts[2], ",") {
			if a == "pull" || (a == "push" && hasCreds) {
				actions = append(actions, a)
			}
		}
		grant = append(grant, parts[0]+":"+parts[1]+":"+strings.Join(actions, ","))
	}
	var b [16]byte
	rand.Read(b[:])
	tok := hex.EncodeToString(b[:])
	ts.mu.Lock()
	ts.granted[tok] = grant
	ts.asked = append(ts.asked, strings.Join(r.URL.Query()["scope"], " "))
	ts.mu.Unlock()
	json.NewEncoder(w).Encode(map[string]any{"token": tok, "expires_in": 300})
}

// Requests are the scopes asked for, one entry per token request.
func (ts *TokenServer) Requests() []string {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]string(nil), ts.asked...)
}

func (ts *TokenServer) known(token string) bool {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.granted[token] != nil
}

// allows tells whether token grants action on repository name.
func (ts *TokenServer) allows(token, name, action string) bool {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for _, g := range ts.granted[token] {
		parts := strings.Split(g, ":")
		if parts[1] == name && strings.Contains(","+parts[2]+",", ","+action+",") {
			return true
		}
	}
	return false
}

// Gate puts Bearer token auth in front of a registry, as Docker's
// registry does with a token service: no token (or one lacking the
// scope) is 401 with a challenge naming the realm, service and scope.
func (ts *TokenServer) Gate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		challenge := fmt.Sprintf(`Bearer realm="%s/token",service="%s"`, ts.URL, TokenService)
		tok := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		p := strings.TrimPrefix(r.URL.Path, "/v2/")
		ok := tok != "" && ts.known(tok)
		if p != "" {
			name := p
			for _, k := range []string{"/blobs/", "/manifests/", "/tags/"} {
				if i := strings.LastIndex(name, k); i >= 0 {
					name = name[:i]
				}
			}
			action := "pull"
			if r.Method != http.MethodGet && r.Method != http.MethodHead {
				action = "push"
			}
			ok = ts.allows(tok, name, action)
			if from := r.URL.Query().Get("from"); ok && from != "" {
				ok = ts.allows(tok, from, "pull")
			}
			challenge += fmt.Sprintf(`,scope="repository:%s:%s"`, name, action)
			if tok != "" && !ok {
				challenge += `,error="insufficient_scope"`
			}
		}
		if !ok {
			w.Header().Set("WWW-Authenticate", challenge)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`))
			return
		}
		next.ServeHTTP(w, r)
	})
}
