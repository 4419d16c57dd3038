package build

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"minidock/api"
)

// entry is one file of a test context: a body, or a symlink target
// ("->target"), or a directory (name ending in /).
type entry struct{ name, body string }

// contextTar makes a build context tar stream.
func contextTar(t testing.TB, files ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	uid, gid := os.Getuid(), os.Getgid()
	for _, f := range files {
		h := &tar.Header{Name: f.name, Mode: 0o644, Uid: uid, Gid: gid, ModTime: time.Unix(1700000000, 0)}
		switch {
		case strings.HasSuffix(f.name, "/"):
			h.Typeflag, h.Mode = tar.TypeDir, 0o755
		case strings.HasPrefix(f.body, "->"):
			h.Typeflag, h.Linkname = tar.TypeSymlink, f.body[2:]
		default:
			h.Typeflag, h.Size = tar.TypeReg, int64(len(f.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(f.body))
	}
	tw.Close()
	return buf.Bytes()
}

// result is one build: its image, its error, and its stream decoded.
type result struct {
	id   string
	err  error
	msgs []api.BuildMessage
	text string // the "stream" messages joined
}

func runBuild(t testing.TB, b Backend, opts Options, ctxTar []byte) result {
	t.Helper()
	var out bytes.Buffer
	if opts.TempDir == "" {
		opts.TempDir = t.TempDir()
	}
	id, err := Build(context.Background(), b, opts, bytes.NewReader(ctxTar), &out)
	r := result{id: id, err: err}
	sc := bufio.NewScanner(&out)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m api.BuildMessage
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("stream line %q: %v", sc.Text(), err)
		}
		r.msgs = append(r.msgs, m)
		r.text += m.Stream
	}
	if opts.TempDir != "" {
		if left, _ := os.ReadDir(opts.TempDir); len(left) > 0 {
			t.Errorf("temporary files left: %v", left)
		}
	}
	return r
}

func mustBuild(t testing.TB, b Backend, opts Options, ctxTar []byte) result {
	t.Helper()
	r := runBuild(t, b, opts, ctxTar)
	if r.err != nil {
		t.Fatalf("build: %v\n%s", r.err, r.text)
	}
	return r
}

func count(s, sub string) int { return strings.Count(s, sub) }

// TestBuildLoop follows one Dockerfile through a cold build, a cached
// rebuild (no container at all), a changed file (the cache holds up to
// the COPY), --no-cache, and a restart of the store (the cache stays).
func TestBuildLoop(t *testing.T) {
	b := newTestBackend(t)
	df := `FROM busybox
ENV GREETING=hello
WORKDIR /app
COPY greeting.txt .
RUN echo "$GREETING from $(cat greeting.txt)" > message
CMD ["cat", "/app/message"]
`
	ctx := func(body string) []byte {
		return contextTar(t, entry{"Dockerfile", df}, entry{"greeting.txt", body})
	}
	opts := Options{Tags: []string{"loop:v1"}}

	r := mustBuild(t, b, opts, ctx("world"))
	for _, want := range []string{
		"Step 1/6 : FROM busybox\n", "Step 5/6 : RUN echo \"$GREETING from $(cat greeting.txt)\" > message\n",
		"Step 6/6 : CMD [\"cat\", \"/app/message\"]\n", " ---> Running in ", "Removing intermediate container ",
		"Successfully built " + short(r.id) + "\n", "Successfully tagged loop:v1\n",
	} {
		if !strings.Contains(r.text, want) {
			t.Errorf("stream lacks %q:\n%s", want, r.text)
		}
	}
	if count(r.text, "Using cache") != 0 {
		t.Errorf("a cold build used the cache:\n%s", r.text)
	}
	if aux := r.msgs[len(r.msgs)-3].Aux; aux == nil || aux.ID != r.id || !strings.HasPrefix(r.id, "sha256:") {
		t.Errorf("aux message %+v, image %s", r.msgs[len(r.msgs)-3], r.id)
	}
	if got := b.created(); got != 3 { // WORKDIR, COPY, RUN
		t.Errorf("cold build made %d containers, want 3", got)
	}
	if out, code := b.runImage(t, "loop:v1"); out != "hello from world\n" || code != 0 {
		t.Fatalf("run: %q, exit %d", out, code)
	}

	// History: one entry per step after FROM; config steps are empty layers.
	img, _ := b.store.Resolve("loop:v1")
	base, _ := b.store.Resolve("busybox")
	h := img.Config.History[len(base.Config.History):]
	var rows []string
	for _, e := range h {
		rows = append(rows, strings.Fields(strings.TrimPrefix(e.CreatedBy, "/bin/sh -c "))[0]+map[bool]string{true: " (empty)"}[e.EmptyLayer])
	}
	want := []string{"#(nop) (empty)", "#(nop)", "#(nop)", "echo", "#(nop) (empty)"}
	if !reflect.DeepEqual(rows, want) || !strings.Contains(h[2].CreatedBy, "COPY file:") || !strings.Contains(h[1].CreatedBy, "WORKDIR /app") {
		t.Errorf("history %q, want %q:\n%+v", rows, want, h)
	}
	if len(img.DiffIDs) != len(base.DiffIDs)+3 {
		t.Errorf("%d layers over the base's %d, want 3 more", len(img.DiffIDs), len(base.DiffIDs))
	}

	// Nothing changed: every step from the cache, no container made.
	before := b.created()
	r2 := mustBuild(t, b, opts, ctx("world"))
	if r2.id != r.id || b.created() != before || count(r2.text, " ---> Using cache") != 5 {
		t.Errorf("rebuild: id %s (was %s), %d containers made:\n%s", r2.id, r.id, b.created()-before, r2.text)
	}

	// A changed file: ENV and WORKDIR still cached, COPY on built anew.
	r3 := mustBuild(t, b, opts, ctx("there"))
	if count(r3.text, " ---> Using cache") != 2 || r3.id == r.id {
		t.Errorf("changed file: %d cache hits:\n%s", count(r3.text, " ---> Using cache"), r3.text)
	}
	if out, _ := b.runImage(t, "loop:v1"); out != "hello from there\n" {
		t.Errorf("after the change: %q", out)
	}

	// A restart: a new store on the same data root finds the cache.
	b2 := openTestBackend(t, b.dataRoot, b.runcRoot, b.bundles)
	r5 := mustBuild(t, b2, opts, ctx("there"))
	if r5.id != r3.id || b2.created() != 0 {
		t.Errorf("after a restart: %s (want %s), %d containers:\n%s", r5.id, r3.id, b2.created(), r5.text)
	}

	// --no-cache: every step anew.
	r4 := mustBuild(t, b2, Options{NoCache: true}, ctx("there"))
	if count(r4.text, "Using cache") != 0 || r4.id == r3.id {
		t.Errorf("--no-cache used the cache:\n%s", r4.text)
	}

}

// TestBuildFailingRun: a RUN that fails stops the build with its exit
// code and output, and leaves no container, mount or layer behind.
func TestBuildFailingRun(t *testing.T) {
	b := newTestBackend(t)
	layersBefore, _ := b.store.LayerRefs()
	imagesBefore := len(b.store.List())
	r := runBuild(t, b, Options{}, contextTar(t, entry{"Dockerfile", "FROM busybox\nRUN echo made > /file && echo to stderr >&2 && exit 3\nRUN echo never\n"}))
	var ee *ExitError
	if !errors.As(r.err, &ee) || ee.Code != 3 {
		t.Fatalf("error %v, want exit code 3", r.err)
	}
	if !strings.Contains(r.err.Error(), "Dockerfile line 2: RUN: the command '/bin/sh -c echo made") {
		t.Errorf("error %q does not name the line and the command", r.err)
	}
	last := r.msgs[len(r.msgs)-1]
	if last.ErrorDetail == nil || last.ErrorDetail.Code != 3 || last.Error != r.err.Error() {
		t.Errorf("last message %+v", last)
	}
	if !strings.Contains(r.text, "to stderr\n") || strings.Contains(r.text, "Removing intermediate") || strings.Contains(r.text, "never") {
		t.Errorf("stream:\n%s", r.text)
	}
	layersAfter, _ := b.store.LayerRefs()
	if len(layersAfter) != len(layersBefore) || len(b.store.List()) != imagesBefore {
		t.Errorf("layers %d -> %d, images %d -> %d", len(layersBefore), len(layersAfter), imagesBefore, len(b.store.List()))
	}
	// b's cleanup checks: no container, rootfs, mount or runc state left
}

// TestBuildCancelled: a cancelled build kills the running step and
// removes its container.
func TestBuildCancelled(t *testing.T) {
	b := newTestBackend(t)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for b.created() == 0 {
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(300 * time.Millisecond)
		cancel()
	}()
	var out bytes.Buffer
	_, err := Build(ctx, b, Options{TempDir: t.TempDir()}, bytes.NewReader(contextTar(t, entry{"Dockerfile", "FROM busybox\nRUN sleep 60\n"})), &out)
	if err == nil {
		t.Fatal("a cancelled build succeeded")
	}
}

func TestBuildMultiStage(t *testing.T) {
	b := newTestBackend(t)
	df := `ARG GREETING=hi
FROM busybox AS base
ARG GREETING
RUN echo "$GREETING" > /greeting

FROM busybox AS broken
RUN exit 1

FROM base AS build
RUN echo built > /out && mkdir -p /dir/sub && echo deep > /dir/sub/f

FROM scratch
COPY --from=build /out /greeting /
COPY --from=0 /bin/busybox /bin/busybox
COPY --from=build /dir /copied
COPY --from=busybox /etc/passwd /etc/
CMD ["/bin/busybox", "cat", "/out", "/greeting", "/copied/sub/f"]
`
	ctx := contextTar(t, entry{"Dockerfile", df})
	r := mustBuild(t, b, Options{Tags: []string{"multi"}, BuildArgs: map[string]*string{"GREETING": ptr("hello")}}, ctx)
	if strings.Contains(r.text, "exit 1") {
		t.Errorf("the unneeded stage was built:\n%s", r.text)
	}
	if !strings.Contains(r.text, "Step 1/12 : ARG GREETING=hi\n") || !strings.Contains(r.text, "Step 12/12 : CMD") {
		t.Errorf("step count:\n%s", r.text)
	}
	if out, _ := b.runImage(t, "multi"); out != "built\nhello\ndeep\n" {
		t.Errorf("run: %q", out)
	}
	img, _ := b.store.Resolve("multi")
	if len(img.DiffIDs) != 4 {
		t.Errorf("scratch image has %d layers, want 4 (one per COPY)", len(img.DiffIDs))
	}

	// --target: only the stages it needs.
	r = mustBuild(t, b, Options{Target: "build", Tags: []string{"target"}}, ctx)
	if !strings.Contains(r.text, "Step 6/6 : RUN echo built") {
		t.Errorf("--target build:\n%s", r.text)
	}
	if out, _ := b.runImage(t, "target", "cat", "/greeting"); out != "hi\n" {
		t.Errorf("meta ARG default: %q", out)
	}
	// A rebuild copies --from unchanged stages without any container.
	before := b.created()
	mustBuild(t, b, Options{Tags: []string{"multi"}, BuildArgs: map[string]*string{"GREETING": ptr("hello")}}, ctx)
	if b.created() != before {
		t.Errorf("cached multi-stage rebuild made %d containers", b.created()-before)
	}
}

func ptr(s string) *string { return &s }

func TestBuildContextSafety(t *testing.T) {
	b := newTestBackend(t)
	df := func(body string) entry { return entry{"Dockerfile", "FROM busybox\n" + body} }
	for _, tc := range []struct {
		name  string
		files []entry
		want  string
	}{
		{"dotdot source", []entry{df("COPY ../etc/passwd /x\n")}, `source "../etc/passwd" is outside the build context`},
		{"symlink out", []entry{df("COPY link /x\n"), {"link", "->/etc/passwd"}}, `"link" resolves outside the build context`},
		{"relative symlink out", []entry{df("COPY d/link /x\n"), {"d/", ""}, {"d/link", "->../../../../etc/passwd"}}, "points outside the build context"},
		{"missing source", []entry{df("COPY nothere /x\n")}, `line 2: COPY: source "nothere": no such file in the build context`},
		{"no glob match", []entry{df("COPY *.nope /x/\n")}, `source "*.nope" matches no file`},
		{"many sources, file dest", []entry{df("COPY a b /x\n"), {"a", "a"}, {"b", "b"}}, "must be a directory and end with a /"},
		{"unknown instruction", []entry{df("COPPY a /x\n")}, `Dockerfile line 2: unknown instruction "COPPY"`},
		{"no Dockerfile", []entry{{"a", "a"}}, `read the Dockerfile "Dockerfile"`},
		{"unknown image", []entry{{"Dockerfile", "FROM nosuchimage:1\n"}}, "line 1: FROM: pull nosuchimage:1: no registry is reachable"},
		{"unknown user", []entry{df("COPY --chown=nobody:nosuchgroup Dockerfile /x\n")}, `"nosuchgroup" not found in the image's /etc/group`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			imagesBefore := len(b.store.List())
			r := runBuild(t, b, Options{}, contextTar(t, tc.files...))
			if r.err == nil || !strings.Contains(r.err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", r.err, tc.want)
			}
			if n := len(b.store.List()); n != imagesBefore {
				t.Errorf("images %d -> %d", imagesBefore, n)
			}
		})
	}

	// hostile entries in the context tar itself
	hostile := func(h *tar.Header) []byte {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		d := "FROM busybox\n"
		tw.WriteHeader(&tar.Header{Name: "Dockerfile", Mode: 0o644, Size: int64(len(d)), Typeflag: tar.TypeReg})
		tw.Write([]byte(d))
		tw.WriteHeader(h)
		tw.Close()
		return buf.Bytes()
	}
	outside := filepath.Join(t.TempDir(), "escaped")
	for _, tc := range []struct {
		name string
		hdr  *tar.Header
		want string
	}{
		{"absolute", &tar.Header{Name: outside, Typeflag: tar.TypeReg, Mode: 0o644}, "absolute path"},
		{"dotdot", &tar.Header{Name: "../../../../../" + outside, Typeflag: tar.TypeReg, Mode: 0o644}, `".."`},
		{"device", &tar.Header{Name: "dev", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3, Mode: 0o666}, "device node"},
		{"hard link out", &tar.Header{Name: "hl", Typeflag: tar.TypeLink, Linkname: "/etc/passwd"}, "hard link target"},
	} {
		r := runBuild(t, b, Options{}, hostile(tc.hdr))
		if r.err == nil || !strings.Contains(r.err.Error(), "build context") || !strings.Contains(r.err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, r.err, tc.want)
		}
		if _, err := os.Lstat(outside); err == nil {
			t.Fatalf("%s: wrote %s", tc.name, outside)
		}
	}
}

func TestBuildDockerignoreAndDockerfilePath(t *testing.T) {
	b := newTestBackend(t)
	ctx := contextTar(t,
		entry{".dockerignore", "*.log\nsecret/\n!secret/public.txt\nbuild.Dockerfile\n.dockerignore\n"},
		entry{"build.Dockerfile", "FROM busybox\nCOPY . /ctx/\nCMD [\"sh\", \"-c\", \"cd /ctx && find . -type f | sort\"]\n"},
		entry{"app.log", "log"}, entry{"keep.txt", "keep"},
		entry{"secret/", ""}, entry{"secret/key", "k"}, entry{"secret/public.txt", "p"},
		entry{"sub/", ""}, entry{"sub/x.log", "nested logs are not matched by *.log"},
	)
	mustBuild(t, b, Options{Dockerfile: "build.Dockerfile", Tags: []string{"ign"}}, ctx)
	out, _ := b.runImage(t, "ign")
	if out != "./keep.txt\n./secret/public.txt\n./sub/x.log\n" {
		t.Errorf("copied:\n%s", out)
	}
	if r := runBuild(t, b, Options{Dockerfile: "../Dockerfile"}, ctx); r.err == nil || !strings.Contains(r.err.Error(), "inside the build context") {
		t.Errorf("-f ../Dockerfile: %v", r.err)
	}
}

func TestBuildOnbuildAndConfig(t *testing.T) {
	b := newTestBackend(t)
	mustBuild(t, b, Options{Tags: []string{"base"}}, contextTar(t, entry{"Dockerfile", `FROM busybox
ONBUILD COPY hello.txt /hello.txt
ONBUILD RUN echo triggered >> /hello.txt
HEALTHCHECK --interval=5s --retries=2 CMD wget -q localhost || exit 1
STOPSIGNAL SIGQUIT
EXPOSE 80 53/udp
VOLUME /data
LABEL a=1 "b c"="d e"
SHELL ["/bin/sh", "-ec"]
ENTRYPOINT ["echo"]
`}))
	cfg, _ := b.store.RunConfig("base")
	if len(cfg.OnBuild) != 2 || cfg.Healthcheck == nil || cfg.Healthcheck.Interval != 5*time.Second || cfg.Healthcheck.Retries != 2 ||
		!reflect.DeepEqual(cfg.Healthcheck.Test, []string{"CMD-SHELL", "wget -q localhost || exit 1"}) ||
		cfg.StopSignal != "SIGQUIT" || cfg.Labels["b c"] != "d e" ||
		!reflect.DeepEqual(cfg.Shell, []string{"/bin/sh", "-ec"}) || len(cfg.Cmd) != 0 ||
		!reflect.DeepEqual(sortedKeys(cfg.ExposedPorts), []string{"53/udp", "80/tcp"}) || len(cfg.Volumes) != 1 {
		t.Fatalf("config %+v", cfg)
	}
	r := mustBuild(t, b, Options{Tags: []string{"child"}}, contextTar(t,
		entry{"Dockerfile", "FROM base\nCMD [\"cat\", \"/hello.txt\"]\nENTRYPOINT []\n"}, entry{"hello.txt", "hello\n"}))
	if !strings.Contains(r.text, "# Executing 2 build triggers\n") {
		t.Errorf("stream:\n%s", r.text)
	}
	child, _ := b.store.RunConfig("child")
	if len(child.OnBuild) != 0 {
		t.Errorf("triggers passed on: %v", child.OnBuild)
	}
	// CMD set before ENTRYPOINT in the same stage stays
	if out, _ := b.runImage(t, "child"); out != "hello\ntriggered\n" {
		t.Errorf("run: %q", out)
	}
}

func TestBuildAddURLAndArchive(t *testing.T) {
	b := newTestBackend(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	body := "served\n"
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/files/remote.txt" {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(body))
	})}
	go srv.Serve(ln)
	defer srv.Close()
	url := "http://" + ln.Addr().String() + "/files/remote.txt"

	var arch bytes.Buffer
	tw := tar.NewWriter(&arch)
	tw.WriteHeader(&tar.Header{Name: "/abs/", Typeflag: tar.TypeDir, Mode: 0o755})
	tw.WriteHeader(&tar.Header{Name: "./abs/in-tar.txt", Typeflag: tar.TypeReg, Mode: 0o640, Size: 3, Uid: 7, Gid: 8})
	tw.Write([]byte("tar"))
	tw.Close()
	ctx := func(u string) []byte {
		return contextTar(t, entry{"Dockerfile", "FROM busybox\nADD " + u + " /dl/\nADD files.tar /x/\n" +
			"CMD [\"sh\", \"-c\", \"cat /dl/remote.txt /x/abs/in-tar.txt; stat -c ' %a %u:%g' /dl/remote.txt /x/abs/in-tar.txt\"]\n"},
			entry{"files.tar", arch.String()})
	}
	mustBuild(t, b, Options{Tags: []string{"add"}}, ctx(url))
	if out, _ := b.runImage(t, "add"); out != "served\ntar 600 0:0\n 640 7:8\n" {
		t.Errorf("run: %q", out)
	}
	// the download is hashed: same content, cache; new content, a new step
	r := mustBuild(t, b, Options{Tags: []string{"add"}}, ctx(url))
	if count(r.text, "Using cache") != 3 {
		t.Errorf("unchanged URL:\n%s", r.text)
	}
	body = "changed\n"
	r = mustBuild(t, b, Options{Tags: []string{"add"}}, ctx(url))
	if count(r.text, "Using cache") != 0 {
		t.Errorf("changed URL:\n%s", r.text)
	}
	if r := runBuild(t, b, Options{}, ctx(url+"-missing")); r.err == nil || !strings.Contains(r.err.Error(), "404") {
		t.Errorf("missing URL: %v", r.err)
	}
}

// TestBuildTestdata builds every Dockerfile under testdata/ and runs the
// image: its output must be the case's "expect" file. A case may have an
// "args" file (KEY=VALUE lines: build args) and a "target" file.
func TestBuildTestdata(t *testing.T) {
	b := newTestBackend(t)
	cases, _ := filepath.Glob("testdata/*/Dockerfile")
	if len(cases) == 0 {
		t.Fatal("no testdata")
	}
	for _, df := range cases {
		dir := filepath.Dir(df)
		t.Run(filepath.Base(dir), func(t *testing.T) {
			opts := Options{Tags: []string{"case:" + filepath.Base(dir)}, BuildArgs: map[string]*string{}}
			var files []entry
			filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
				rel, _ := filepath.Rel(dir, p)
				switch {
				case err != nil || rel == "." || rel == "expect" || rel == "args" || rel == "target":
				case fi.IsDir():
					files = append(files, entry{rel + "/", ""})
				default:
					data, _ := os.ReadFile(p)
					files = append(files, entry{rel, string(data)})
				}
				return nil
			})
			sort.Slice(files, func(i, j int) bool { return files[i].name < files[j].name })
			if data, err := os.ReadFile(filepath.Join(dir, "args")); err == nil {
				for _, l := range strings.Fields(string(data)) {
					k, v, _ := strings.Cut(l, "=")
					opts.BuildArgs[k] = ptr(v)
				}
			}
			if data, err := os.ReadFile(filepath.Join(dir, "target")); err == nil {
				opts.Target = strings.TrimSpace(string(data))
			}
			want, err := os.ReadFile(filepath.Join(dir, "expect"))
			if err != nil {
				t.Fatal(err)
			}
			r := mustBuild(t, b, opts, contextTar(t, files...))
			out, code := b.runImage(t, opts.Tags[0])
			if code != 0 || out != string(want) {
				t.Errorf("run: exit %d, output:\n%s\nwant:\n%s\nbuild:\n%s", code, out, want, r.text)
			}
		})
	}
}

// TestBuildOptions: -q, --label, an unused --build-arg, --platform.
func TestBuildOptions(t *testing.T) {
	b := newTestBackend(t)
	ctx := contextTar(t, entry{"Dockerfile", "FROM --platform=linux/amd64 busybox\nARG USED\nCMD [\"true\"]\n"})
	r := mustBuild(t, b, Options{Quiet: true, Labels: map[string]string{"it's": "a b"}, Tags: []string{"opts"},
		BuildArgs: map[string]*string{"USED": ptr("1"), "UNUSED": ptr("2"), "no_proxy": ptr("x")}}, ctx)
	if r.text != r.id+"\n" {
		t.Errorf("quiet stream %q, want the ID alone", r.text)
	}
	cfg, _ := b.store.RunConfig("opts")
	if cfg.Labels["it's"] != "a b" {
		t.Errorf("labels %v", cfg.Labels)
	}
	r = mustBuild(t, b, Options{BuildArgs: map[string]*string{"UNUSED": ptr("2"), "no_proxy": ptr("x")}}, ctx)
	if !strings.Contains(r.text, "[Warning] One or more build-args [UNUSED] were not consumed\n") {
		t.Errorf("no warning:\n%s", r.text)
	}
	for _, p := range []string{"linux/arm64", "windows/amd64"} {
		if r := runBuild(t, b, Options{Platform: p}, ctx); r.err == nil || !strings.Contains(r.err.Error(), "is not supported") {
			t.Errorf("platform %s: %v", p, r.err)
		}
	}
	if r := runBuild(t, b, Options{Tags: []string{"Bad:Tag"}}, ctx); r.err == nil || !strings.Contains(r.err.Error(), "invalid tag") {
		t.Errorf("bad tag: %v", r.err)
	}
}
