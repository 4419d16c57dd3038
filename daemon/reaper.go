package daemon

import specs "github.com/opencontainers/runtime-spec/specs-go"

// initPath is where --init's reaper is bound in the container: Docker's
// place for its docker-init (tini).
const initPath = "/sbin/docker-init"

// addInit makes the container's PID 1 a small reaper (package reaper):
// minidock's own binary, bound read-only at initPath, which starts the
// container's command, forwards signals to it and reaps the orphans that
// the kernel reparents to PID 1. cmd/minidock runs the reaper role when
// the binary is called by that name.
func (d *Daemon) addInit(s *specs.Spec) {
	s.Mounts = append(s.Mounts, specs.Mount{Destination: initPath, Type: "bind", Source: d.cfg.Binary,
		Options: []string{"bind", "ro", "nosuid", "nodev"}})
	s.Process.Args = append([]string{initPath, "--"}, s.Process.Args...)
}
