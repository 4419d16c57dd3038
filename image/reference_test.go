package image

import (
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestParseReference(t *testing.T) {
	d := "sha256:" + strings.Repeat("ab", 32)
	good := []struct{ in, full, familiar string }{
		{"busybox", "docker.io/library/busybox:latest", "busybox:latest"},
		{"busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"},
		{"library/busybox", "docker.io/library/busybox:latest", "busybox:latest"},
		{"docker.io/busybox", "docker.io/library/busybox:latest", "busybox:latest"},
		{"index.docker.io/library/busybox:x", "docker.io/library/busybox:x", "busybox:x"},
		{"someone/app", "docker.io/someone/app:latest", "someone/app:latest"},
		{"localhost:5000/x", "localhost:5000/x:latest", "localhost:5000/x:latest"},
		{"localhost/x:v1", "localhost/x:v1", "localhost/x:v1"},
		{"quay.io/a/b/c:1.0-rc_1", "quay.io/a/b/c:1.0-rc_1", "quay.io/a/b/c:1.0-rc_1"},
		{"busybox@" + d, "docker.io/library/busybox@" + d, "busybox@" + d},
		{"busybox:1@" + d, "docker.io/library/busybox:1@" + d, "busybox:1@" + d},
		{"[::1]:5000/x", "[::1]:5000/x:latest", "[::1]:5000/x:latest"},
		{"a__b-c---d/f.g", "docker.io/a__b-c---d/f.g:latest", "a__b-c---d/f.g:latest"},
	}
	for _, g := range good {
		r, err := ParseReference(g.in)
		if err != nil {
			t.Errorf("%q: %v", g.in, err)
			continue
		}
		if r.String() != g.full || r.FamiliarString() != g.familiar {
			t.Errorf("%q: got %q / %q, want %q / %q", g.in, r.String(), r.FamiliarString(), g.full, g.familiar)
		}
	}
	bad := []struct{ in, msg string }{
		{"", "empty"},
		{"BusyBox", "lowercase"},
		{"busybox:", "bad tag"},
		{"busybox:-x", "bad tag"},
		{"busybox@sha256:123", "bad digest"},
		{"a//b", "bad path component"},
		{"a/b_", "bad path component"},
		{"-a", "bad path component"},
		{strings.Repeat("ab", 32), "reserved for image IDs"},
		{"my_host:5000/x", "bad registry host"},
		{"a__b.c/f", "bad registry host"},
		{strings.Repeat("a", 256), "longer than"},
		{"busybox:" + strings.Repeat("t", 129), "bad tag"},
	}
	for _, b := range bad {
		if _, err := ParseReference(b.in); err == nil || !strings.Contains(err.Error(), b.msg) {
			t.Errorf("%q: error %v, want one saying %q", b.in, err, b.msg)
		}
	}
}

func TestApplyChanges(t *testing.T) {
	var c ocispec.ImageConfig
	c.Env = []string{"PATH=/bin", "A=1"}
	err := ApplyChanges(&c, []string{
		`CMD ["/bin/sh", "-c", "echo hi"]`,
		`ENTRYPOINT /init --flag`,
		`ENV A=2 B="two words"`,
		`ENV C three words`,
		`LABEL org.x=y`,
		`EXPOSE 80 53/udp`,
		`USER nobody`,
		`WORKDIR /srv`,
		`VOLUME ["/data"]`,
		`STOPSIGNAL SIGINT`,
	})
	if err != nil {
		t.Fatal(err)
	}
	want := ocispec.ImageConfig{
		Cmd:          []string{"/bin/sh", "-c", "echo hi"},
		Entrypoint:   []string{"/bin/sh", "-c", "/init --flag"},
		Env:          []string{"PATH=/bin", "A=2", "B=two words", "C=three words"},
		Labels:       map[string]string{"org.x": "y"},
		ExposedPorts: map[string]struct{}{"80/tcp": {}, "53/udp": {}},
		User:         "nobody",
		WorkingDir:   "/srv",
		Volumes:      map[string]struct{}{"/data": {}},
		StopSignal:   "SIGINT",
	}
	if !equalJSON(t, c, want) {
		t.Errorf("got %+v\nwant %+v", c, want)
	}
	if err := ApplyChanges(&c, []string{"RUN rm -rf /"}); err == nil || !strings.Contains(err.Error(), "unsupported instruction") {
		t.Errorf("RUN accepted: %v", err)
	}
}
