package runtime

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"minidock/kernel"
)

// These tests run the init sequence against kernel.Recorder: no call
// reaches the kernel, so they need no root. They check the order of the
// steps and of the calls in each, and their arguments, as the trace of a
// real run shows them (tests/runtime_trace_test.go checks that trace).

// testBundle is a config whose every path lives in a temporary directory,
// so that what the sequence reads (stat of masked paths, statfs of
// read-only ones) is there, and a rootfs with the directories it needs.
type testBundle struct {
	dir, rootfs string
	spec        *specs.Spec
}

func newTestBundle(t *testing.T) *testBundle {
	t.Helper()
	dir := t.TempDir()
	b := &testBundle{dir: dir, rootfs: filepath.Join(dir, "rootfs")}
	for _, d := range []string{"rootfs/proc", "rootfs/dev", "rootfs/data", "host-data", "ro", "maskdir"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "maskfile"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s := DefaultSpec()
	s.Process.Terminal = false
	s.Process.Args = []string{"/bin/true"}
	s.Process.Cwd = "/data"
	s.Mounts = []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc"},
		{Destination: "/data", Type: "bind", Source: filepath.Join(dir, "host-data"), Options: []string{"rbind", "ro"}},
	}
	s.Linux.ReadonlyPaths = []string{filepath.Join(dir, "ro"), filepath.Join(dir, "ro-missing")}
	s.Linux.MaskedPaths = []string{filepath.Join(dir, "maskfile"), filepath.Join(dir, "maskdir"), filepath.Join(dir, "mask-missing")}
	s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1", "kernel.shmmax": "4096"}
	b.spec = s
	return b
}

// run builds the init's config as Create does and runs steps against a
// Recorder; fail makes chosen calls fail.
func (b *testBundle) run(t *testing.T, steps []initStep, fail func(*kernel.Recorder)) (*kernel.Recorder, error) {
	t.Helper()
	cfg, err := initConfigFor(b.spec, b.rootfs, CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rec := kernel.NewRecorder()
	// the kernel would answer ENOENT for these; the fake must be told
	rec.FailOn("mount", "ro-missing", unix.ENOENT)
	if fail != nil {
		fail(rec)
	}
	p := &initProcess{cfg: cfg}
	return rec, p.run(rec, steps)
}

// untilExec are the steps of a new container before the init waits for
// start (which needs the handshake's descriptors).
var untilExec = createSteps[:5]

// calls lists the recorded calls of one step as "op args" strings.
func calls(rec *kernel.Recorder, step string) []string {
	var out []string
	for _, c := range rec.Calls() {
		if c.Step == step && c.Op != "begin" {
			out = append(out, c.Op+" "+c.Args)
		}
	}
	return out
}

func TestInitStepsInOrder(t *testing.T) {
	b := newTestBundle(t)
	rec, err := b.run(t, untilExec, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"setupNamespaces", "prepareRootfs", "enterRootfs", "finalizeRootfs", "finishProcess"}
	if got := rec.Steps(); !slices.Equal(got, want) {
		t.Errorf("steps %v, want %v", got, want)
	}
}

func TestInitSetupNamespaces(t *testing.T) {
	b := newTestBundle(t)
	b.spec.Hostname, b.spec.Domainname = "box", "example.org"
	rec, err := b.run(t, untilExec, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The default spec makes pid, network, ipc, uts, mount and cgroup
	// namespaces: clone made all but cgroup, which the init unshares.
	want := []string{
		"unshare CLONE_NEWCGROUP",
		"ioctl SIOCSIFFLAGS, lo, IFF_UP",
		`sethostname "box"`,
		`setdomainname "example.org"`,
	}
	if got := calls(rec, "setupNamespaces"); !slices.Equal(got, want) {
		t.Errorf("setupNamespaces:\n got %q\nwant %q", got, want)
	}
}

func TestInitPrepareRootfs(t *testing.T) {
	b := newTestBundle(t)
	rec, err := b.run(t, untilExec, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := calls(rec, "prepareRootfs")
	r, hostData := b.rootfs, filepath.Join(b.dir, "host-data")
	// each config mount is made on its destination opened in the rootfs
	// (the root's descriptor 100, the destination's 101, both closed after)
	openRoot := "open " + r + ", O_RDONLY|O_DIRECTORY|O_CLOEXEC|O_PATH"
	openAt := func(rel string) string {
		return "openat2 100 (" + r + "), " + rel + ", O_RDONLY|O_CLOEXEC|O_PATH, RESOLVE_NO_MAGICLINKS|RESOLVE_IN_ROOT"
	}
	wantPrefix := []string{
		"mount dst=/, flags=MS_REC|MS_SLAVE",
		"mount src=" + r + ", dst=" + r + ", flags=MS_BIND|MS_REC",
		openRoot, openAt("proc"),
		"mount src=proc, dst=/proc/self/fd/101, type=proc",
		// a bind mount first, then the remount that applies "ro", each on
		// the destination opened again
		openRoot, openAt("data"),
		"mount src=" + hostData + ", dst=/proc/self/fd/101, flags=MS_BIND|MS_REC",
		openAt("data"),
	}
	if len(got) < len(wantPrefix) || !slices.Equal(got[:len(wantPrefix)], wantPrefix) {
		t.Fatalf("prepareRootfs starts with\n %q\nwant\n %q", got[:min(len(got), len(wantPrefix))], wantPrefix)
	}
	rest := strings.Join(got[len(wantPrefix):], "\n")
	for _, w := range []string{
		"mount dst=/proc/self/fd/101, flags=MS_RDONLY|",
		"mount src=tmpfs, dst=" + r + "/dev, type=tmpfs, flags=MS_NOSUID|MS_STRICTATIME, data=mode=755,size=65536k",
		"mknod " + r + "/dev/null, mode=S_IFCHR|0666, dev=1:3",
		"mknod " + r + "/dev/tty, mode=S_IFCHR|0666, dev=5:0",
		"symlink /proc/self/fd → " + r + "/dev/fd",
		"symlink pts/ptmx → " + r + "/dev/ptmx",
		"mount src=shm, dst=" + r + "/dev/shm, type=tmpfs, flags=MS_NOSUID|MS_NODEV|MS_NOEXEC, data=mode=1777,size=65536k",
	} {
		if !strings.Contains(rest, w) {
			t.Errorf("prepareRootfs lacks %q in:\n%s", w, rest)
		}
	}
	// the remount of /data comes right after its bind, /dev after the
	// config's mounts, the nodes after /dev, shm last
	order := []string{"/proc/self/fd/101, flags=MS_RDONLY", r + "/dev, type=tmpfs", "mknod " + r + "/dev/null", "symlink /proc/self/fd", r + "/dev/shm"}
	last := -1
	for _, o := range order {
		i := strings.Index(rest, o)
		if i <= last {
			t.Errorf("%q out of order in:\n%s", o, rest)
		}
		last = i
	}
}

func TestInitEnterRootfsPivotRoot(t *testing.T) {
	b := newTestBundle(t)
	rec, err := b.run(t, untilExec, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"open /, O_RDONLY|O_DIRECTORY|O_CLOEXEC",
		"open " + b.rootfs + ", O_RDONLY|O_DIRECTORY|O_CLOEXEC",
		"fchdir 101", // the new root, by the descriptor the fake gave
		"pivot_root ., .",
		"fchdir 100", // back to the old root, stacked on top
		"mount dst=., flags=MS_REC|MS_SLAVE",
		"umount2 ., flags=MNT_DETACH",
		"chdir /",
	}
	if got := calls(rec, "enterRootfs"); !slices.Equal(got, want) {
		t.Errorf("enterRootfs:\n got %q\nwant %q", got, want)
	}
}

func TestInitEnterRootfsNoPivot(t *testing.T) {
	b := newTestBundle(t)
	cfg, err := initConfigFor(b.spec, b.rootfs, CreateOptions{NoPivot: true})
	if err != nil {
		t.Fatal(err)
	}
	rec := kernel.NewRecorder()
	if err := (&initProcess{cfg: cfg}).run(rec, []initStep{{"enterRootfs", (*initProcess).enterRootfs}}); err != nil {
		t.Fatal(err)
	}
	want := []string{"chdir " + b.rootfs, "mount src=" + b.rootfs + ", dst=/, flags=MS_MOVE", "chroot .", "chdir /"}
	if got := calls(rec, "enterRootfs"); !slices.Equal(got, want) {
		t.Errorf("enterRootfs --no-pivot:\n got %q\nwant %q", got, want)
	}
}

func TestInitFinalizeRootfs(t *testing.T) {
	b := newTestBundle(t)
	rec, err := b.run(t, untilExec, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := calls(rec, "finalizeRootfs")
	d := b.dir
	ops := []string{
		// sysctls, by name, before /proc/sys is made read-only
		`write /proc/sys/kernel/shmmax, "4096"`,
		`write /proc/sys/net/ipv4/ip_forward, "1"`,
		// read-only paths: bind, then remount read-only; a missing one is skipped
		"mount src=" + d + "/ro, dst=" + d + "/ro, flags=MS_BIND|MS_REC",
		"mount dst=" + d + "/ro, flags=MS_RDONLY|MS_NOSUID|MS_NODEV|MS_NOEXEC|MS_REMOUNT|MS_BIND",
		"mount src=" + d + "/ro-missing, dst=" + d + "/ro-missing, flags=MS_BIND|MS_REC",
		// masked paths: /dev/null over a file, an empty tmpfs over a directory
		"mount src=/dev/null, dst=" + d + "/maskfile, flags=MS_BIND",
		"mount src=tmpfs, dst=" + d + "/maskdir, type=tmpfs, flags=MS_RDONLY, data=size=0",
		// the root, read-only (the default spec's root.readonly)
		"mount dst=/, flags=MS_RDONLY|MS_REMOUNT|MS_BIND",
	}
	if len(got) != len(ops) {
		t.Fatalf("finalizeRootfs made %d calls, want %d:\n%s", len(got), len(ops), strings.Join(got, "\n"))
	}
	for i, w := range ops {
		// a remount keeps the flags the kernel locks on the mount (statfs):
		// compare up to those
		if !strings.HasPrefix(got[i], w) {
			t.Errorf("call %d: %q, want %q...", i, got[i], w)
		}
	}
}

func TestInitFinishProcess(t *testing.T) {
	b := newTestBundle(t)
	b.spec.Process.User = specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{10}}
	b.spec.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 100, Hard: 200}}
	rec, err := b.run(t, untilExec, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := calls(rec, "finishProcess")
	var drops, rest []string
	for _, c := range got {
		if strings.HasPrefix(c, "prctl PR_CAPBSET_DROP") {
			drops = append(drops, c)
		} else {
			rest = append(rest, c)
		}
	}
	want := []string{
		"prlimit RLIMIT_NOFILE, soft=100, hard=200",
		"chdir /data",
		"prctl PR_SET_KEEPCAPS, 1",
		"setgroups [10]",
		"setresgid 1000, 1000, 1000",
		"setresuid 1000, 1000, 1000",
		"prctl PR_SET_KEEPCAPS, 0",
		"capset effective=CAP_KILL|CAP_NET_BIND_SERVICE|CAP_AUDIT_WRITE, permitted=CAP_KILL|CAP_NET_BIND_SERVICE|CAP_AUDIT_WRITE, inheritable=0",
		"prctl PR_SET_NO_NEW_PRIVS, 1",
	}
	if !slices.Equal(rest, want) {
		t.Errorf("finishProcess:\n got %q\nwant %q", rest, want)
	}
	// the bounding set keeps the three capabilities of the default spec
	if len(drops) != lastCap()+1-3 {
		t.Errorf("%d capabilities dropped from the bounding set, want %d", len(drops), lastCap()+1-3)
	}
	for _, keep := range []string{"CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_AUDIT_WRITE"} {
		if slices.Contains(drops, "prctl PR_CAPBSET_DROP, "+keep) {
			t.Errorf("%s dropped from the bounding set", keep)
		}
	}
	// the drops come before the user and capabilities are set
	if i := slices.Index(got, "prctl PR_SET_KEEPCAPS, 1"); i < len(drops) {
		t.Errorf("the bounding set is dropped after the user is set:\n%s", strings.Join(got, "\n"))
	}
}

func TestInitUserNamespaceBindsDevices(t *testing.T) {
	b := newTestBundle(t)
	MakeRootless(b.spec, []specs.LinuxIDMapping{{HostID: 1000, Size: 1}}, []specs.LinuxIDMapping{{HostID: 1000, Size: 1}})
	rec, err := b.run(t, untilExec, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(calls(rec, "prepareRootfs"), "\n")
	if strings.Contains(got, "mknod") {
		t.Errorf("mknod in a user namespace:\n%s", got)
	}
	if want := "mount src=/dev/null, dst=" + b.rootfs + "/dev/null, flags=MS_BIND"; !strings.Contains(got, want) {
		t.Errorf("no %q in:\n%s", want, got)
	}
}

// A failed call ends the sequence with an error that names the step, the
// call with its arguments and the errno; no later step runs.
func TestInitErrorNamesStepAndCall(t *testing.T) {
	b := newTestBundle(t)
	rec, err := b.run(t, untilExec, func(r *kernel.Recorder) { r.FailOn("pivot_root", "", unix.EINVAL) })
	var ie *InitError
	if !errors.As(err, &ie) {
		t.Fatalf("error %v (%T), want an *InitError", err, err)
	}
	if ie.Step != "enterRootfs" || !errors.Is(err, unix.EINVAL) {
		t.Errorf("error in step %q, errno %v; want enterRootfs, EINVAL", ie.Step, ie.Errno)
	}
	want := "container init: enterRootfs: pivot_root to " + b.rootfs + ": pivot_root ., .: invalid argument"
	if err.Error() != want {
		t.Errorf("error %q\nwant  %q", err, want)
	}
	if got := rec.Steps(); got[len(got)-1] != "enterRootfs" {
		t.Errorf("steps after the failure ran: %v", got)
	}
}

func TestInitExecJoinsNamespaces(t *testing.T) {
	cfg := &initConfig{Exec: true, Process: &initProc{Args: []string{"sh"}, Cwd: "/"}, Namespaces: []specs.LinuxNamespace{
		{Type: specs.NetworkNamespace, Path: "/proc/42/ns/net"},
		{Type: specs.MountNamespace, Path: "/proc/42/ns/mnt"},
	}}
	rec := kernel.NewRecorder()
	if err := (&initProcess{cfg: cfg}).run(rec, execSteps[:2]); err != nil {
		t.Fatal(err)
	}
	// every file is opened before the first setns: after the mount
	// namespace is entered, /proc/42 would be the container's
	want := []string{
		"unshare CLONE_FS",
		"open /proc/42/ns/net, O_RDONLY|O_CLOEXEC",
		"open /proc/42/ns/mnt, O_RDONLY|O_CLOEXEC",
		"setns fd=100 (/proc/42/ns/net), nstype=CLONE_NEWNET",
		"setns fd=101 (/proc/42/ns/mnt), nstype=CLONE_NEWNS",
	}
	if got := calls(rec, "setupNamespaces"); !slices.Equal(got, want) {
		t.Errorf("setupNamespaces of exec:\n got %q\nwant %q", got, want)
	}
}
