package client

import (
	"context"
	"net/http"
	"net/url"
	"strings"

	"minidock/api"
)

// The registry endpoints: pull, push and login. The credentials travel as
// the X-Registry-Auth header (api.EncodeAuth); the daemon never keeps
// them.

// ImagePullOptions are the choices of a pull.
type ImagePullOptions struct {
	Platform string          // "os/arch[/variant]", "" for the daemon's
	Auth     *api.AuthConfig // nil: anonymous
}

// ImagePull is POST /images/create?fromImage=NAME&tag=TAG|DIGEST: the
// progress messages of the pull. ref is "name[:tag]" or "name@digest";
// no tag means latest.
func (c *Client) ImagePull(ctx context.Context, ref string, o ImagePullOptions) (*Messages, error) {
	name, tag := splitRef(ref)
	if tag == "" {
		tag = "latest"
	}
	q := url.Values{"fromImage": {name}, "tag": {tag}}
	if o.Platform != "" {
		q.Set("platform", o.Platform)
	}
	return openStream[api.JSONMessage](ctx, c, request{method: "POST", path: "/images/create", query: q, header: authHeader(o.Auth)})
}

// ImagePush is POST /images/{name}/push?tag=: the progress messages of
// the push, the last an aux {"Tag","Digest","Size"}. ref without a tag
// pushes every tag of the repository.
func (c *Client) ImagePush(ctx context.Context, ref string, auth *api.AuthConfig) (*Messages, error) {
	name, tag := splitRef(ref)
	q := url.Values{}
	if tag != "" {
		q.Set("tag", tag)
	}
	return openStream[api.JSONMessage](ctx, c, request{method: "POST", path: imagePath(name, "push"), query: q, header: authHeader(auth)})
}

// RegistryLogin is POST /auth: the daemon checks the credentials with
// the registry named by ServerAddress.
func (c *Client) RegistryLogin(ctx context.Context, auth api.AuthConfig) (api.AuthResponse, error) {
	var resp api.AuthResponse
	err := c.call(ctx, request{method: "POST", path: "/auth", json: auth}, &resp)
	return resp, err
}

// authHeader is the X-Registry-Auth header, sent always, as the docker
// CLI does ({} when anonymous).
func authHeader(a *api.AuthConfig) http.Header {
	if a == nil {
		a = &api.AuthConfig{}
	}
	return http.Header{api.AuthHeader: {api.EncodeAuth(*a)}}
}

// splitRef splits "name:tag" and "name@digest" into the name and the tag
// or digest; a ':' before the last '/' is a registry's port.
func splitRef(ref string) (name, tag string) {
	if i := strings.IndexByte(ref, '@'); i >= 0 {
		return ref[:i], ref[i+1:]
	}
	if i := strings.LastIndexByte(ref, ':'); i > strings.LastIndexByte(ref, '/') {
		return ref[:i], ref[i+1:]
	}
	return ref, ""
}
