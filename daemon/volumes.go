package daemon

import (
	"context"
	"errors"
	"path"
	"strconv"
	"time"

	"minidock/api"
	"minidock/internal/errdefs"
	"minidock/volume"
)

// Volumes: the /volumes operations, on the volume store (package volume,
// <data-root>/volumes), and a container's mounts at each step of its
// life, in the order they happen (docs/volumes.md):
//
//	create:  planMounts    the request checked, the mounts planned (volume.Plan)
//	         setupVolumes  volumes found or created, the container their user
//	         copyUp        the image's content into new volumes
//	start:   mountVolumes  driver filesystems mounted, missing -v paths made;
//	                       buildSpec then writes the mounts into config.json
//	stop:    unmountVolumes the last user of a driver filesystem unmounts it
//	rm:      releaseVolumes the container no longer a user; rm -v and
//	                       AutoRemove remove its anonymous volumes
//	restart: restoreVolumes who uses what, declared again from the records

// CreateVolume is POST /volumes/create: a volume of that name is made, or
// returned as it is when it exists; no name makes an anonymous one.
func (d *Daemon) CreateVolume(ctx context.Context, o api.VolumeCreateOptions) (api.Volume, error) {
	v, err := d.volumes.Create(o)
	return v, volumeError(err)
}

// VolumeInspect is GET /volumes/{name}.
func (d *Daemon) VolumeInspect(ctx context.Context, name string) (api.Volume, error) {
	v, err := d.volumes.Get(name)
	return v, volumeError(err)
}

// Volumes is GET /volumes?filters=: dangling, name, driver, label.
func (d *Daemon) Volumes(ctx context.Context, f api.Filters) (api.VolumeListResponse, error) {
	lf, err := volume.ParseListFilter(f)
	if err != nil {
		return api.VolumeListResponse{}, volumeError(err)
	}
	return api.VolumeListResponse{Volumes: d.volumes.List(lf), Warnings: []string{}}, nil
}

// RemoveVolume is DELETE /volumes/{name}?force=: refused (409) while a
// container, running or not, uses the volume; force only makes a missing
// volume no error.
func (d *Daemon) RemoveVolume(ctx context.Context, name string, force bool) error {
	return volumeError(d.volumes.Remove(name, force))
}

// PruneVolumes is POST /volumes/prune?filters=: the unused anonymous
// volumes, or every unused one with the filter all=true (which the HTTP
// layer adds for clients older than API 1.42); label=, label!=.
func (d *Daemon) PruneVolumes(ctx context.Context, f api.Filters) (api.VolumesPruneReport, error) {
	pf, err := volume.ParsePruneFilter(f)
	if err != nil {
		return api.VolumesPruneReport{}, volumeError(err)
	}
	rep, err := d.volumes.Prune(pf)
	return rep, volumeError(err)
}

// volumeError gives the volume store's errors their kind: no such volume
// 404, in use 409, bad input 400.
func volumeError(err error) error {
	switch {
	case err == nil || errdefs.KindOf(err) != errdefs.Unknown:
		return err
	case errors.Is(err, volume.ErrNotFound):
		return errdefs.Wrap(errdefs.NotFound, err)
	case errors.Is(err, volume.ErrInUse):
		return errdefs.Wrap(errdefs.Conflict, err)
	case errors.Is(err, volume.ErrInvalid):
		return errdefs.Wrap(errdefs.InvalidParameter, err)
	}
	return err
}

// emitVolume records a volume event: create, destroy (the store tells
// them, whatever made or removed the volume), mount, unmount.
func (d *Daemon) emitVolume(action, name string, attrs map[string]string) {
	now := time.Now()
	a := map[string]string{"driver": volume.DefaultDriver}
	for k, v := range attrs {
		a[k] = v
	}
	d.publish(api.EventMessage{Type: "volume", Action: action, Actor: api.EventActor{ID: name, Attributes: a},
		Scope: "local", Time: now.Unix(), TimeNano: now.UnixNano()})
}

// planMounts checks c's storage request, HostConfig's Binds, Mounts,
// Tmpfs and VolumesFrom and Config.Volumes (which holds -v /path and the
// image's VOLUMEs), and turns it into c.Mounts (volume.Plan). Nothing is
// created: bad input is a 400 before anything exists.
func (d *Daemon) planMounts(c *Container) error {
	mounts, err := volume.Plan(volume.Request{
		Binds: c.HostConfig.Binds, Mounts: c.HostConfig.Mounts, Tmpfs: c.HostConfig.Tmpfs,
		Volumes: c.Config.Volumes, VolumesFrom: c.HostConfig.VolumesFrom, MountsOf: d.mountsOf,
	})
	if err != nil {
		return volumeError(err)
	}
	c.Mounts = mounts
	return nil
}

// mountsOf are the mounts of another container, for --volumes-from.
func (d *Daemon) mountsOf(ref string) ([]volume.Mount, error) {
	o, err := d.lookup(ref)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]volume.Mount(nil), o.Mounts...), nil
}

// setupVolumes finds or creates c's volumes (a named one with its
// --mount options, an anonymous one under a random name) and records c
// as their user (Store.Setup); c.Mounts get the volumes' names and
// directories.
func (d *Daemon) setupVolumes(c *Container) error {
	mounts, err := d.volumes.Setup(c.ID, c.Mounts)
	if err != nil {
		return volumeError(err)
	}
	c.Mounts = mounts
	return nil
}

// copyUp copies the image's content at each new volume's destination
// into the volume, unless nocopy (Store.Populate, volume.CopyUp), with
// c's rootfs mounted for the copy. A volume that holds data is never
// written.
func (d *Daemon) copyUp(c *Container) error {
	needed := false
	for _, m := range c.Mounts {
		needed = needed || (m.Type == api.MountTypeVolume && m.CopyData)
	}
	if !needed {
		return nil
	}
	root, err := d.images.Mount(c.ID)
	if err != nil {
		return err
	}
	defer d.images.Unmount(c.ID)
	return volumeError(d.volumes.Populate(c.ID, root, c.Mounts))
}

// undoVolumes takes back setupVolumes when the create fails after it:
// c no longer uses its volumes, and those made for it go (Store.Undo).
func (d *Daemon) undoVolumes(c *Container) {
	d.volumes.Undo(c.ID, c.Mounts)
}

// mountVolumes readies c's mounts on the host before a start
// (Store.MountAll): a volume with driver options gets its filesystem
// mounted on its _data, a missing -v host path is made. The runtime then
// performs the config.json mounts (volume.Spec, in buildSpec).
func (d *Daemon) mountVolumes(c *Container) error {
	if err := d.volumes.MountAll(c.ID, c.Mounts); err != nil {
		return volumeError(err)
	}
	for _, m := range c.Mounts {
		if m.Type == api.MountTypeVolume {
			d.emitVolume("mount", m.Name, map[string]string{"container": c.ID, "destination": m.Destination,
				"read/write": strconv.FormatBool(m.RW), "propagation": string(m.Propagation)})
		}
	}
	return nil
}

// unmountVolumes is the other half of mountVolumes, when a run has ended
// (or its start failed): the last container to stop with a volume's
// driver filesystem unmounts it (Store.UnmountAll), so a tmpfs volume's
// data lives while some container runs with it.
func (d *Daemon) unmountVolumes(c *Container) {
	if err := d.volumes.UnmountAll(c.ID, c.Mounts); err != nil {
		d.log.Printf("container %s: %v", c.ID[:12], err)
	}
	for _, m := range c.Mounts {
		if m.Type == api.MountTypeVolume {
			d.emitVolume("unmount", m.Name, map[string]string{"container": c.ID})
		}
	}
}

// releaseVolumes is c's removal for its volumes (Store.Teardown): c no
// longer uses them, and with removeAnonymous (rm -v, AutoRemove) its
// anonymous volumes that no other container uses are removed. Named
// volumes always stay.
func (d *Daemon) releaseVolumes(c *Container, removeAnonymous bool) {
	if err := d.volumes.Teardown(c.ID, c.Mounts, removeAnonymous); err != nil {
		d.log.Printf("remove container %s: volumes: %v", c.ID[:12], err)
	}
}

// restoreVolumes declares again, when the daemon starts, that c uses its
// volumes and, when it still runs, has them mounted (Store.Restore): the
// uses live in memory, the container records are their truth. A driver
// filesystem still mounted for it stays as it is.
func (d *Daemon) restoreVolumes(c *Container, running bool) {
	if err := d.volumes.Restore(c.ID, c.Mounts, running); err != nil {
		d.log.Printf("container %s: restore its volumes: %v", c.ID[:12], err)
	}
}

// pathRoot is where a container path is on the host, for docker cp: the
// host directory that holds it (root), where that directory is in the
// container (at: "/" for the container's root filesystem, else a mount's
// destination), the path below it (rel, "/x/y"), and whether the
// container only reads there.
type pathRoot struct {
	root, at, rel string
	readOnly      bool
}

// withPathRoot runs f with the place of container path p: on one of c's
// volume or bind mounts (volume.MountFor) it is the mount's host
// directory, which the container sees there, rather than the writable
// layer the mount hides; a volume with driver options is mounted for the
// time of f when no running container has it mounted. Elsewhere it is
// c's root filesystem (withRootfs). A tmpfs mount's files live only in
// the container's mount namespace: out of reach (400). c.op is held
// throughout, so no start or rm meets it.
func (d *Daemon) withPathRoot(c *Container, p string, f func(pathRoot) error) error {
	m, rel, ok := volume.MountFor(c.Mounts, p)
	if !ok {
		return d.withRootfs(c, func(root string) error {
			d.mu.Lock()
			ro := c.HostConfig.ReadonlyRootfs
			d.mu.Unlock()
			return f(pathRoot{root: root, at: "/", rel: p, readOnly: ro})
		})
	}
	if m.Type == api.MountTypeTmpfs {
		return errdefs.Invalidf("%s is on the tmpfs mount at %s, whose files live in the container's mount namespace only: docker cp cannot reach them", p, m.Destination)
	}
	c.op.Lock()
	defer c.op.Unlock()
	if err := d.stillThere(c); err != nil {
		return err
	}
	root := m.Source
	if m.Type == api.MountTypeVolume {
		user := "cp " + newID()[:16] // a user of its own, whatever else runs
		dir, err := d.volumes.Mount(m.Name, user)
		if err != nil {
			return volumeError(err)
		}
		defer d.volumes.Unmount(m.Name, user)
		root = dir
	}
	return f(pathRoot{root: root, at: m.Destination, rel: path.Join("/", rel), readOnly: !m.RW})
}
