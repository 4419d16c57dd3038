package volume

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"minidock/api"
	"minidock/internal/testutil"
)

// These tests prove that the config.json mounts Spec writes do what they
// say, without the engine: each runs busybox containers with runc and with
// minidock's own runtime (`minidock runtime run`), given the mounts the
// store and Spec produce for a storage request.

// binDir holds the minidock binary the tests build (MINIDOCK_BIN instead
// when set).
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "minidock-volume-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var (
	buildOnce sync.Once
	buildErr  error
)

// minidockBinary builds bin/minidock for the runtime tests, once.
func minidockBinary(t *testing.T) string {
	if b := os.Getenv("MINIDOCK_BIN"); b != "" {
		return b
	}
	bin := filepath.Join(binDir, "minidock")
	buildOnce.Do(func() {
		cmd := exec.Command("go", "build", "-o", bin, "../cmd/minidock")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("build minidock: %v: %s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return bin
}

// ociRuntime is a runtime with runc's command line.
type ociRuntime struct {
	name  string
	argv  []string
	state string // --root
}

// eachRuntime runs f once per runtime: runc, then minidock's.
func eachRuntime(t *testing.T, f func(t *testing.T, r *ociRuntime)) {
	testutil.RequireRoot(t)
	var rts []ociRuntime
	if p, err := exec.LookPath("runc"); err == nil {
		rts = append(rts, ociRuntime{name: "runc", argv: []string{p}})
	} else {
		t.Log("runc not installed: only minidock's runtime")
	}
	rts = append(rts, ociRuntime{name: "minidock", argv: []string{minidockBinary(t), "runtime"}})
	for _, r := range rts {
		t.Run(r.name, func(t *testing.T) {
			r.state = t.TempDir()
			t.Cleanup(func() {
				if entries, _ := os.ReadDir(r.state); len(entries) > 0 {
					t.Errorf("runtime state left: %d containers", len(entries))
				}
			})
			f(t, &r)
		})
	}
}

var containerSeq atomic.Int64

// defaultMounts are the mounts every test container gets besides its own.
var defaultMounts = []specs.Mount{
	{Destination: "/proc", Type: "proc", Source: "proc"},
	{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
	{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
}

// container is one container to run: a busybox rootfs, a script, the
// storage mounts (after Setup), capabilities beyond the few defaults.
type container struct {
	rootfs string
	mounts []Mount
	script string
	caps   []string
}

// command makes the runtime's `run` of c: the bundle's config.json holds
// Spec's mounts and root propagation.
func (r *ociRuntime) command(t *testing.T, c container) *exec.Cmd {
	t.Helper()
	mounts, rootProp, err := Spec(defaultMounts, c.mounts)
	if err != nil {
		t.Fatal(err)
	}
	caps := append([]string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_KILL"}, c.caps...)
	spec := &specs.Spec{
		Version:  specs.Version,
		Root:     &specs.Root{Path: c.rootfs},
		Hostname: "volume-test",
		Process: &specs.Process{
			Args: []string{"sh", "-c", c.script}, Cwd: "/",
			Env:          []string{"PATH=/bin:/sbin:/usr/bin"},
			Capabilities: &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps},
		},
		Mounts: mounts,
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{{Type: specs.PIDNamespace}, {Type: specs.IPCNamespace},
				{Type: specs.UTSNamespace}, {Type: specs.MountNamespace}, {Type: specs.NetworkNamespace}},
			RootfsPropagation: rootProp,
		},
	}
	bundle := t.TempDir()
	data, _ := json.MarshalIndent(spec, "", " ")
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	id := fmt.Sprintf("voltest-%d-%d", os.Getpid(), containerSeq.Add(1))
	args := append(append([]string{}, r.argv[1:]...), "--root", r.state, "run", "--bundle", bundle, id)
	return exec.Command(r.argv[0], args...)
}

// run runs c to its end and returns its output and exit code.
func (r *ociRuntime) run(t *testing.T, c container) (string, int) {
	t.Helper()
	cmd := r.command(t, c)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return out.String(), ee.ExitCode()
	}
	if err != nil {
		t.Fatalf("%s run: %v", r.name, err)
	}
	return out.String(), 0
}

// mustRun runs c, which must exit 0.
func (r *ociRuntime) mustRun(t *testing.T, c container) string {
	t.Helper()
	out, code := r.run(t, c)
	if code != 0 {
		t.Fatalf("%s: exit %d: %s", c.script, code, out)
	}
	return out
}

// busybox makes a busybox rootfs, removed (and checked for leftover
// mounts) at the end of the test.
func busybox(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "rootfs")
	testutil.MakeBusyboxRootfs(t, dir)
	return dir
}

// engine plays the engine's part for one test: a volume store and the
// calls the engine makes at create, start, stop and rm.
type engine struct {
	t      *testing.T
	store  *Store
	rootfs string
}

func newEngine(t *testing.T) *engine {
	s, _ := rootStore(t)
	return &engine{t: t, store: s, rootfs: busybox(t)}
}

// create is the engine's create: Plan, Setup, Populate.
func (e *engine) create(id string, req Request) []Mount {
	e.t.Helper()
	plan, err := Plan(req)
	if err != nil {
		e.t.Fatal(err)
	}
	mounts, err := e.store.Setup(id, plan)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.store.Populate(id, e.rootfs, mounts); err != nil {
		e.t.Fatal(err)
	}
	return mounts
}

// start is the engine's start (MountAll); the returned stop its stop
// (UnmountAll).
func (e *engine) start(id string, mounts []Mount) (stop func()) {
	e.t.Helper()
	if err := e.store.MountAll(id, mounts); err != nil {
		e.t.Fatal(err)
	}
	return func() {
		if err := e.store.UnmountAll(id, mounts); err != nil {
			e.t.Error(err)
		}
	}
}

// runOnce creates, starts, runs, stops and removes (rm -v) a container.
func (e *engine) runOnce(r *ociRuntime, req Request, script string, caps ...string) (string, int) {
	e.t.Helper()
	id := fmt.Sprintf("c%d", containerSeq.Add(1))
	mounts := e.create(id, req)
	stop := e.start(id, mounts)
	out, code := r.run(e.t, container{rootfs: e.rootfs, mounts: mounts, script: script, caps: caps})
	stop()
	if err := e.store.Teardown(id, mounts, true); err != nil {
		e.t.Error(err)
	}
	return out, code
}

// TestRunNamedVolume: data written through a named volume outlives its
// container and is seen by the next; two running containers share it; a
// read-only mount refuses writes.
func TestRunNamedVolume(t *testing.T) {
	eachRuntime(t, func(t *testing.T, r *ociRuntime) {
		e := newEngine(t)
		rw := Request{Binds: []string{"data:/data"}}
		if out, code := e.runOnce(r, rw, "echo written-by-first > /data/f"); code != 0 {
			t.Fatalf("first container: %d %s", code, out)
		}
		if out, code := e.runOnce(r, rw, "cat /data/f"); code != 0 || out != "written-by-first\n" {
			t.Errorf("second container read %q (exit %d)", out, code)
		}
		v, err := e.store.Get("data")
		if err != nil {
			t.Fatalf("named volume gone after rm -v: %v", err)
		}
		if data, _ := os.ReadFile(filepath.Join(v.Mountpoint, "f")); string(data) != "written-by-first\n" {
			t.Errorf("on the host: %q", data)
		}

		out, code := e.runOnce(r, Request{Binds: []string{"data:/data:ro"}}, "cat /data/f && touch /data/g")
		if code == 0 || !strings.Contains(out, "written-by-first") || !strings.Contains(out, "Read-only file system") {
			t.Errorf("ro mount: exit %d, %q", code, out)
		}

		// two at once: the first waits for what the second writes
		m1 := e.create("reader", rw)
		stop1 := e.start("reader", m1)
		reader := r.command(t, container{rootfs: e.rootfs, mounts: m1,
			script: "i=0; while [ ! -f /data/from-writer ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done; cat /data/from-writer"})
		var readerOut bytes.Buffer
		reader.Stdout, reader.Stderr = &readerOut, &readerOut
		if err := reader.Start(); err != nil {
			t.Fatal(err)
		}
		m2 := e.create("writer", rw)
		stop2 := e.start("writer", m2)
		r.mustRun(t, container{rootfs: e.rootfs, mounts: m2, script: "echo hello-reader > /data/.tmp && mv /data/.tmp /data/from-writer"})
		if err := reader.Wait(); err != nil || readerOut.String() != "hello-reader\n" {
			t.Errorf("running reader saw %q (%v)", readerOut.String(), err)
		}
		stop2()
		stop1()
		if users, _ := e.store.Users("data"); len(users) != 2 {
			t.Errorf("users while created: %v", users)
		}
		if err := e.store.Remove("data", false); err == nil {
			t.Error("volume removed while containers use it")
		}
		e.store.Teardown("reader", m1, true)
		e.store.Teardown("writer", m2, true)
		if err := e.store.Remove("data", false); err != nil {
			t.Error(err)
		}
	})
}

// TestRunCopyUp: an image's content at a volume's path is in the volume
// at first run, owners kept; nocopy leaves the volume empty; an anonymous
// volume goes with rm -v.
func TestRunCopyUp(t *testing.T) {
	eachRuntime(t, func(t *testing.T, r *ociRuntime) {
		e := newEngine(t)
		app := filepath.Join(e.rootfs, "app")
		must(t, os.MkdirAll(app, 0o750))
		must(t, os.WriteFile(filepath.Join(app, "seed"), []byte("from the image"), 0o640))
		must(t, os.Chown(filepath.Join(app, "seed"), 1000, 1000))
		must(t, os.Symlink("seed", filepath.Join(app, "link")))

		out := r.mustRun(t, container{rootfs: e.rootfs, mounts: e.create("c1", Request{Volumes: map[string]struct{}{"/app": {}}}),
			script: "cat /app/link; echo; stat -c '%u %a' /app/seed /app; grep ' /app ' /proc/self/mountinfo | wc -l"})
		if out != "from the image\n1000 640\n0 750\n1\n" {
			t.Errorf("anonymous volume at /app: %q", out)
		}
		out = r.mustRun(t, container{rootfs: e.rootfs, mounts: e.create("c2", Request{Binds: []string{"empty:/app:nocopy"}}),
			script: "ls -A /app | wc -l"})
		if strings.TrimSpace(out) != "0" {
			t.Errorf("nocopy volume holds %s entries", out)
		}
		vols := e.store.List(ListFilter{})
		if len(vols) != 2 {
			t.Fatalf("volumes: %v", names(vols))
		}
		for _, v := range vols {
			if v.Name != "empty" {
				e.store.Teardown("c1", []Mount{{Type: "volume", Name: v.Name}}, true)
			}
		}
		if got := names(e.store.List(ListFilter{})); len(got) != 1 || got[0] != "empty" {
			t.Errorf("after rm -v: %v", got)
		}
	})
}

// TestRunTmpfs: a tmpfs mount is empty at each start, size-limited,
// noexec by default, and takes its mode.
func TestRunTmpfs(t *testing.T) {
	eachRuntime(t, func(t *testing.T, r *ociRuntime) {
		e := newEngine(t)
		req := Request{Tmpfs: map[string]string{"/scratch": "size=1m"},
			Mounts: []api.Mount{{Type: "tmpfs", Target: "/t2", TmpfsOptions: &api.TmpfsOptions{SizeBytes: 2 << 20, Mode: 0o1770}}}}
		script := `ls -A /scratch | wc -l; echo x > /scratch/left-behind
dd if=/dev/zero of=/scratch/big bs=1k count=2048 2>&1 | grep -o 'No space left on device'
df -k /scratch /t2 | tail -2 | awk '{print $2}'
stat -c %a /t2
grep -E ' /(scratch|t2) ' /proc/self/mountinfo | grep -c noexec`
		for i := 0; i < 2; i++ {
			out, code := e.runOnce(r, req, script)
			want := "0\nNo space left on device\n1024\n2048\n1770\n2\n"
			if i == 1 && r.name == "runc" {
				// runc 1.1 gives a tmpfs the mode of the directory it is
				// mounted on when that exists (the first run made /t2)
				want = strings.Replace(want, "1770", "755", 1)
			}
			if code != 0 || out != want {
				t.Errorf("run %d: exit %d\n%s\nwant\n%s", i, code, out, want)
			}
		}
	})
}

// TestRunDriverVolumes: a tmpfs-backed volume is mounted on the host for
// its users and shared by them; a device-bind volume writes to the host
// directory.
func TestRunDriverVolumes(t *testing.T) {
	eachRuntime(t, func(t *testing.T, r *ociRuntime) {
		e := newEngine(t)
		mustCreate(t, e.store, api.VolumeCreateOptions{Name: "mem", DriverOpts: map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "size=512k"}})
		m1 := e.create("c1", Request{Binds: []string{"mem:/m"}})
		stop1 := e.start("c1", m1)
		out := r.mustRun(t, container{rootfs: e.rootfs, mounts: m1, script: "echo shared > /m/f; df -k /m | tail -1 | awk '{print $2}'"})
		if out != "512\n" {
			t.Errorf("tmpfs volume size: %q", out)
		}
		m2 := e.create("c2", Request{Binds: []string{"mem:/m"}})
		stop2 := e.start("c2", m2)
		stop1() // c1 stops; c2 keeps the volume mounted
		if out := r.mustRun(t, container{rootfs: e.rootfs, mounts: m2, script: "cat /m/f"}); out != "shared\n" {
			t.Errorf("second user of the tmpfs volume read %q", out)
		}
		stop2()
		if mountsAt(t, m2[0].Source) != 0 {
			t.Error("tmpfs volume mounted after its last user stopped")
		}
		e.store.Teardown("c1", m1, true)
		e.store.Teardown("c2", m2, true)

		host := t.TempDir()
		mustCreate(t, e.store, api.VolumeCreateOptions{Name: "hostdir", DriverOpts: map[string]string{"type": "none", "device": host, "o": "bind"}})
		if out, code := e.runOnce(r, Request{Binds: []string{"hostdir:/h"}}, "echo from-container > /h/z"); code != 0 {
			t.Fatalf("%d %s", code, out)
		}
		if data, _ := os.ReadFile(filepath.Join(host, "z")); string(data) != "from-container\n" {
			t.Errorf("host directory has %q", data)
		}
	})
}

// TestRunBinds: a -v bind of a missing host path creates it; --mount of
// one is refused at create; a read-only bind refuses writes.
func TestRunBinds(t *testing.T) {
	eachRuntime(t, func(t *testing.T, r *ociRuntime) {
		e := newEngine(t)
		missing := filepath.Join(t.TempDir(), "made/by/start")
		if out, code := e.runOnce(r, Request{Binds: []string{missing + ":/w"}}, "echo in > /w/f"); code != 0 {
			t.Fatalf("%d %s", code, out)
		}
		if data, _ := os.ReadFile(filepath.Join(missing, "f")); string(data) != "in\n" {
			t.Errorf("-v of a missing path: %q", data)
		}
		other := filepath.Join(t.TempDir(), "missing")
		if _, err := Plan(Request{Mounts: []api.Mount{{Type: "bind", Source: other, Target: "/w"}}}); err == nil {
			t.Error("--mount of a missing host path accepted")
		}
		if _, err := os.Stat(other); err == nil {
			t.Error("--mount created its missing host path")
		}
		out, code := e.runOnce(r, Request{Mounts: []api.Mount{{Type: "bind", Source: missing, Target: "/r", ReadOnly: true}}}, "cat /r/f; touch /r/g")
		if code == 0 || !strings.Contains(out, "in\n") || !strings.Contains(out, "Read-only file system") {
			t.Errorf("ro bind: %d %q", code, out)
		}
	})
}

// TestRunPropagation: with rshared a mount made inside the container
// below a bind appears on the host path; with rprivate (the default) it
// does not.
func TestRunPropagation(t *testing.T) {
	eachRuntime(t, func(t *testing.T, r *ociRuntime) {
		e := newEngine(t)
		host := filepath.Join(t.TempDir(), "shared")
		must(t, os.Mkdir(host, 0o755))
		// the host path on a shared mount of its own
		must(t, unix.Mount(host, host, "", unix.MS_BIND, ""))
		t.Cleanup(func() { unix.Unmount(host, unix.MNT_DETACH) })
		must(t, unix.Mount("", host, "", unix.MS_SHARED, ""))
		script := "mkdir -p /h/sub && mount -t tmpfs tmpfs /h/sub && echo made-inside > /h/sub/f"

		_, rootProp, err := Spec(nil, []Mount{{Type: "bind", Source: host, Destination: "/h", RW: true, Propagation: api.PropagationRShared}})
		if err != nil || rootProp != "shared" {
			t.Fatalf("rshared: root propagation %q, %v", rootProp, err)
		}
		if out, code := e.runOnce(r, Request{Binds: []string{host + ":/h:rshared"}}, script, "CAP_SYS_ADMIN"); code != 0 {
			t.Fatalf("%d %s", code, out)
		}
		sub := filepath.Join(host, "sub")
		if mountsAt(t, sub) != 1 {
			t.Error("rshared: the container's mount is not on the host")
		}
		if data, _ := os.ReadFile(filepath.Join(sub, "f")); string(data) != "made-inside\n" {
			t.Errorf("rshared: host sees %q", data)
		}
		must(t, unix.Unmount(sub, 0))

		if out, code := e.runOnce(r, Request{Binds: []string{host + ":/h"}}, script, "CAP_SYS_ADMIN"); code != 0 {
			t.Fatalf("%d %s", code, out)
		}
		if mountsAt(t, sub) != 0 {
			t.Error("rprivate: the container's mount reached the host")
			unix.Unmount(sub, unix.MNT_DETACH)
		}
		if _, err := os.Stat(filepath.Join(sub, "f")); err == nil {
			t.Error("rprivate: the file written on the container's tmpfs is on the host")
		}
	})
}
