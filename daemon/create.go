package daemon

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"minidock/api"
	"minidock/image"
	"minidock/internal/errdefs"
)

// ContainerCreateConfig is what a container is made from: the request of
// POST /containers/create (or a builder's step). Config.Image names the
// image, by reference or ID.
type ContainerCreateConfig struct {
	Name             string
	Config           api.ContainerConfig
	HostConfig       api.HostConfig
	NetworkingConfig *api.NetworkingConfig
	// NoImage makes a container of no image, whose root filesystem is
	// empty (a build's FROM scratch); Config.Image must then be "". The
	// Engine API never sets it.
	NoImage bool
	// Trace: the container is traced (POST /containers/create?trace=1,
	// minidock's own parameter; trace.go).
	Trace bool
}

// CreateContainer makes a container: its config merged with the image's,
// its networking and its mounts planned, its volumes set up, its root
// filesystem prepared (the image's layers under an empty upper dir; an
// empty one for NoImage), the image's content copied into its new
// volumes, its config.v2.json written. Nothing runs yet.
func (d *Daemon) CreateContainer(ctx context.Context, cc ContainerCreateConfig) (api.CreateResponse, error) {
	name := strings.TrimPrefix(cc.Name, "/")
	if name != "" && !nameRE().MatchString(name) {
		return api.CreateResponse{}, errdefs.Invalidf("Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", name)
	}
	img := &image.Image{} // the empty image of NoImage: no layer, no config
	switch {
	case cc.NoImage && cc.Config.Image != "":
		return api.CreateResponse{}, errdefs.Invalidf("a container of no image cannot name image %q", cc.Config.Image)
	case cc.NoImage:
	case cc.Config.Image == "":
		return api.CreateResponse{}, errdefs.Invalidf("no image given: Config.Image is empty")
	default:
		var err error
		if img, err = d.resolveImage(cc.Config.Image); err != nil {
			return api.CreateResponse{}, err
		}
	}
	hc := cc.HostConfig
	if err := checkRestartPolicy(&hc); err != nil {
		return api.CreateResponse{}, err
	}
	if hc.Memory < 0 || hc.NanoCPUs < 0 || hc.CPUShares < 0 {
		return api.CreateResponse{}, errdefs.Invalidf("Memory, NanoCpus and CpuShares must not be negative")
	}
	if hc.Memory > 0 && hc.Memory < 6<<20 {
		return api.CreateResponse{}, errdefs.Invalidf("Minimum memory limit allowed is 6MB")
	}
	if err := checkCPUs(&hc); err != nil {
		return api.CreateResponse{}, err
	}
	cfg, err := mergeImageConfig(cc.Config, img.Config.Config)
	if err != nil {
		return api.CreateResponse{}, err
	}
	if err := d.checkConfinement(&cfg, &hc); err != nil { // security.go
		return api.CreateResponse{}, err
	}
	if err := checkOutputFields(cc.NetworkingConfig); err != nil { // audit.go
		return api.CreateResponse{}, err
	}
	id := newID()
	c := &Container{
		ID: id, Created: time.Now().UTC(), Image: img.ID.String(), ImageRef: cc.Config.Image,
		Config: cfg, HostConfig: hc, CgroupPath: d.cfg.CgroupParent + "/" + id, UserNamespace: d.remappingOf(&hc),
		State: State{Status: "created"}, paths: d.pathsOf(id), changed: make(chan struct{}), Trace: cc.Trace,
	}
	tr := d.tracer(c)
	tr.CallResult("create", "resolve image", fmt.Sprintf("%q", cc.Config.Image), fmt.Sprintf("%s, %d layers", img.ID, len(img.DiffIDs)),
		"the image's config (command, env) and its layers, the container's lower directories")
	if err := d.planMounts(c); err != nil {
		return api.CreateResponse{}, err
	}
	otherID := func(ref string) (string, error) {
		o, err := d.lookup(ref)
		if err != nil {
			return "", err
		}
		return o.ID, nil
	}
	eps, warnings, err := d.network.Plan(id, &c.Config, &c.HostConfig, cc.NetworkingConfig, otherID)
	if err != nil {
		return api.CreateResponse{}, err
	}
	c.Networks = eps
	if warnings == nil {
		warnings = []string{}
	}

	d.mu.Lock()
	if name == "" {
		name = d.newName(id)
	}
	if other, used := d.names[name]; used {
		d.mu.Unlock()
		return api.CreateResponse{}, nameInUse(name, other)
	}
	c.Name = name
	d.names[name] = id // reserved while the rootfs is made
	d.mu.Unlock()

	err = d.createFiles(c)
	tr.Call("create", "prepare", "upper, work and merged beside "+d.mergedDir(id)+"; "+c.paths.config,
		"the container's own directories (its writable layer) and its record, saved before anything runs", err)
	d.mu.Lock()
	defer d.mu.Unlock()
	if err != nil {
		delete(d.names, name)
		return api.CreateResponse{}, err
	}
	d.containers[id] = c
	d.emit(c, "create", nil)
	return api.CreateResponse{ID: id, Warnings: warnings}, nil
}

// mergeImageConfig is the container's config: the request's, each unset
// field taken from the image's. The command is the entrypoint and command
// of the request, each falling back to the image's as in Docker: a
// non-empty entrypoint drops the image's command; an empty command (null
// or []) is the image's; an empty entrypoint given as [] (`--entrypoint
// ""`) drops the image's. The environment is the image's with the
// request's variables over it, by name; the image's VOLUMEs join the request's Volumes.
func mergeImageConfig(cfg api.ContainerConfig, img ocispec.ImageConfig) (api.ContainerConfig, error) {
	if len(cfg.Entrypoint) == 0 {
		if len(cfg.Cmd) == 0 {
			cfg.Cmd = img.Cmd
		}
		if cfg.Entrypoint == nil {
			cfg.Entrypoint = img.Entrypoint
		}
	}
	if len(cfg.Entrypoint)+len(cfg.Cmd) == 0 {
		return cfg, errdefs.Invalidf("no command specified")
	}
	cfg.Env = mergeEnv(img.Env, cfg.Env)
	for k := range img.Volumes { // each an anonymous volume, as -v /path
		if cfg.Volumes == nil {
			cfg.Volumes = map[string]struct{}{}
		}
		cfg.Volumes[k] = struct{}{}
	}
	if cfg.WorkingDir == "" {
		cfg.WorkingDir = img.WorkingDir
	}
	if cfg.User == "" {
		cfg.User = img.User
	}
	if cfg.StopSignal == "" {
		cfg.StopSignal = img.StopSignal
	}
	for k := range img.ExposedPorts {
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = map[string]struct{}{}
		}
		cfg.ExposedPorts[k] = struct{}{}
	}
	return cfg, nil
}

// mergeEnv puts the variables of over on those of base, by name.
func mergeEnv(base, over []string) []string {
	out := append([]string{}, base...)
	for _, kv := range over {
		k, _, _ := strings.Cut(kv, "=")
		replaced := false
		for i, old := range out {
			if ok, _, _ := strings.Cut(old, "="); ok == k {
				out[i], replaced = kv, true
				break
			}
		}
		if !replaced {
			out = append(out, kv)
		}
	}
	return out
}

// createFiles sets up the container's volumes, makes its rootfs, copies
// the image's content into its new volumes and writes its config.v2.json;
// on failure it leaves nothing. A daemon that dies in between leaves a
// directory without config.v2.json, which restore removes (and anonymous
// volumes nobody uses, which volume prune removes).
func (d *Daemon) createFiles(c *Container) error {
	if err := d.setupVolumes(c); err != nil {
		return err
	}
	if _, err := d.images.PrepareRootfs(c.ID, c.Image); err != nil {
		d.undoVolumes(c)
		return fmt.Errorf("create container: %w", err)
	}
	err := d.copyUp(c)
	if err == nil {
		err = c.saveDurably()
	}
	if err != nil {
		d.images.RemoveRootfs(c.ID)
		d.undoVolumes(c)
		os.RemoveAll(c.paths.dir)
		return err
	}
	return nil
}
