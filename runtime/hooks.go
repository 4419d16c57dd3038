package runtime

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"minidock/kernel"
)

// runHooks runs each hook in turn with the container's state as JSON on its
// stdin, as the OCI runtime spec asks. A hook that fails or outlives its
// timeout is an error naming it. Each run is a line in the trace.
func runHooks(k kernel.Calls, kind string, hooks []specs.Hook, st specs.State) error {
	for _, h := range hooks {
		data, _ := json.Marshal(st)
		cmd := exec.Command(h.Path)
		if len(h.Args) > 0 {
			cmd.Args = h.Args
		}
		cmd.Env = h.Env
		cmd.Stdin = bytes.NewReader(data)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("%s hook %s: %w", kind, h.Path, err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		var timeout <-chan time.Time
		if h.Timeout != nil && *h.Timeout > 0 {
			timeout = time.After(time.Duration(*h.Timeout) * time.Second)
		}
		select {
		case err := <-done:
			k.Note("hook", kind+" "+h.Path, err)
			if err != nil {
				return fmt.Errorf("%s hook %s: %w: %s", kind, h.Path, err, bytes.TrimSpace(out.Bytes()))
			}
		case <-timeout:
			cmd.Process.Kill()
			<-done
			return fmt.Errorf("%s hook %s: timed out after %ds", kind, h.Path, *h.Timeout)
		}
	}
	return nil
}
