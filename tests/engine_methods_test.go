package tests

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"minidock/api"
	"minidock/daemon"
	"minidock/internal/errdefs"
	"minidock/internal/testutil"
	"minidock/network"
	"minidock/shim"
)

// The engine's operations are plain Go methods: this test drives a
// daemon.Daemon in its own process, with no HTTP, as a builder would:
// import, create from a typed config, attach, start, wait, exec, commit,
// remove.
func TestEngineMethods(t *testing.T) {
	testutil.RequireRoot(t)
	n := engineSeq.Add(1)
	execRoot := fmt.Sprintf("/run/minidock-test-%d-e%d", os.Getpid(), n)
	var logBuf bytes.Buffer
	cfg := daemon.Config{DataRoot: t.TempDir(), ExecRoot: execRoot, Binary: binary,
		CgroupParent: fmt.Sprintf("/minidock-test-%d-e%d", os.Getpid(), n),
		Network: network.Config{Bridge: fmt.Sprintf("mdt%d", (int64(os.Getpid())%10000)*100+n%100), BIP: fmt.Sprintf("10.213.%d.1/24", n%250+1),
			AddressPools: []string{fmt.Sprintf("base=10.%d.0.0/16,size=24", 214+n%40)}, NftTable: fmt.Sprintf("minidock_test_%d_%d", os.Getpid(), n),
			DNS: []string{"none"}},
		Log: log.New(&logBuf, "", 0)}
	if os.Getenv("MINIDOCK_TEST_RUNTIME") == "runc" {
		cfg.Runtime = "runc"
	}
	d, err := daemon.New(cfg)
	require.NoError(t, err)
	closed := false
	t.Cleanup(func() {
		if !closed {
			d.Close()
		}
		os.RemoveAll(execRoot)
		if t.Failed() {
			t.Logf("daemon log:\n%s", logBuf.String())
		}
	})
	ctx := context.Background()

	imageID, err := d.ImportImage(ctx, bytes.NewReader(busyboxTar(t)), "busybox:latest", nil)
	require.NoError(t, err)

	// a typed create; a bad one is a typed error
	_, err = d.CreateContainer(ctx, daemon.ContainerCreateConfig{Config: api.ContainerConfig{Image: "nosuch"}})
	require.Equal(t, errdefs.NotFound, errdefs.KindOf(err), "%v", err)
	cc := daemon.ContainerCreateConfig{Name: "step",
		Config:     api.ContainerConfig{Image: imageID, Cmd: []string{"sh", "-c", "echo built > /result; echo out; echo err >&2; exit 3"}},
		HostConfig: api.HostConfig{NetworkMode: "none"}}
	created, err := d.CreateContainer(ctx, cc)
	require.NoError(t, err)
	id := created.ID

	// attach before the start, as the docker CLI does: all the output
	out := &syncBuffer{}
	attached := make(chan error, 1)
	go func() {
		attached <- d.ContainerAttach(ctx, id, daemon.AttachOptions{Stdout: true, Stderr: true,
			Streams: func(tty bool) (io.Reader, io.Writer, error) { return nil, out, nil }})
	}()
	wait, err := d.ContainerWait(ctx, id, "next-exit")
	require.NoError(t, err)
	require.NoError(t, d.StartContainer(ctx, id))
	require.Equal(t, 3, <-wait)
	require.NoError(t, <-attached)
	var stdout, stderr bytes.Buffer
	require.NoError(t, api.Demux(bytes.NewReader(out.Bytes()), &stdout, &stderr))
	require.Equal(t, "out\n", stdout.String())
	require.Equal(t, "err\n", stderr.String())
	c, err := d.ContainerInspect(ctx, "step")
	require.NoError(t, err)
	require.Equal(t, "exited", c.State.Status)
	require.Equal(t, 3, c.State.ExitCode)
	require.Equal(t, errdefs.NotModified, errdefs.KindOf(d.StopContainer(ctx, id, daemon.StopOptions{})))

	// commit its change as a layer, as a builder's step does, and run
	// the new image: the file is there
	layered, err := d.Commit(ctx, id, daemon.CommitOptions{Ref: "built:1", Changes: []string{`CMD ["cat", "/result"]`}})
	require.NoError(t, err)
	require.NoError(t, d.RemoveContainer(ctx, id, daemon.RemoveOptions{}))
	next, err := d.CreateContainer(ctx, daemon.ContainerCreateConfig{Config: api.ContainerConfig{Image: layered,
		Cmd: []string{"sh", "-c", "cat /result /copied"}}, HostConfig: api.HostConfig{NetworkMode: "none"}})
	require.NoError(t, err)
	// a builder's COPY: a file written into the container's root before it runs
	require.NoError(t, d.WithContainerRootfs(ctx, next.ID, func(root string) error {
		return os.WriteFile(filepath.Join(root, "copied"), []byte("copied\n"), 0o644)
	}))
	wait, err = d.ContainerWait(ctx, next.ID, "next-exit")
	require.NoError(t, err)
	require.NoError(t, d.StartContainer(ctx, next.ID))
	require.Equal(t, 0, <-wait)
	logs, err := d.ContainerLogs(ctx, next.ID, daemon.LogsOptions{Stdout: true, Tail: -1})
	require.NoError(t, err)
	var lines []string
	require.NoError(t, logs.Each(ctx, func(e *shim.LogEntry) error { lines = append(lines, e.Log); return nil }, func() {}))
	require.Equal(t, []string{"built\n", "copied\n"}, lines)
	require.NoError(t, d.RemoveContainer(ctx, next.ID, daemon.RemoveOptions{}))

	// exec in a running container, its output on a writer
	run, err := d.CreateContainer(ctx, daemon.ContainerCreateConfig{Config: api.ContainerConfig{Image: "busybox", Cmd: []string{"sleep", "300"}}})
	require.NoError(t, err)
	require.NoError(t, d.StartContainer(ctx, run.ID))
	execID, err := d.ExecCreate(ctx, run.ID, api.ExecConfig{Cmd: []string{"sh", "-c", "hostname; exit 4"}, AttachStdout: true})
	require.NoError(t, err)
	var execOut syncBuffer
	require.NoError(t, d.ExecStart(ctx, execID, daemon.ExecStartOptions{
		Streams: func(tty bool) (io.Reader, io.Writer, error) { return nil, &execOut, nil }}))
	stdout.Reset()
	require.NoError(t, api.Demux(bytes.NewReader(execOut.Bytes()), &stdout, io.Discard))
	require.Equal(t, run.ID[:12]+"\n", stdout.String())
	ins, err := d.ExecInspect(ctx, execID)
	require.NoError(t, err)
	require.Equal(t, 4, *ins.ExitCode)
	timeout := time.Duration(0)
	require.NoError(t, d.StopContainer(ctx, run.ID, daemon.StopOptions{Timeout: &timeout}))
	require.NoError(t, d.RemoveContainer(ctx, run.ID, daemon.RemoveOptions{}))

	list, err := d.Containers(ctx, daemon.ListOptions{All: true})
	require.NoError(t, err)
	require.Empty(t, list)
	d.Close()
	closed = true
	for _, m := range testutil.Mounts(t) {
		require.False(t, strings.HasPrefix(m, cfg.DataRoot), "mount left: %s", m)
	}
	ents, _ := os.ReadDir(filepath.Join(cfg.DataRoot, "containers"))
	require.Empty(t, ents)
	waitNoProcesses(execRoot, 3*time.Second)
	require.Empty(t, processesMentioning(execRoot), "processes left (the spare shim?)")
	require.False(t, hostLinks()[cfg.Network.Bridge], "the bridge left")
}

// syncBuffer is a bytes.Buffer that goroutines may write while another
// reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]byte(nil), b.buf.Bytes()...)
}
