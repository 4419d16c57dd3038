package build

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"minidock/archive"
	"minidock/image"
	"minidock/internal/testutil"
)

// testBackend is the engine as far as the builder's tests need it, made
// of the real parts: the image store (layers unpacked, overlay mounts,
// commits of upper dirs), and runc for RUN's processes in a bundle whose
// root is the mounted rootfs. It stands in for the daemon until the
// daemon implements Backend; it counts what it is asked to do.
type testBackend struct {
	t        testing.TB
	store    *image.Store
	dataRoot string
	runcRoot string
	bundles  string

	mu       sync.Mutex
	ctrs     map[string]ContainerConfig
	calls    map[string]int // method name -> calls
	runOrder []string       // each RunContainer's argv, joined
}

var _ Backend = (*testBackend)(nil)

// newTestBackend opens a store on a fresh data root with busybox:latest
// in it (CMD ["sh"]), and checks at the end that no container, mount or
// runc state is left.
func newTestBackend(t testing.TB) *testBackend {
	t.Helper()
	testutil.RequireRoot(t)
	if _, err := exec.LookPath("runc"); err != nil {
		t.Skip("runc not installed (scripts/install-deps.sh installs it)")
	}
	dir := t.TempDir()
	b := openTestBackend(t, filepath.Join(dir, "data"), filepath.Join(dir, "runc"), filepath.Join(dir, "bundles"))
	rootfs := filepath.Join(dir, "busybox")
	testutil.MakeBusyboxRootfs(t, rootfs)
	var buf bytes.Buffer
	if err := archive.WriteTree(&buf, rootfs); err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.Import(&buf, "busybox:latest", []string{`CMD ["sh"]`}); err != nil {
		t.Fatal(err)
	}
	return b
}

// openTestBackend opens (or reopens: a daemon restart) a store.
func openTestBackend(t testing.TB, dataRoot, runcRoot, bundles string) *testBackend {
	t.Helper()
	s, err := image.Open(dataRoot)
	if err != nil {
		t.Fatal(err)
	}
	b := &testBackend{t: t, store: s, dataRoot: dataRoot, runcRoot: runcRoot, bundles: bundles,
		ctrs: map[string]ContainerConfig{}, calls: map[string]int{}}
	t.Cleanup(b.checkClean)
	return b
}

// checkClean fails the test if a container, mount or runc container is
// left behind.
func (b *testBackend) checkClean() {
	b.t.Helper()
	b.mu.Lock()
	left := len(b.ctrs)
	b.mu.Unlock()
	if left > 0 {
		b.t.Errorf("%d containers left", left)
	}
	if ents, _ := os.ReadDir(filepath.Join(b.dataRoot, "image", "rootfs")); len(ents) > 0 {
		b.t.Errorf("rootfs records left: %d", len(ents))
	}
	if ents, _ := os.ReadDir(filepath.Join(b.dataRoot, "containers")); len(ents) > 0 {
		b.t.Errorf("container directories left: %d", len(ents))
	}
	if m := testutil.MountsUnder(b.t, b.dataRoot); len(m) > 0 {
		b.t.Errorf("mounts left: %v", m)
	}
	if ents, _ := os.ReadDir(b.runcRoot); len(ents) > 0 {
		b.t.Errorf("runc containers left: %d", len(ents))
	}
}

func (b *testBackend) count(method string) {
	b.mu.Lock()
	b.calls[method]++
	b.mu.Unlock()
}

// created is the number of containers made so far.
func (b *testBackend) created() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.calls["CreateContainer"]
}

func (b *testBackend) GetImage(ctx context.Context, ref string, opts GetImageOptions) (*Image, error) {
	b.count("GetImage")
	img, err := b.store.Resolve(ref)
	if errors.Is(err, image.ErrNotFound) {
		return nil, fmt.Errorf("pull %s: no registry is reachable: %w", ref, err)
	}
	if err != nil {
		return nil, err
	}
	cfg, err := b.store.RunConfig(img.ID.String())
	if err != nil {
		return nil, err
	}
	return &Image{ID: img.ID.String(), Config: *cfg}, nil
}

func (b *testBackend) CreateContainer(ctx context.Context, cfg ContainerConfig) (*Container, error) {
	b.count("CreateContainer")
	ref := cfg.Image
	if ref == "" {
		empty, err := b.store.CreateImage("", image.CommitOptions{})
		if err != nil {
			return nil, err
		}
		ref = empty.ID.String()
	}
	var rnd [32]byte
	rand.Read(rnd[:])
	id := hex.EncodeToString(rnd[:])
	if _, err := b.store.PrepareRootfs(id, ref); err != nil {
		return nil, err
	}
	root, err := b.store.Mount(id)
	if err != nil {
		b.store.RemoveRootfs(id)
		return nil, err
	}
	b.mu.Lock()
	b.ctrs[id] = cfg
	b.mu.Unlock()
	return &Container{ID: id, Root: root}, nil
}

// RunContainer runs the container's process with runc, in new pid, ipc,
// uts, mount (and, unless NetworkMode is host, network) namespaces.
func (b *testBackend) RunContainer(ctx context.Context, id string, out io.Writer) (int, error) {
	b.count("RunContainer")
	b.mu.Lock()
	cfg, ok := b.ctrs[id]
	b.runOrder = append(b.runOrder, strings.Join(cfg.Cmd, " "))
	b.mu.Unlock()
	if !ok {
		return 0, fmt.Errorf("no container %s", id)
	}
	rfs, err := b.store.Rootfs(id)
	if err != nil {
		return 0, err
	}
	spec, err := runcSpec(rfs.Merged, cfg)
	if err != nil {
		return 0, err
	}
	bundle := filepath.Join(b.bundles, id)
	if err := os.MkdirAll(bundle, 0o700); err != nil {
		return 0, err
	}
	defer os.RemoveAll(bundle)
	data, _ := json.Marshal(spec)
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), data, 0o600); err != nil {
		return 0, err
	}
	cmd := exec.CommandContext(ctx, "runc", "--root", b.runcRoot, "run", "--bundle", bundle, id)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Cancel = func() error {
		return exec.Command("runc", "--root", b.runcRoot, "kill", id, "KILL").Run()
	}
	err = cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ctx.Err() == nil {
		return ee.ExitCode(), nil
	}
	if err != nil {
		return 0, fmt.Errorf("runc run %s: %w", id, err)
	}
	return 0, nil
}

// runcSpec is a minimal OCI config for a step's process.
func runcSpec(root string, cfg ContainerConfig) (*specs.Spec, error) {
	uid, gid, err := userIDs(root, cfg.User)
	if err != nil {
		return nil, err
	}
	cwd := cfg.WorkingDir
	if cwd == "" {
		cwd = "/"
	}
	caps := []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_SETGID",
		"CAP_SETUID", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_SYS_CHROOT", "CAP_MKNOD",
		"CAP_AUDIT_WRITE", "CAP_SETFCAP"}
	ns := []specs.LinuxNamespace{{Type: specs.PIDNamespace}, {Type: specs.IPCNamespace}, {Type: specs.UTSNamespace}, {Type: specs.MountNamespace}}
	if cfg.NetworkMode != "host" {
		ns = append(ns, specs.LinuxNamespace{Type: specs.NetworkNamespace})
	}
	return &specs.Spec{
		Version:  specs.Version,
		Root:     &specs.Root{Path: root},
		Hostname: "build",
		Process: &specs.Process{
			Args: cfg.Cmd, Env: cfg.Env, Cwd: cwd,
			User:         specs.User{UID: uint32(uid), GID: uint32(gid)},
			Capabilities: &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps},
		},
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
		},
		Linux: &specs.Linux{Namespaces: ns},
	}, nil
}

// userIDs resolves USER as the runtime does: a name through the image's
// /etc/passwd (its primary group), a group name through /etc/group.
func userIDs(root, user string) (int, int, error) {
	if user == "" {
		return 0, 0, nil
	}
	t := &sourceTree{root: root, what: "the container"}
	u, g, hasGroup := strings.Cut(user, ":")
	var uid, gid int
	if n, err := strconv.Atoi(u); err == nil {
		uid = n
	} else {
		f, err := t.lookup("/etc/passwd", u)
		if err != nil {
			return 0, 0, fmt.Errorf("USER %s: %w", user, err)
		}
		uid, _ = strconv.Atoi(f[2])
		gid, _ = strconv.Atoi(f[3])
	}
	if hasGroup {
		var err error
		if gid, err = t.lookupID("/etc/group", g); err != nil {
			return 0, 0, fmt.Errorf("USER %s: %w", user, err)
		}
	}
	return uid, gid, nil
}

func (b *testBackend) RemoveContainer(ctx context.Context, id string) error {
	b.count("RemoveContainer")
	exec.Command("runc", "--root", b.runcRoot, "delete", "--force", id).Run()
	b.mu.Lock()
	delete(b.ctrs, id)
	b.mu.Unlock()
	return b.store.RemoveRootfs(id)
}

func (b *testBackend) CommitContainer(ctx context.Context, id string, c Commit) (string, error) {
	b.count("CommitContainer")
	img, err := b.store.Commit(id, image.CommitOptions{RunConfig: &c.Config, Author: c.Author, CreatedBy: c.CreatedBy})
	if err != nil {
		return "", err
	}
	return img.ID.String(), b.remember(img.ID, c.CacheKeys)
}

func (b *testBackend) CreateImage(ctx context.Context, parent string, c Commit) (string, error) {
	b.count("CreateImage")
	img, err := b.store.CreateImage(parent, image.CommitOptions{RunConfig: &c.Config, Author: c.Author, CreatedBy: c.CreatedBy})
	if err != nil {
		return "", err
	}
	return img.ID.String(), b.remember(img.ID, c.CacheKeys)
}

func (b *testBackend) remember(id digest.Digest, keys []string) error {
	for _, k := range keys {
		if err := b.store.SetCachedImage(k, id); err != nil {
			return err
		}
	}
	return nil
}

func (b *testBackend) CachedImage(ctx context.Context, key string) (string, error) {
	img, err := b.store.CachedImage(key)
	if err != nil || img == nil {
		return "", err
	}
	return img.ID.String(), nil
}

func (b *testBackend) TagImage(ctx context.Context, id, ref string) error {
	b.count("TagImage")
	return b.store.Tag(id, ref)
}

// runImage runs a container of image ref as `docker run` would (its
// entrypoint and cmd, or args as the cmd), and returns its output.
func (b *testBackend) runImage(t testing.TB, ref string, args ...string) (string, int) {
	t.Helper()
	img, err := b.GetImage(context.Background(), ref, GetImageOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := img.Config
	cmd := c.Cmd
	if len(args) > 0 {
		cmd = args
	}
	ctr, err := b.CreateContainer(context.Background(), ContainerConfig{Image: img.ID, Cmd: append(append([]string(nil), c.Entrypoint...), cmd...),
		Env: c.Env, User: c.User, WorkingDir: c.WorkingDir, NetworkMode: "none"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.RemoveContainer(context.Background(), ctr.ID)
	var out bytes.Buffer
	code, err := b.RunContainer(context.Background(), ctr.ID, &out)
	if err != nil {
		t.Fatal(err)
	}
	return out.String(), code
}
