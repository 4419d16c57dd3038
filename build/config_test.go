package build

import (
	"reflect"
	"strings"
	"testing"

	"minidock/image"
)

// applyAll parses a stage body and applies its config instructions to a
// state whose base config is base, as the builder does step by step.
func applyAll(t *testing.T, base image.RunConfig, body string) (*state, []string) {
	t.Helper()
	p := newTestPlan(t, "FROM base\n"+body)
	b := &builder{plan: p, meta: map[string]string{}, consumed: map[string]bool{}}
	s := &state{stage: p.stages[0], config: cloneConfig(base), args: map[string]*string{}}
	var texts []string
	for _, c := range p.stages[0].commands {
		text, err := b.applyConfig(s, c)
		if err != nil {
			t.Fatalf("%s: %v", c.source().Original, err)
		}
		texts = append(texts, text)
	}
	return s, texts
}

func TestCmdEntrypointInterplay(t *testing.T) {
	base := image.RunConfig{}
	base.Cmd = []string{"sh"}
	for _, tc := range []struct {
		body            string
		entrypoint, cmd []string
	}{
		// the base's CMD was for its own entrypoint: a new ENTRYPOINT drops it
		{`ENTRYPOINT ["echo"]`, []string{"echo"}, nil},
		// a CMD of this stage, before or after, stays
		{"CMD [\"a\"]\nENTRYPOINT [\"echo\"]", []string{"echo"}, []string{"a"}},
		{"ENTRYPOINT [\"echo\"]\nCMD [\"a\"]", []string{"echo"}, []string{"a"}},
		// shell forms go through SHELL
		{"CMD echo $HOME", nil, []string{"/bin/sh", "-c", "echo $HOME"}},
		{"SHELL [\"/bin/bash\", \"-xc\"]\nENTRYPOINT exec top", []string{"/bin/bash", "-xc", "exec top"}, nil},
		// an empty exec form clears
		{"CMD []", nil, nil},
		{"ENTRYPOINT [\"sh\", \"-c\"]\nCMD [\"echo $0\", \"x\"]", []string{"sh", "-c"}, []string{"echo $0", "x"}},
	} {
		s, _ := applyAll(t, base, tc.body)
		if len(s.config.Entrypoint) == 0 && len(tc.entrypoint) == 0 {
			s.config.Entrypoint = tc.entrypoint
		}
		if len(s.config.Cmd) == 0 && len(tc.cmd) == 0 {
			s.config.Cmd = tc.cmd
		}
		if !reflect.DeepEqual(s.config.Entrypoint, tc.entrypoint) || !reflect.DeepEqual(s.config.Cmd, tc.cmd) {
			t.Errorf("%q: entrypoint %q cmd %q, want %q %q", tc.body, s.config.Entrypoint, s.config.Cmd, tc.entrypoint, tc.cmd)
		}
	}
}

func TestConfigSteps(t *testing.T) {
	base := image.RunConfig{}
	base.Env = []string{"PATH=/bin", "A=base"}
	s, texts := applyAll(t, base, `ENV A=1 B=$A
ENV C "with spaces"
ARG X=${B}x
LABEL "key one"=$X k2=v2
EXPOSE 80 7000-7001/udp
USER 1000:1000
VOLUME /a /b
STOPSIGNAL SIGUSR1
HEALTHCHECK NONE
ONBUILD RUN echo later
MAINTAINER me
`)
	cfg := s.config
	if !reflect.DeepEqual(cfg.Env, []string{"PATH=/bin", "A=1", "B=base", "C=with spaces"}) {
		t.Errorf("env %q (ENV substitutes with the values before the instruction)", cfg.Env)
	}
	if v := s.args["X"]; v == nil || *v != "basex" {
		t.Errorf("ARG X = %v", v)
	}
	if cfg.Labels["key one"] != "basex" || cfg.Labels["k2"] != "v2" {
		t.Errorf("labels %v", cfg.Labels)
	}
	if got := sortedKeys(cfg.ExposedPorts); !reflect.DeepEqual(got, []string{"7000/udp", "7001/udp", "80/tcp"}) {
		t.Errorf("ports %v", got)
	}
	if cfg.User != "1000:1000" || len(cfg.Volumes) != 2 || cfg.StopSignal != "SIGUSR1" || s.author != "me" {
		t.Errorf("config %+v author %q", cfg, s.author)
	}
	if cfg.Healthcheck == nil || !reflect.DeepEqual(cfg.Healthcheck.Test, []string{"NONE"}) {
		t.Errorf("healthcheck %+v", cfg.Healthcheck)
	}
	if !reflect.DeepEqual(cfg.OnBuild, []string{"RUN echo later"}) {
		t.Errorf("onbuild %q", cfg.OnBuild)
	}
	if texts[0] != "ENV A=1 B=base" || texts[4] != "EXPOSE 7000/udp 7001/udp 80/tcp" {
		t.Errorf("history texts %q", texts)
	}
}

func TestCacheKeyStability(t *testing.T) {
	cfg := func(labels ...string) *image.RunConfig {
		c := &image.RunConfig{}
		c.Labels = map[string]string{}
		for _, l := range labels {
			k, v, _ := strings.Cut(l, "=")
			c.Labels[k] = v
		}
		c.Env = []string{"PATH=/bin"}
		return c
	}
	k := cacheKey("sha256:p", cfg("a=1", "b=2", "c=3"), "", "/bin/sh -c make")
	// the same inputs, in whatever map order, give the same key
	for i := 0; i < 20; i++ {
		if got := cacheKey("sha256:p", cfg("c=3", "a=1", "b=2"), "", "/bin/sh -c make"); got != k {
			t.Fatalf("key changed: %s != %s", got, k)
		}
	}
	// and any change of the parent, config, author or step, another
	for _, other := range []string{
		cacheKey("sha256:q", cfg("a=1", "b=2", "c=3"), "", "/bin/sh -c make"),
		cacheKey("sha256:p", cfg("a=1", "b=2"), "", "/bin/sh -c make"),
		cacheKey("sha256:p", cfg("a=1", "b=2", "c=3"), "me", "/bin/sh -c make"),
		cacheKey("sha256:p", cfg("a=1", "b=2", "c=3"), "", "|1 V=2 /bin/sh -c make"),
	} {
		if other == k {
			t.Errorf("different inputs, same key %s", k)
		}
	}
	if !strings.HasPrefix(k, "sha256:") || len(k) != 71 {
		t.Errorf("key %q", k)
	}
}

// TestRunEnvAndHistory: RUN sees the image's ENV, then the build args in
// scope that ENV does not set, then the proxy args given; its history
// names the args, not the proxies.
func TestRunEnvAndHistory(t *testing.T) {
	p := newTestPlan(t, "FROM base\nRUN true\n")
	b := &builder{plan: p, opts: Options{BuildArgs: map[string]*string{"HTTP_PROXY": ptr("http://proxy"), "UNDECLARED": ptr("x")}}}
	s := &state{args: map[string]*string{"B": ptr("2"), "A": ptr("1"), "SHADOWED": ptr("arg"), "NOVALUE": nil}}
	s.config.Env = []string{"PATH=/bin", "SHADOWED=env"}
	env, prefix := b.runEnv(s)
	if want := []string{"PATH=/bin", "SHADOWED=env", "A=1", "B=2", "HTTP_PROXY=http://proxy"}; !reflect.DeepEqual(env, want) {
		t.Errorf("env %q, want %q", env, want)
	}
	if prefix != "|2 A=1 B=2 " {
		t.Errorf("history prefix %q", prefix)
	}
	// heredoc forms
	for _, tc := range []struct{ df, want string }{
		{"RUN <<EOF\necho a\necho b\nEOF\n", "echo a\necho b"},
		{"RUN <<EOF\n#!/bin/bash -e\necho a\nEOF\n", "/bin/bash -e <<'MINIDOCK_SCRIPT'\necho a\nMINIDOCK_SCRIPT"},
		{"RUN cat <<A >/a && cat <<B >/b\na\nA\nb\nB\n", "cat <<A >/a && cat <<B >/b\na\nA\nb\nB"},
		{`RUN ["echo", "$X"]` + "\n", "$X"},
	} {
		pl := newTestPlan(t, "FROM base\n"+tc.df)
		argv := runArgv(&state{}, pl.stages[0].commands[0].(*runCmd))
		if argv[len(argv)-1] != tc.want {
			t.Errorf("%q: argv %q, want last %q", tc.df, argv, tc.want)
		}
	}
}
