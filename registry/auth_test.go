package registry

import (
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"minidock/internal/peers"
	"minidock/internal/testimage"
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

// TestTokenAuth drives the Bearer token flow for real: the registry's
// challenge sends the client to the token server for the scope it needs;
// anonymous users may pull, the user with the password may push; tokens
// are reused per scope; wrong credentials get the token server's message.
func TestTokenAuth(t *testing.T) {
	tokens := peers.NewTokenServer(t, "bob", "hunter2")
	root := t.TempDir()
	_, open := startServer(t, server.Options{Root: root}, nil) // setup, behind no gate
	_, host := startServer(t, server.Options{Root: root}, tokens.Gate)
	ti := testimage.Make(t, 20, 2, 16<<10, true, false, "amd64")
	testimage.PushRaw(t, open, "pub/app", "1", ti)
	testimage.PushRaw(t, open, "pub/app", "2", ti)

	store := newStore(t)
	c := testClient(Options{})
	if _, err := c.Pull(ctxT(t), store, host+"/pub/app:1", PullOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Pull(ctxT(t), store, host+"/pub/app:2", PullOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := tokens.Requests(); len(got) != 1 || got[0] != "repository:pub/app:pull" {
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
	for _, s := range tokens.Requests() {
		if s == "repository:pub/copy:pull,push repository:pub/app:pull" {
			found = true
		}
	}
	if !found {
		t.Errorf("no token asked for push here and pull at the source: %q", tokens.Requests())
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
