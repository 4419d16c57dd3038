package server

import (
	"encoding/json"
	"net/http"
	"sort"
	"strings"
	"sync"

	"minidock/api"
	"minidock/daemon"
	"minidock/internal/errdefs"
)

// The registry routes: pull (POST /images/create?fromImage=), push (POST
// /images/{name}/push) and login (POST /auth). Pull and push answer with
// a stream of Docker's JSON progress messages (progressStream).

// onlyQuery refuses a request whose query has a parameter the route does
// not know: a 400 naming it, rather than a parameter silently dropped.
func onlyQuery(r *http.Request, known ...string) error {
	var unknown []string
	for k := range r.URL.Query() {
		found := false
		for _, n := range known {
			if k == n {
				found = true
				break
			}
		}
		if !found {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	sort.Strings(unknown)
	if len(known) == 0 {
		return errdefs.Invalidf("%s %s: unknown query parameter %s (it takes none)", r.Method, r.URL.Path, strings.Join(unknown, ", "))
	}
	return errdefs.Invalidf("%s %s: unknown query parameter %s (this daemon knows %s)",
		r.Method, r.URL.Path, strings.Join(unknown, ", "), strings.Join(known, ", "))
}

// registryAuth decodes the X-Registry-Auth header: nil when anonymous.
func registryAuth(r *http.Request) (*api.AuthConfig, error) {
	a, err := api.DecodeAuth(r.Header.Get(api.AuthHeader))
	if err != nil {
		return nil, errdefs.Wrap(errdefs.InvalidParameter, err)
	}
	return a, nil
}

// progressStream writes an engine's progress messages as Docker's JSON
// stream. The 200 goes out with the first message, so that an operation
// that fails before it (a bad reference, an image the registry does not
// have, refused credentials) is still an HTTP error with its status, as
// the docker CLI expects; after it, an error is the stream's last
// message ({"errorDetail":{"message"},"error"}).
type progressStream struct {
	w       http.ResponseWriter
	mu      sync.Mutex
	started bool
}

func (p *progressStream) send(m api.JSONMessage) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.started {
		p.w.Header().Set("Content-Type", "application/json")
		p.w.WriteHeader(http.StatusOK)
		p.started = true
	}
	json.NewEncoder(p.w).Encode(m)
	p.w.(http.Flusher).Flush()
}

// finish ends the stream with err, if any.
func (p *progressStream) finish(err error) {
	if err == nil {
		return
	}
	p.mu.Lock()
	started := p.started
	p.mu.Unlock()
	if !started {
		writeError(p.w, err)
		return
	}
	p.send(api.JSONMessage{Error: err.Error(), ErrorDetail: &api.ErrorMessage{Message: err.Error()}})
}

// imagePull is POST /images/create?fromImage=NAME&tag=TAG|DIGEST
// [&platform=os/arch] with X-Registry-Auth: `docker pull`.
func (rt router) imagePull(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	ref, tag := q.Get("fromImage"), q.Get("tag")
	if err := onlyQuery(r, "fromImage", "tag", "platform"); err != nil {
		writeError(w, err)
		return
	}
	if tag == "" {
		// Docker pulls every tag of the repository then (`docker pull -a`).
		writeError(w, errdefs.Invalidf("pull %s: tag= is required (pulling all tags, docker pull --all-tags, is not supported)", ref))
		return
	}
	if strings.Contains(tag, ":") {
		ref += "@" + tag // a digest
	} else {
		ref += ":" + tag
	}
	auth, err := registryAuth(r)
	if err != nil {
		writeError(w, err)
		return
	}
	out := &progressStream{w: w}
	_, err = rt.d.PullImage(r.Context(), ref, daemon.PullOptions{Platform: q.Get("platform"), Auth: auth, Progress: out.send})
	out.finish(err)
}

// imagePush is POST /images/{name}/push[?tag=] with X-Registry-Auth:
// `docker push`.
func (rt router) imagePush(w http.ResponseWriter, r *http.Request, name string) {
	if err := onlyQuery(r, "tag", "platform"); err != nil {
		writeError(w, err)
		return
	}
	if p := r.URL.Query().Get("platform"); p != "" {
		writeError(w, errdefs.Invalidf("push %s: platform=%s is not supported: the store holds one platform of an image, which push sends", name, p))
		return
	}
	auth, err := registryAuth(r)
	if err != nil {
		writeError(w, err)
		return
	}
	out := &progressStream{w: w}
	out.finish(rt.d.PushImage(r.Context(), name, r.URL.Query().Get("tag"), daemon.PushOptions{Auth: auth, Progress: out.send}))
}

// auth is POST /auth with an AuthConfig: `docker login`.
func (rt router) auth(w http.ResponseWriter, r *http.Request) {
	if err := onlyQuery(r); err != nil {
		writeError(w, err)
		return
	}
	var a api.AuthConfig
	if err := decodeJSON(w, r, &a); err != nil {
		writeError(w, err)
		return
	}
	resp, err := rt.d.Login(r.Context(), a)
	reply(w, http.StatusOK, resp, err)
}
