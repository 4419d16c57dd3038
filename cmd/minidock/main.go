// Command minidock is one binary with five roles (see ../shared/design.md and
// docs/runtime.md, docs/daemon.md): client, daemon, shim, runtime and the hidden init,
// and the registry server (docs/registry.md).
// main only picks the role from argv and hands over.
package main

import (
	"os"
	"path/filepath"

	"minidock/client/cli"
	daemon "minidock/daemon/server"
	"minidock/reaper"
	registry "minidock/registry/server"
	"minidock/runtime"
	"minidock/shim"
)

func main() {
	args := os.Args[1:]
	role := ""
	switch filepath.Base(os.Args[0]) {
	case "minidockd":
		role = "daemon"
	case "minidock-runtime":
		// A link of that name stands where runc would, for callers that
		// take one path and no arguments (containerd's BinaryName,
		// dockerd's --add-runtime): docs/drop-in.md.
		role = "runtime"
	case "docker-init":
		// PID 1 of a container run with --init (the daemon binds this
		// binary there under that name).
		os.Exit(reaper.Main(args))
	}
	if role == "" && len(args) > 0 {
		role = args[0]
		args = args[1:]
	}
	switch role {
	case "init":
		// Re-executed by the runtime inside the new namespaces; never returns
		// on success (it ends in execve of the container's process).
		runtime.InitMain(args)
	case "runtime":
		os.Exit(runtime.Main(args))
	case "daemon":
		os.Exit(daemon.Main(args))
	case "registry":
		// `minidock registry serve ...`: the registry server.
		os.Exit(registry.Main(args))
	case "shim":
		// Started by the daemon, one per running container.
		os.Exit(shim.Main(args))
	default:
		// Everything else is the client: `minidock run ...`, `minidock ps`.
		os.Exit(cli.Main(os.Args[1:]))
	}
}
