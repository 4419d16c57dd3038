package volume

// Which container uses which volume. The engine says it: Acquire when a
// container is created with the volume (or, after a daemon restart, for
// every container it loads), Release when the container is removed. A
// volume with a user cannot be removed, is not dangling and is not pruned.
// Each container counts once, however often it is declared, so declaring
// again after a restart is harmless.
//
// The counts live in memory only. The engine's container records, which
// it keeps anyway, are the one truth of who uses what; a second copy on
// disk could only disagree with them after a crash.

// Acquire records that container uses the volume called name.
func (s *Store) Acquire(name, container string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := s.get("get", name)
	if err != nil {
		return err
	}
	v.users[container] = true
	return nil
}

// Release records that container no longer uses the volume called name
// (removed meanwhile: nothing to do).
func (s *Store) Release(name, container string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v := s.volumes[name]; v != nil {
		delete(v.users, container)
	}
}

// Users are the containers that use the volume called name, sorted.
func (s *Store) Users(name string) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := s.get("get", name)
	if err != nil {
		return nil, err
	}
	return v.userList(), nil
}
