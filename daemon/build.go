package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/opencontainers/go-digest"

	"minidock/api"
	"minidock/build"
	"minidock/image"
	"minidock/internal/errdefs"
)

// Build is POST /build, Docker's classic builder: package build runs the
// Dockerfile of the context tar contextTar, and each of its steps is an
// operation of this engine (buildBackend): a RUN is one of the engine's
// own containers, created, attached, started, waited for, committed and
// removed as `docker run` and `docker commit` would; a config step is a
// new image in the store. Progress goes to out as Docker's JSON stream.
// It returns the final image's ID. Cancelling ctx (the client hung up)
// kills the running step, removes its container and ends the build.
func (d *Daemon) Build(ctx context.Context, opts build.Options, contextTar io.Reader, out io.Writer) (string, error) {
	opts.TempDir = d.buildDir()
	if err := os.MkdirAll(opts.TempDir, 0o700); err != nil {
		return "", fmt.Errorf("build: %w", err)
	}
	return build.Build(ctx, buildBackend{d}, opts, contextTar, out)
}

// buildDir is where builds spool a context too large for memory (files
// with no name, O_TMPFILE): <data-root>/build,
// emptied when the daemon starts (removeBuildLeftovers).
func (d *Daemon) buildDir() string { return filepath.Join(d.cfg.DataRoot, "build") }

// removeBuildLeftovers removes the build contexts a daemon that died
// mid-build left.
func (d *Daemon) removeBuildLeftovers() {
	if err := os.RemoveAll(d.buildDir()); err != nil {
		d.log.Printf("remove the contexts of interrupted builds: %v", err)
	}
}

// buildBackend is build.Backend on the engine's methods.
type buildBackend struct{ d *Daemon }

var _ build.Backend = buildBackend{}

// GetImage finds a FROM or COPY --from image in the store, or pulls it
// when the store lacks it (or the build asked for --pull).
func (b buildBackend) GetImage(ctx context.Context, ref string, o build.GetImageOptions) (*build.Image, error) {
	img, err := b.d.images.Resolve(ref)
	switch {
	case err == nil && !o.Pull:
	case err == nil || errors.Is(err, image.ErrNotFound):
		if img, err = b.d.pullForBuild(ctx, ref, o.Platform, o.Out); err != nil {
			return nil, err
		}
	default:
		return nil, errdefs.Invalidf("invalid reference format: %v", err)
	}
	cfg, err := b.d.images.RunConfig(img.ID.String())
	if err != nil {
		return nil, fmt.Errorf("config of image %s: %w", ref, err)
	}
	return &build.Image{ID: img.ID.String(), Config: *cfg}, nil
}

// pullForBuild pulls ref from its registry for a build, writing the
// pull's progress messages to out, and returns the image. The registry
// client (package registry) is wired into the engine by the pull work
// (issue 16); until its daemon method lands, an image missing from the
// store is an error that says so. This is the one place to call it from.
func (d *Daemon) pullForBuild(ctx context.Context, ref, platform string, out io.Writer) (*image.Image, error) {
	return nil, errdefs.NotFoundf("pull access denied for %s: the image is not in the store, and this daemon does not pull from registries yet (load it with `minidock load` or `import`)", ref)
}

// nopCommand is the command of a step's container that is written into
// but never run (COPY, ADD, WORKDIR, COPY --from's source), as Docker's
// classic builder gives it one: the record needs a command, a scratch
// image has none.
var nopCommand = []string{"/bin/sh", "-c", "#(nop) "}

// CreateContainer makes a step's container with the engine's own
// CreateContainer: the image's layers (none for scratch) under a new
// upper dir, the step's command, environment, user and working directory,
// and the build's network: the default bridge, host or none. Its root
// filesystem is mounted for the builder to write into.
func (b buildBackend) CreateContainer(ctx context.Context, cfg build.ContainerConfig) (*build.Container, error) {
	cmd := cfg.Cmd
	if cmd == nil {
		cmd = nopCommand
	}
	created, err := b.d.CreateContainer(ctx, ContainerCreateConfig{
		Config: api.ContainerConfig{Image: cfg.Image, Entrypoint: []string{}, Cmd: cmd,
			Env: cfg.Env, User: cfg.User, WorkingDir: cfg.WorkingDir},
		HostConfig: api.HostConfig{NetworkMode: cfg.NetworkMode},
		NoImage:    cfg.Image == "",
	})
	if err != nil {
		return nil, err
	}
	root, err := b.d.mountStepRootfs(created.ID)
	if err != nil {
		return nil, errors.Join(err, b.d.RemoveContainer(context.WithoutCancel(ctx), created.ID, RemoveOptions{Force: true, RemoveVolumes: true}))
	}
	return &build.Container{ID: created.ID, Root: root}, nil
}

// mountStepRootfs mounts a step container's root filesystem (mountRootfs,
// idmapped under --userns-remap) and returns its path; it stays mounted
// until the container's run ends or it is removed.
func (d *Daemon) mountStepRootfs(id string) (string, error) {
	c, err := d.lookup(id)
	if err != nil {
		return "", err
	}
	c.op.Lock()
	defer c.op.Unlock()
	if err := d.stillThere(c); err != nil {
		return "", err
	}
	return d.mountRootfs(c)
}

// RunContainer runs a step's container as `docker run` does: wait for
// its next exit, attach to its stdout and stderr (the output goes to out
// as it comes), start it, and return its exit code once its output is
// all read. Cancelling ctx kills it.
func (b buildBackend) RunContainer(ctx context.Context, id string, out io.Writer) (int, error) {
	d := b.d
	// The wait and the attach outlive ctx: a cancelled step is killed,
	// and its end still awaited, so that its removal finds it stopped.
	bg := context.WithoutCancel(ctx)
	exit, err := d.ContainerWait(bg, id, "next-exit")
	if err != nil {
		return 0, err
	}
	output := &stepOutput{w: out}
	defer output.close() // nothing is written to out once the step is over
	pr, pw := io.Pipe()
	demuxed := make(chan error, 1)
	go func() {
		err := api.Demux(pr, output, output)
		pr.CloseWithError(err)
		demuxed <- err
	}()
	attaching := make(chan struct{})
	attached := make(chan error, 1)
	go func() {
		err := d.ContainerAttach(bg, id, AttachOptions{Stdout: true, Stderr: true,
			Streams: func(tty bool) (io.Reader, io.Writer, error) {
				close(attaching) // the start now waits for this attach to connect
				return nil, pw, nil
			}})
		pw.Close()
		attached <- err
	}()
	select {
	case <-attaching:
	case err := <-attached:
		return 0, fmt.Errorf("attach to step container %s: %w", id, err)
	}
	if err := d.StartContainer(ctx, id); err != nil {
		return 0, err
	}
	var code int
	select {
	case code = <-exit:
	case <-ctx.Done():
		if err := d.KillContainer(bg, id, "KILL"); err != nil && !errdefs.Is(err, errdefs.Conflict) {
			d.log.Printf("kill cancelled build step %s: %v", id, err)
		}
		<-exit
		return 0, fmt.Errorf("build step cancelled: %w", context.Cause(ctx))
	}
	if err := <-attached; err != nil {
		return code, fmt.Errorf("output of step container %s: %w", id, err)
	}
	<-demuxed
	return code, nil
}

// stepOutput passes a step's output on to the build's stream until the
// step is over.
type stepOutput struct {
	mu   sync.Mutex
	w    io.Writer
	done bool
}

func (o *stepOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.done {
		o.w.Write(p)
	}
	return len(p), nil
}

func (o *stepOutput) close() {
	o.mu.Lock()
	o.done = true
	o.mu.Unlock()
}

// CommitContainer commits a step's container: its upper dir becomes one
// more layer on its image (none when it changed nothing), with the
// step's config and history entry; the new image's parent is the
// container's image. The step's cache keys are recorded.
func (b buildBackend) CommitContainer(ctx context.Context, id string, c build.Commit) (string, error) {
	ctr, err := b.d.lookup(id)
	if err != nil {
		return "", err
	}
	ctr.op.Lock()
	defer ctr.op.Unlock()
	if err := b.d.stillThere(ctr); err != nil {
		return "", err
	}
	img, err := b.d.images.Commit(ctr.ID, image.CommitOptions{RunConfig: &c.Config, Author: c.Author, CreatedBy: c.CreatedBy})
	if err != nil {
		return "", fmt.Errorf("commit step container %s: %w", ctr.ID, err)
	}
	return img.ID.String(), b.remember(img.ID, c.CacheKeys)
}

// RemoveContainer removes a step's container, killing it if it runs.
func (b buildBackend) RemoveContainer(ctx context.Context, id string) error {
	return b.d.RemoveContainer(ctx, id, RemoveOptions{Force: true, RemoveVolumes: true})
}

// CreateImage stores a config step's image: the parent's layers, the new
// config, one more history entry.
func (b buildBackend) CreateImage(ctx context.Context, parent string, c build.Commit) (string, error) {
	img, err := b.d.images.CreateImage(parent, image.CommitOptions{RunConfig: &c.Config, Author: c.Author, CreatedBy: c.CreatedBy})
	if err != nil {
		return "", err
	}
	return img.ID.String(), b.remember(img.ID, c.CacheKeys)
}

// remember records the image a step made under the step's cache keys
// (image/buildcache.json: it survives a restart).
func (b buildBackend) remember(id digest.Digest, keys []string) error {
	for _, k := range keys {
		if err := b.d.images.SetCachedImage(k, id); err != nil {
			return err
		}
	}
	return nil
}

// CachedImage returns the image a step with cache key key made, if the
// store still has it.
func (b buildBackend) CachedImage(ctx context.Context, key string) (string, error) {
	img, err := b.d.images.CachedImage(key)
	if err != nil || img == nil {
		return "", err
	}
	return img.ID.String(), nil
}

// TagImage gives the built image a name (-t).
func (b buildBackend) TagImage(ctx context.Context, id, ref string) error {
	return b.d.images.Tag(id, ref)
}
