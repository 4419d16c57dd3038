// Package volume is the engine's storage that outlives containers: named
// and anonymous volumes kept under <data-root>/volumes, bind mounts of host
// paths, tmpfs mounts, and the copy of an image's content into a new
// volume (copy-up). It turns a container's storage request into OCI
// config.json mounts; the runtime performs them. See docs/volumes.md.
//
// A container's mounts go through these steps, each a function here, in
// the order the engine calls them:
//
//	create:  Plan      the request (Binds, Mounts, Tmpfs, Config.Volumes,
//	                   VolumesFrom) checked and turned into []Mount; nothing
//	                   is created yet
//	         Setup     volumes created or found, the container recorded as
//	                   their user (Store.Acquire)
//	         Populate  copy-up into new volumes (CopyUp)
//	start:   MountAll  volumes with driver options mounted (Store.Mount),
//	                   missing -v host paths created
//	         Spec      the config.json mounts and the root propagation
//	stop:    UnmountAll the last user of a volume with driver options
//	                   unmounts it (Store.Unmount)
//	rm:      Teardown  the container released (Store.Release); with rm -v
//	                   its anonymous volumes removed
//	restart: Restore   per container, after a daemon restart: the uses and
//	                   mounts declared again; then Store.UnmountIdle
//
// The store knows volumes; which container uses which lives in the
// engine's container records, and the store keeps it in memory only, as
// the engine declares it (Acquire/Release, Mount/Unmount).
package volume
