package cli

import (
	"bytes"
	"strings"
	"testing"

	"minidock/api"
)

// pullMessages is what a daemon streams for a pull of two layers.
var pullMessages = []api.JSONMessage{
	{Status: "Pulling from team/app", ID: "1"},
	{Status: "Pulling fs layer", ID: "aaaaaaaaaaaa"},
	{Status: "Pulling fs layer", ID: "bbbbbbbbbbbb"},
	{Status: "Downloading", ID: "aaaaaaaaaaaa", ProgressDetail: &api.JSONProgress{Current: 500000, Total: 1000000}},
	{Status: "Pull complete", ID: "bbbbbbbbbbbb"},
	{Status: "Pull complete", ID: "aaaaaaaaaaaa"},
	{Aux: []byte(`{"x":1}`)},
	{Status: "Digest: sha256:abc"},
}

// TestProgressPlain: without a terminal, one line per status, byte
// counts and aux messages left out.
func TestProgressPlain(t *testing.T) {
	var b bytes.Buffer
	p := newProgressPrinter(&b)
	for _, m := range pullMessages {
		p.print(m)
	}
	want := "1: Pulling from team/app\naaaaaaaaaaaa: Pulling fs layer\nbbbbbbbbbbbb: Pulling fs layer\n" +
		"bbbbbbbbbbbb: Pull complete\naaaaaaaaaaaa: Pull complete\nDigest: sha256:abc\n"
	if b.String() != want {
		t.Errorf("plain progress:\n%q\nwant\n%q", b.String(), want)
	}
}

// TestProgressTerminal: on a terminal each ID keeps its line: a message
// for the first of three lines moves the cursor up three, redraws it
// with a bar, and comes back down.
func TestProgressTerminal(t *testing.T) {
	var b bytes.Buffer
	p := &progressPrinter{out: &b, tty: true, width: 100, lines: map[string]int{}}
	for _, m := range pullMessages[:4] {
		p.print(m)
	}
	out := b.String()
	bar := "[" + strings.Repeat("=", 25) + ">" + strings.Repeat(" ", 24) + "] 500kB/1MB" // 50 wide, half done
	redraw := "\x1b[2A\r\x1b[2Kaaaaaaaaaaaa: Downloading " + bar + "\x1b[2B\r"
	if !strings.HasSuffix(out, redraw) {
		t.Errorf("the layer's line redrawn in place:\n%q\nwant it to end with\n%q", out, redraw)
	}
	if n := strings.Count(out, "\n"); n != 3 {
		t.Errorf("%d lines for 3 IDs:\n%q", n, out)
	}
	b.Reset()
	p.print(api.JSONMessage{Status: "Digest: sha256:abc"})
	p.print(api.JSONMessage{Status: "Pull complete", ID: "aaaaaaaaaaaa"})
	if got := b.String(); got != "Digest: sha256:abc\n\n\x1b[1A\r\x1b[2Kaaaaaaaaaaaa: Pull complete\x1b[1B\r" {
		t.Errorf("a line without ID starts a new block: %q", got)
	}
	narrow := &progressPrinter{width: 40}
	if got := narrow.bar(5, 10, 30); got != "5B/10B" {
		t.Errorf("narrow terminal: %q, want only the numbers", got)
	}
}

func TestSplitDomain(t *testing.T) {
	for ref, want := range map[string]string{
		"busybox": "docker.io", "team/app:1": "docker.io", "localhost/app": "localhost",
		"localhost:5000/app": "localhost:5000", "127.0.0.1:5000/a/b@sha256:x": "127.0.0.1:5000", "reg.example/app": "reg.example",
	} {
		if got, _ := splitDomain(ref); got != want {
			t.Errorf("splitDomain(%q) = %q, want %q", ref, got, want)
		}
	}
	for ref, want := range map[string]string{
		"busybox": "docker.io/library/busybox:latest", "team/app:1": "docker.io/team/app:1",
		"localhost:5000/app": "localhost:5000/app:latest", "h:1/a@sha256:x": "h:1/a@sha256:x",
	} {
		if got := fullName(ref); got != want {
			t.Errorf("fullName(%q) = %q, want %q", ref, got, want)
		}
	}
}
