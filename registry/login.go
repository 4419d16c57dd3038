package registry

import (
	"context"
	"fmt"
	"net/http"

	"minidock/api"
)

// Login checks a user's credentials against a registry (server is a host
// such as "localhost:5000", a URL, or "" / "docker.io" for Docker Hub),
// as docker login does: GET /v2/ with basic credentials when the registry
// asks for Basic, or a token fetched with them (no scope) when it asks
// for Bearer. A registry that asks for nothing accepts anyone. It returns
// Docker's status message; a refusal is an error with the registry's
// message. Storing the credentials is the client's (config.json).
func (c *Client) Login(ctx context.Context, server string, auth AuthConfig) (string, error) {
	name := api.ServerKey(server)
	if name == api.IndexServer {
		name = "registry-1.docker.io"
	}
	if _, _, ok := auth.Credentials(); !ok {
		return "", fmt.Errorf("login to %s: no username and password", name)
	}
	c.mu.Lock()
	delete(c.hosts, name) // ask afresh: the challenge may have changed
	c.mu.Unlock()
	h, err := c.host(ctx, name)
	if err != nil {
		return "", fmt.Errorf("login to %s: %w", name, err)
	}
	ch := h.challenge()
	if ch == nil {
		return "Login Succeeded", nil
	}
	if ch.scheme == "bearer" {
		c.forgetTokens(h.name)
		if _, err := c.token(ctx, h, ch, &auth, nil); err != nil {
			return "", loginError(name, err)
		}
		return "Login Succeeded", nil
	}
	resp, err := c.do(ctx, h, request{method: http.MethodGet, url: h.base + "/v2/", auth: &auth})
	if err != nil {
		return "", fmt.Errorf("login to %s: %w", name, err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", loginError(name, errorFrom(resp))
	}
	resp.Body.Close()
	return "Login Succeeded", nil
}

func loginError(name string, err error) error {
	if re, ok := err.(*Error); ok && (re.Status == http.StatusUnauthorized || re.Status == http.StatusForbidden) {
		return refused(ErrUnauthorized, fmt.Errorf("login to %s: unauthorized: %s", name, re.Message()))
	}
	return fmt.Errorf("login to %s: %w", name, err)
}
