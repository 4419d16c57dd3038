package volume

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"minidock/api"
)

// What the engine calls for a container's mounts, at each step of the
// container's life (see the package comment for the whole sequence).

// Setup readies the volumes of a container's planned mounts, at create:
// each volume mount's volume is found, or created (a named one with the
// mount's driver options and labels, an anonymous one under a random
// name), the container is recorded as its user, and the mount gets the
// volume's name and data directory. On an error nothing stays: the uses
// are released and the volumes it created removed.
func (s *Store) Setup(container string, mounts []Mount) ([]Mount, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := append([]Mount(nil), mounts...)
	var used, made []*volume
	for i := range out {
		m := &out[i]
		if m.Type != api.MountTypeVolume {
			continue
		}
		v, created, err := s.create(api.VolumeCreateOptions{Name: m.Name, DriverOpts: m.DriverOpts, Labels: m.Labels})
		if err != nil {
			s.undoSetup(container, used, made)
			return nil, err
		}
		if created {
			made = append(made, v)
		}
		m.New = created
		if !v.users[container] {
			v.users[container] = true
			used = append(used, v)
		}
		m.Name, m.Source, m.Driver = v.meta.Name, v.data(), v.meta.Driver
	}
	return out, nil
}

// undoSetup releases what Setup acquired and removes what it made, under
// s.mu.
func (s *Store) undoSetup(container string, used, made []*volume) {
	for _, v := range used {
		delete(v.users, container)
		delete(v.mounts, container)
	}
	for _, v := range made {
		if trash, err := s.detach(v); err == nil {
			removeTree(trash)
		}
	}
}

// Undo takes back a Setup whose container is not made after all (its
// create failed later): the container's uses are released and the volumes
// Setup created for it (New) removed, unless another container took them
// up meanwhile.
func (s *Store) Undo(container string, mounts []Mount) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var used, made []*volume
	for _, m := range mounts {
		v := s.volumes[m.Name]
		if m.Type != api.MountTypeVolume || v == nil {
			continue
		}
		used = append(used, v)
		if m.New {
			made = append(made, v)
		}
	}
	s.undoSetup(container, used, made)
}

// Populate copies the image's content into the container's new volumes
// (CopyUp), at create, once the container's rootfs is mounted: for each
// volume mount that asks for it (not nocopy) and only while the volume is
// empty. A volume with driver options is mounted for the copy and
// unmounted after it, as Docker does (a tmpfs volume keeps the copy only
// while another container has it mounted).
func (s *Store) Populate(container, rootfs string, mounts []Mount) error {
	for _, m := range mounts {
		if m.Type != api.MountTypeVolume || !m.CopyData {
			continue
		}
		dir, err := s.Mount(m.Name, container)
		if err != nil {
			return err
		}
		_, err = CopyUp(rootfs, m.Destination, dir)
		if uerr := s.Unmount(m.Name, container); err == nil {
			err = uerr
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// MountAll readies a container's mounts on the host, at start, before the
// runtime runs: volumes with driver options are mounted (Store.Mount), and
// a missing host path of a -v bind is created as a directory. On an error
// what it mounted is unmounted.
func (s *Store) MountAll(container string, mounts []Mount) error {
	for i, m := range mounts {
		var err error
		switch {
		case m.Type == api.MountTypeVolume:
			_, err = s.Mount(m.Name, container)
		case m.Type == api.MountTypeBind && m.CreateSource:
			if _, serr := os.Stat(m.Source); errors.Is(serr, fs.ErrNotExist) {
				if err = os.MkdirAll(m.Source, 0o755); err != nil {
					err = fmt.Errorf("create bind source %s: %w", m.Source, err)
				}
			}
		}
		if err != nil {
			s.UnmountAll(container, mounts[:i])
			return err
		}
	}
	return nil
}

// UnmountAll is the other half of MountAll, when the container has
// stopped: for each volume, the container no longer has it mounted, and
// the last one to go unmounts a driver filesystem.
func (s *Store) UnmountAll(container string, mounts []Mount) error {
	var errs []error
	for _, m := range mounts {
		if m.Type == api.MountTypeVolume {
			if err := s.Unmount(m.Name, container); err != nil && !errors.Is(err, ErrNotFound) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// Teardown releases a removed container's volumes; with removeAnonymous
// (rm -v, AutoRemove) its anonymous volumes that no other container uses
// are removed too. Named volumes always stay.
func (s *Store) Teardown(container string, mounts []Mount, removeAnonymous bool) error {
	s.mu.Lock()
	var trash []string
	var errs []error
	for _, m := range mounts {
		v := s.volumes[m.Name]
		if m.Type != api.MountTypeVolume || v == nil {
			continue
		}
		delete(v.users, container)
		delete(v.mounts, container)
		if v.mounted && len(v.mounts) == 0 {
			// a container removed without a stop (UnmountAll) first
			if err := v.unmountData(); err != nil {
				errs = append(errs, &Error{Op: "unmount", Name: m.Name, Err: err})
				continue
			}
			v.mounted = false
		}
		if _, anonymous := v.meta.Labels[api.AnonymousVolumeLabel]; !removeAnonymous || !anonymous || v.inUse() {
			continue
		}
		t, err := s.detach(v)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		trash = append(trash, t)
	}
	s.mu.Unlock()
	for _, t := range trash {
		if err := removeTree(t); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Restore declares again, after a daemon restart, that container uses its
// volumes, and, when it is still running, that it has them mounted (a
// driver filesystem still mounted stays as it is). Once every container is
// restored, UnmountIdle unmounts what nothing uses any more.
func (s *Store) Restore(container string, mounts []Mount, running bool) error {
	var errs []error
	for _, m := range mounts {
		if m.Type != api.MountTypeVolume {
			continue
		}
		if err := s.Acquire(m.Name, container); err != nil {
			errs = append(errs, err)
			continue
		}
		if running {
			if _, err := s.Mount(m.Name, container); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}
