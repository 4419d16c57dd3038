package api

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
)

// TestAuthHeader: X-Registry-Auth is base64url JSON, padded or not; empty
// or {} is anonymous; anything else is an error; credentials decode from
// "auth" too, and never print.
func TestAuthHeader(t *testing.T) {
	a := AuthConfig{Username: "bob", Password: "pa/ss+w?rd>>", ServerAddress: "localhost:5000"}
	enc := EncodeAuth(a)
	for _, v := range []string{enc, strings.TrimRight(enc, "=")} {
		got, err := DecodeAuth(v)
		if err != nil || got == nil || *got != a {
			t.Errorf("DecodeAuth(%q) = %+v, %v", v, got, err)
		}
	}
	for _, v := range []string{"", "e30=", "e30"} {
		if got, err := DecodeAuth(v); got != nil || err != nil {
			t.Errorf("DecodeAuth(%q) = %+v, %v, want anonymous", v, got, err)
		}
	}
	for _, v := range []string{"!!!", base64.URLEncoding.EncodeToString([]byte("[1]"))} {
		if _, err := DecodeAuth(v); err == nil {
			t.Errorf("DecodeAuth(%q) accepted", v)
		}
	}
	b := AuthConfig{Auth: base64.StdEncoding.EncodeToString([]byte("u:p:q"))}
	if u, p, ok := b.Credentials(); !ok || u != "u" || p != "p:q" {
		t.Errorf("credentials from auth: %q %q %v", u, p, ok)
	}
	var none *AuthConfig
	if _, _, ok := none.Credentials(); ok {
		t.Error("nil has credentials")
	}
	if s := fmt.Sprint(a) + fmt.Sprintf("%v %+v", a, &a); strings.Contains(s, "pa/ss") {
		t.Errorf("printing shows the password: %s", s)
	}
	for server, want := range map[string]string{"": IndexServer, "docker.io": IndexServer, "https://localhost:5000/v2/": "localhost:5000", "reg:1": "reg:1"} {
		if got := ServerKey(server); got != want {
			t.Errorf("ServerKey(%q) = %q, want %q", server, got, want)
		}
	}
}
