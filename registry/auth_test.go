package registry

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"minidock/registry/server"
)

func TestParseChallenge(t *testing.T) {
	ch, err := parseChallenge(`Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push"`)
	if err != nil {
		t.Fatal(err)
	}
	if ch.scheme != "bearer" || ch.params["realm"] != "https://auth.example/token" || ch.params["service"] != "registry.example" || ch.params["scope"] != "repository:a/b:pull,push" {
		t.Errorf("parsed %+v", ch)
	}
	ch, err = parseChallenge(`Basic realm="minidock \"x\""`)
	if err != nil || ch.scheme != "basic" || ch.params["realm"] != `minidock "x"` {
		t.Errorf("basic: %+v %v", ch, err)
	}
	ch, err = parseChallenge(`Bearer realm=http://h/t,error=insufficient_scope`)
	if err != nil || ch.params["realm"] != "http://h/t" || ch.params["error"] != "insufficient_scope" {
		t.Errorf("unquoted: %+v %v", ch, err)
	}
	for _, bad := range []string{"", "Negotiate abc", "Bearer service=x"} {
		if _, err := parseChallenge(bad); err == nil {
			t.Errorf("parseChallenge(%q) accepted", bad)
		}
	}
}

// tokenServer is a small token service, as Docker Hub's auth server: GET
// /token?service=&scope=repository:NAME:ACTIONS, HTTP basic credentials
// optional. Anyone gets pull; the user with the right password gets push.
type tokenServer struct {
	user, pass string
	mu         sync.Mutex
	granted    map[string][]string // token -> scopes granted
	asked      []string            // scopes asked, one entry per request
	*httptest.Server
}

func newTokenServer(t testing.TB, user, pass string) *tokenServer {
	ts := &tokenServer{user: user, pass: pass, granted: map[string][]string{}}
	ts.Server = httptest.NewServer(http.HandlerFunc(ts.serve))
	t.Cleanup(ts.Close)
	return ts
}

func (ts *tokenServer) serve(w http.ResponseWriter, r *http.Request) {
	u, p, hasCreds := r.BasicAuth()
	if hasCreds && (u != ts.user || p != ts.pass) {
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte(`{"details":"incorrect username or password"}`))
		return
	}
	if r.URL.Query().Get("service") != "minidock-test" {
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

func (ts *tokenServer) requests() []string {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]string(nil), ts.asked...)
}

func (ts *tokenServer) known(token string) bool {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.granted[token] != nil
}

// allows tells whether token grants action on repository name.
func (ts *tokenServer) allows(token, name, action string) bool {
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

// gate puts Bearer token auth in front of a registry, as Docker's
// registry does with a token service: no token (or one lacking the
// scope) is 401 with a challenge naming the realm, service and scope.
func (ts *tokenServer) gate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		challenge := fmt.Sprintf(`Bearer realm="%s/token",service="minidock-test"`, ts.URL)
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

// TestTokenAuth drives the Bearer token flow for real: the registry's
// challenge sends the client to the token server for the scope it needs;
// anonymous users may pull, the user with the password may push; tokens
// are reused per scope; wrong credentials get the token server's message.
func TestTokenAuth(t *testing.T) {
	tokens := newTokenServer(t, "bob", "hunter2")
	root := t.TempDir()
	_, open := startServer(t, server.Options{Root: root}, nil) // setup, behind no gate
	_, host := startServer(t, server.Options{Root: root}, tokens.gate)
	ti := makeImage(t, 20, 2, 16<<10, true, false, "amd64")
	pushRaw(t, open, "pub/app", "1", ti)
	pushRaw(t, open, "pub/app", "2", ti)

	store := newStore(t)
	c := testClient(Options{})
	if _, err := c.Pull(ctxT(t), store, host+"/pub/app:1", PullOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Pull(ctxT(t), store, host+"/pub/app:2", PullOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := tokens.requests(); len(got) != 1 || got[0] != "repository:pub/app:pull" {
		t.Errorf("token requests %q, want one for repository:pub/app:pull (then cached)", got)
	}

	// Anonymous push: the token server grants pull only.
	store.Tag(host+"/pub/app:1", host+"/pub/copy:1")
	_, err := c.Push(ctxT(t), store, host+"/pub/copy:1", PushOptions{})
	if err == nil || !strings.Contains(err.Error(), "denied: requested access to the resource is denied") {
		t.Errorf("anonymous push: %v", err)
	}
	// With the password: pushed (the layers mounted from pub/app, which
	// needs pull there and push here in one token).
	auth := &AuthConfig{Username: "bob", Password: "hunter2"}
	var pl progressLog
	if _, err := c.Push(ctxT(t), store, host+"/pub/copy:1", PushOptions{Auth: auth, Progress: pl.fn}); err != nil {
		t.Fatal(err)
	}
	if pl.count("Mounted from pub/app") != 2 {
		t.Errorf("push:\n%s", pl.String())
	}
	found := false
	for _, s := range tokens.requests() {
		if s == "repository:pub/copy:pull,push repository:pub/app:pull" {
			found = true
		}
	}
	if !found {
		t.Errorf("no token asked for push here and pull at the source: %q", tokens.requests())
	}

	// Wrong password: the token server's message, never the password.
	_, err = c.Pull(ctxT(t), newStore(t), host+"/pub/app:1", PullOptions{Auth: &AuthConfig{Username: "bob", Password: "nope-nope"}})
	if err == nil || !strings.Contains(err.Error(), "unauthorized: incorrect username or password") || strings.Contains(err.Error(), "nope-nope") {
		t.Errorf("pull with a wrong password: %v", err)
	}

	// Login: a token with the credentials.
	if st, err := c.Login(ctxT(t), host, AuthConfig{Username: "bob", Password: "hunter2"}); err != nil || st != "Login Succeeded" {
		t.Errorf("login: %q %v", st, err)
	}
	if _, err := c.Login(ctxT(t), host, AuthConfig{Username: "bob", Password: "nope-nope"}); err == nil || !strings.Contains(err.Error(), "incorrect username or password") {
		t.Errorf("login with a wrong password: %v", err)
	}
}

// TestLoginBasic logs in to a registry that asks for HTTP basic auth,
// and to one that asks for nothing.
func TestLoginBasic(t *testing.T) {
	hash, _ := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	_, host := startServer(t, server.Options{Users: map[string][]byte{"carol": hash}}, nil)
	_, open := startServer(t, server.Options{}, nil)
	c := testClient(Options{})
	if st, err := c.Login(ctxT(t), "http://"+host+"/", AuthConfig{Username: "carol", Password: "pw"}); err != nil || st != "Login Succeeded" {
		t.Errorf("login: %q %v", st, err)
	}
	if _, err := c.Login(ctxT(t), host, AuthConfig{Username: "carol", Password: "bad"}); err == nil || !strings.Contains(err.Error(), "unauthorized: invalid username or password") {
		t.Errorf("login with a wrong password: %v", err)
	}
	if st, err := c.Login(ctxT(t), open, AuthConfig{Username: "x", Password: "y"}); err != nil || st != "Login Succeeded" {
		t.Errorf("login to an open registry: %q %v", st, err)
	}
}

// TestConfigFile keeps credentials as docker login does: "auths" with a
// base64 user:password, other keys untouched, the file 0600, and never
// shows the password when printed.
func TestConfigFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "docker", "config.json")
	os.MkdirAll(filepath.Dir(p), 0o700)
	os.WriteFile(p, []byte(`{"auths":{"https://index.docker.io/v1/":{"auth":"dTpw"}},"psFormat":"table {{.ID}}"}`), 0o600)
	f, err := LoadConfigFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if a, ok := f.AuthFor("docker.io"); !ok || a.Username != "u" || a.Password != "p" {
		t.Errorf("docker.io credentials: %+v %v", a, ok)
	}
	f.SetAuth("http://localhost:5000/v2/", AuthConfig{Username: "alice", Password: "s3cret"})
	if err := f.Save(); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	var raw map[string]json.RawMessage
	json.Unmarshal(b, &raw)
	var auths map[string]map[string]string
	json.Unmarshal(raw["auths"], &auths)
	if string(raw["psFormat"]) != `"table {{.ID}}"` || auths["localhost:5000"]["auth"] != "YWxpY2U6czNjcmV0" || len(auths["localhost:5000"]) != 1 {
		t.Errorf("saved:\n%s", b)
	}
	if st, _ := os.Stat(p); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
	f2, _ := LoadConfigFile(p)
	a, ok := f2.AuthFor("localhost:5000")
	if !ok || a.Username != "alice" || a.Password != "s3cret" {
		t.Errorf("reloaded: %+v", a)
	}
	if s := fmt.Sprint(a) + fmt.Sprintf("%v", a); strings.Contains(s, "s3cret") {
		t.Errorf("printing credentials shows the password: %s", s)
	}
	if !f2.RemoveAuth("localhost:5000") || f2.RemoveAuth("localhost:5000") {
		t.Error("RemoveAuth")
	}
	if _, err := LoadConfigFile(filepath.Join(t.TempDir(), "none.json")); err != nil {
		t.Errorf("missing file: %v", err)
	}
}
