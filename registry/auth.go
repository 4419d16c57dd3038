package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"minidock/api"
)

// AuthConfig is a user's credentials for one registry: the Engine API's
// type (the X-Registry-Auth header, POST /auth), which the daemon hands
// over as it came.
type AuthConfig = api.AuthConfig

// challenge is a parsed WWW-Authenticate header: "Basic realm=..." or
// "Bearer realm=...,service=...,scope=...".
type challenge struct {
	scheme string // "basic" or "bearer"
	params map[string]string
}

// parseChallenge reads the first challenge of a WWW-Authenticate value.
func parseChallenge(v string) (*challenge, error) {
	v = strings.TrimSpace(v)
	scheme, rest, _ := strings.Cut(v, " ")
	ch := &challenge{scheme: strings.ToLower(scheme), params: map[string]string{}}
	if ch.scheme != "basic" && ch.scheme != "bearer" {
		return nil, fmt.Errorf("unsupported auth challenge %q", v)
	}
	for rest = strings.TrimSpace(rest); rest != ""; {
		key, after, found := strings.Cut(rest, "=")
		if !found {
			break
		}
		key = strings.ToLower(strings.TrimSpace(key))
		var val string
		if strings.HasPrefix(after, `"`) {
			// A quoted string, with backslash escapes.
			var b strings.Builder
			i := 1
			for ; i < len(after) && after[i] != '"'; i++ {
				if after[i] == '\\' && i+1 < len(after) {
					i++
				}
				b.WriteByte(after[i])
			}
			val, rest = b.String(), after[min(i+1, len(after)):]
		} else {
			val, rest, _ = strings.Cut(after, ",")
			rest = "," + rest
		}
		ch.params[key] = strings.TrimSpace(val)
		rest = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(rest), ","))
	}
	if ch.scheme == "bearer" && ch.params["realm"] == "" {
		return nil, fmt.Errorf("bearer challenge without a realm: %q", v)
	}
	return ch, nil
}

// scope is a token scope: "repository:team/app:pull,push".
func scope(path string, actions ...string) string {
	return "repository:" + path + ":" + strings.Join(actions, ",")
}

// cachedToken is a Bearer token and when it stops being good.
type cachedToken struct {
	token   string
	expires time.Time
}

// authorize adds the Authorization the host's challenge asks for: the
// user's basic credentials, or a Bearer token for the scopes.
func (c *Client) authorize(ctx context.Context, h *host, req *http.Request, auth *AuthConfig, scopes []string) error {
	ch := h.challenge()
	if ch == nil {
		return nil
	}
	switch ch.scheme {
	case "basic":
		if user, pass, ok := auth.Credentials(); ok {
			req.SetBasicAuth(user, pass)
		}
	case "bearer":
		if auth != nil && auth.RegistryToken != "" {
			req.Header.Set("Authorization", "Bearer "+auth.RegistryToken)
			return nil
		}
		tok, err := c.token(ctx, h, ch, auth, scopes)
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	return nil
}

// tokenKey names a cached token: one per host, user and set of scopes.
func tokenKey(hostName, user string, scopes []string) string {
	return hostName + "\x00" + user + "\x00" + strings.Join(scopes, " ")
}

func (c *Client) forgetTokens(hostName string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.tokens {
		if strings.HasPrefix(k, hostName+"\x00") {
			delete(c.tokens, k)
		}
	}
}

// token returns a Bearer token for the scopes: from the cache, or from
// the challenge's realm: GET realm?service=...&scope=..., with the user's
// basic credentials when there are any (anonymous otherwise). The answer
// is {"token"|"access_token", "expires_in"}.
func (c *Client) token(ctx context.Context, h *host, ch *challenge, auth *AuthConfig, scopes []string) (string, error) {
	user, pass, hasCreds := auth.Credentials()
	key := tokenKey(h.name, user, scopes)
	c.mu.Lock()
	t, ok := c.tokens[key]
	c.mu.Unlock()
	if ok && time.Now().Before(t.expires) {
		return t.token, nil
	}
	realm, err := url.Parse(ch.params["realm"])
	if err != nil || (realm.Scheme != "https" && realm.Scheme != "http") {
		return "", fmt.Errorf("registry %s: bad token realm %q", h.name, ch.params["realm"])
	}
	q := realm.Query()
	if s := ch.params["service"]; s != "" {
		q.Set("service", s)
	}
	for _, s := range scopes {
		q.Add("scope", s)
	}
	if hasCreds && user != "" {
		q.Set("account", user)
	}
	realm.RawQuery = q.Encode()
	tlsCfg, err := c.tlsConfig(realm.Host, c.isInsecure(realm.Host))
	if err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, realm.String(), nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("User-Agent", c.opts.UserAgent)
	if hasCreds {
		req.SetBasicAuth(user, pass)
	}
	rctx, cancel := context.WithTimeout(ctx, c.opts.ResponseTimeout)
	defer cancel()
	resp, err := c.httpClient(tlsCfg).Do(req.WithContext(rctx))
	if err != nil {
		return "", fmt.Errorf("fetch token from %s: %w", redact(realm.String()), err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", fmt.Errorf("fetch token from %s: %w", redact(realm.String()), err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", &Error{Method: "GET", URL: redact(realm.String()), Status: resp.StatusCode, StatusText: resp.Status, Errors: parseErrors(body), Body: snippet(body)}
	}
	var tr struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
	}
	if err := json.Unmarshal(body, &tr); err != nil {
		return "", fmt.Errorf("token from %s is not JSON: %w", redact(realm.String()), err)
	}
	tok := tr.Token
	if tok == "" {
		tok = tr.AccessToken
	}
	if tok == "" {
		return "", errors.New("token server answered without a token")
	}
	life := time.Duration(tr.ExpiresIn) * time.Second
	if life < 60*time.Second {
		life = 60 * time.Second // the spec's minimum
	}
	c.mu.Lock()
	c.tokens[key] = cachedToken{token: tok, expires: time.Now().Add(life - 5*time.Second)}
	c.mu.Unlock()
	return tok, nil
}
