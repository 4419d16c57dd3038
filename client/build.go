package client

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/url"

	"minidock/api"
)

// ImageBuildOptions are the parameters of POST /build.
type ImageBuildOptions struct {
	Tags        []string           // -t, each a name[:tag] for the image
	Dockerfile  string             // the Dockerfile's path in the context ("" : Dockerfile)
	BuildArgs   map[string]*string // --build-arg; nil value: the name only
	Target      string             // --target: the stage to build
	Labels      map[string]string  // --label
	NoCache     bool               // --no-cache
	Pull        bool               // --pull: pull every FROM image anew
	Quiet       bool               // -q: only the image ID
	KeepSteps   bool               // --rm=false: keep each step's container
	ForceRemove bool               // --force-rm
	NetworkMode string             // --network: default, host, none
	Platform    string             // --platform
}

// BuildMessages is the build's stream: progress text, then the image's
// ID (aux) or the error that ended it.
type BuildMessages = Stream[api.BuildMessage]

// ImageBuild is POST /build with the build context, a tar stream: the
// build's messages as they come.
func (c *Client) ImageBuild(ctx context.Context, buildContext io.Reader, o ImageBuildOptions) (*BuildMessages, error) {
	q := url.Values{"t": o.Tags}
	set := func(name, v string) {
		if v != "" {
			q.Set(name, v)
		}
	}
	set("dockerfile", o.Dockerfile)
	set("target", o.Target)
	set("networkmode", o.NetworkMode)
	set("platform", o.Platform)
	boolQuery(q, "nocache", o.NoCache)
	boolQuery(q, "pull", o.Pull)
	boolQuery(q, "q", o.Quiet)
	boolQuery(q, "forcerm", o.ForceRemove)
	if o.KeepSteps {
		q.Set("rm", "0")
	}
	for name, v := range map[string]any{"buildargs": o.BuildArgs, "labels": o.Labels} {
		if b, _ := json.Marshal(v); string(b) != "null" {
			q.Set(name, string(b))
		}
	}
	return openStream[api.BuildMessage](ctx, c, request{method: "POST", path: "/build", query: q,
		body: buildContext, contentType: "application/x-tar"})
}

// BuildError is the error that ended a build, with its code: a failed
// RUN's exit code, which the CLI exits with.
type BuildError struct {
	Code    int
	Message string
}

func (e *BuildError) Error() string { return e.Message }

// EachBuildMessage calls f for each message of a build's stream until
// its end, closes it, and returns the image's ID; an error message ends
// the stream as a *BuildError.
func EachBuildMessage(s *BuildMessages, f func(api.BuildMessage)) (string, error) {
	defer s.Close()
	id := ""
	for {
		m, err := s.Next()
		if err == io.EOF {
			if id == "" {
				return "", errors.New("the build ended without an image ID")
			}
			return id, nil
		}
		if err != nil {
			return "", err
		}
		switch {
		case m.ErrorDetail != nil:
			return "", &BuildError{Code: m.ErrorDetail.Code, Message: m.ErrorDetail.Message}
		case m.Error != "":
			return "", &BuildError{Message: m.Error}
		case m.Aux != nil:
			id = m.Aux.ID
		}
		f(m)
	}
}
