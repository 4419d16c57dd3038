// Command minidock is one binary with five roles (see ../shared/design.md and
// docs/architecture.md): client, daemon, shim, runtime and the hidden init.
// main only picks the role from argv and hands over.
package main

import (
	"fmt"
	"os"
	"path/filepath"

	"minidock/runtime"
)

func main() {
	args := os.Args[1:]
	role := ""
	if filepath.Base(os.Args[0]) == "minidockd" {
		role = "daemon"
	} else if len(args) > 0 {
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
	default:
		fmt.Fprintf(os.Stderr, "minidock: unknown command %q (try: minidock runtime --help)\n", role)
		os.Exit(2)
	}
}
