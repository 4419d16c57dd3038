package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"minidock/api"
	"minidock/image"
	"minidock/internal/errdefs"
	"minidock/registry"
)

// Registries: the daemon reaches them through one registry.Client (package
// registry), made at start from --insecure-registry and the certs.d
// directory; it remembers per registry how it was reached and the tokens
// it fetched. pull.go and push.go are the image operations over it; Login
// checks credentials (POST /auth). docs/registry.md.

// RegistryConfig is how the daemon reaches registries.
type RegistryConfig struct {
	// Insecure are the registries reached over plain HTTP or without
	// checking their certificate (--insecure-registry, repeatable):
	// "host:port", "host" or a CIDR. Loopback always is.
	Insecure []string
	// CertsDir holds <host:port>/ca.crt (and a client certificate); ""
	// is Docker's /etc/docker/certs.d.
	CertsDir string
}

// newRegistryClient checks the configuration and makes the client.
func newRegistryClient(cfg RegistryConfig) (*registry.Client, error) {
	for _, r := range cfg.Insecure {
		if err := checkInsecureRegistry(r); err != nil {
			return nil, err
		}
	}
	return registry.NewClient(registry.Options{
		InsecureRegistries: cfg.Insecure,
		CertsDir:           cfg.CertsDir,
		UserAgent:          "minidock/" + ServerVersion,
	}), nil
}

// checkInsecureRegistry accepts what Docker does: a CIDR, or host[:port]
// without a scheme or a path.
func checkInsecureRegistry(r string) error {
	bad := func(why string) error { return fmt.Errorf("--insecure-registry %q: %s", r, why) }
	switch {
	case r == "":
		return bad("empty")
	case strings.Contains(r, "://"):
		return bad("give host[:port] or a CIDR, without a scheme")
	case strings.Contains(r, "/"):
		if _, _, err := net.ParseCIDR(r); err != nil {
			return bad("not a CIDR (and a host cannot hold a '/')")
		}
		return nil
	}
	host := r
	if h, port, err := net.SplitHostPort(r); err == nil {
		host = h
		if port == "" || strings.Trim(port, "0123456789") != "" {
			return bad("bad port")
		}
	}
	if host == "" || strings.ContainsAny(host, " \t@?#") {
		return bad("bad host")
	}
	return nil
}

// registryError gives the registry client's errors their kinds: a bad
// reference is 400, a missing image 404, refused credentials 401; the
// rest (a registry unreachable, a digest mismatch) are 500.
func registryError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, registry.ErrNotFound):
		return errdefs.Wrap(errdefs.NotFound, err)
	case errors.Is(err, registry.ErrUnauthorized):
		return errdefs.Wrap(errdefs.Unauthorized, err)
	}
	return err
}

// parseRemoteRef parses a reference to pull or push, 400 when it is bad.
func parseRemoteRef(ref string) (image.Reference, error) {
	r, err := image.ParseReference(ref)
	if err != nil {
		return r, errdefs.Wrap(errdefs.InvalidParameter, err)
	}
	return r, nil
}

// progressTo hands the registry client's messages on in the API's shape;
// nil stays nil.
func progressTo(send func(api.JSONMessage)) registry.ProgressFunc {
	if send == nil {
		return nil
	}
	return func(p registry.Progress) {
		m := api.JSONMessage{Status: p.Status, ID: p.ID, Aux: p.Aux}
		if p.ProgressDetail != nil {
			m.ProgressDetail = &api.JSONProgress{Current: p.ProgressDetail.Current, Total: p.ProgressDetail.Total}
		}
		send(m)
	}
}

// emitImage records an image event (pull, push), as Docker's: the
// reference as ID, its repository as name.
func (d *Daemon) emitImage(ref image.Reference, action string) {
	now := time.Now()
	id := ref.FamiliarString()
	d.publish(api.EventMessage{
		Status: action, ID: id, Type: "image", Action: action,
		Actor: api.EventActor{ID: id, Attributes: map[string]string{"name": ref.FamiliarName()}},
		Scope: "local", Time: now.Unix(), TimeNano: now.UnixNano(),
	})
}

// Login is POST /auth: it checks the credentials with the registry
// (server address "" is Docker Hub) and says "Login Succeeded". It keeps
// nothing: storing them is the client's.
func (d *Daemon) Login(ctx context.Context, auth api.AuthConfig) (api.AuthResponse, error) {
	if _, _, ok := auth.Credentials(); !ok {
		return api.AuthResponse{}, errdefs.Invalidf("login: a username and a password are required")
	}
	status, err := d.registry.Login(ctx, auth.ServerAddress, auth)
	if err != nil {
		return api.AuthResponse{}, registryError(err)
	}
	return api.AuthResponse{Status: status}, nil
}
