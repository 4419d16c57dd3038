package api

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
)

// AuthConfig is a user's credentials for one registry, in Docker's JSON
// shape: the body of POST /auth, the X-Registry-Auth header of a pull or
// push (EncodeAuth), and the "auths" entries of a client's config.json,
// where only Auth (base64 "user:password") is kept.
type AuthConfig struct {
	Username      string `json:"username,omitempty"`
	Password      string `json:"password,omitempty"`
	Auth          string `json:"auth,omitempty"`
	Email         string `json:"email,omitempty"`
	ServerAddress string `json:"serveraddress,omitempty"`
	IdentityToken string `json:"identitytoken,omitempty"`
	RegistryToken string `json:"registrytoken,omitempty"`
}

// Credentials returns the user name and password, decoding Auth when the
// plain fields are empty; ok is false when there are none (or a is nil).
func (a *AuthConfig) Credentials() (user, pass string, ok bool) {
	if a == nil {
		return "", "", false
	}
	if a.Username != "" || a.Password != "" {
		return a.Username, a.Password, true
	}
	if a.Auth != "" {
		b, err := base64.StdEncoding.DecodeString(a.Auth)
		if err != nil {
			return "", "", false
		}
		u, p, found := strings.Cut(string(b), ":")
		return u, p, found
	}
	return "", "", false
}

// String never shows the secret, so that credentials cannot reach a log.
func (a AuthConfig) String() string {
	u, _, _ := a.Credentials()
	return fmt.Sprintf("AuthConfig{user %q, server %q}", u, a.ServerAddress)
}

// AuthResponse is the reply of POST /auth.
type AuthResponse struct {
	Status        string `json:"Status"`
	IdentityToken string `json:"IdentityToken,omitempty"`
}

// AuthHeader is the request header carrying a pull's or push's
// credentials.
const AuthHeader = "X-Registry-Auth"

// EncodeAuth is the X-Registry-Auth value of a: its JSON, base64url.
func EncodeAuth(a AuthConfig) string {
	b, _ := json.Marshal(a)
	return base64.URLEncoding.EncodeToString(b)
}

// DecodeAuth reads an X-Registry-Auth value: base64url JSON, with or
// without padding (clients differ). Empty, or "{}", is anonymous: nil.
func DecodeAuth(v string) (*AuthConfig, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return nil, nil
	}
	b, err := base64.URLEncoding.DecodeString(v)
	if err != nil {
		if b, err = base64.RawURLEncoding.DecodeString(strings.TrimRight(v, "=")); err != nil {
			return nil, fmt.Errorf("X-Registry-Auth: not base64url: %v", err)
		}
	}
	var a AuthConfig
	if err := json.Unmarshal(b, &a); err != nil {
		return nil, fmt.Errorf("X-Registry-Auth: not an AuthConfig JSON object: %v", err)
	}
	if a == (AuthConfig{}) {
		return nil, nil
	}
	return &a, nil
}

// IndexServer is the key Docker Hub's credentials are stored under.
const IndexServer = "https://index.docker.io/v1/"

// ServerKey is the key a registry's credentials are stored under:
// "localhost:5000" for a host, IndexServer for Docker Hub. A URL
// ("https://host/v2/") is reduced to its host.
func ServerKey(server string) string {
	s := server
	if i := strings.Index(s, "://"); i >= 0 {
		s = s[i+3:]
	}
	s, _, _ = strings.Cut(s, "/")
	switch s {
	case "", "docker.io", "index.docker.io", "registry-1.docker.io":
		return IndexServer
	}
	return s
}
