package runtime

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"minidock/internal/trace"
)

// runHooks runs each hook in turn with the container's state as JSON on its
// stdin, as the OCI runtime spec asks. A hook that fails or outlives its
// timeout is an error naming it.
func runHooks(tr *trace.Tracer, kind string, hooks []specs.Hook, st specs.State) error {
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
			tr.Step("hook-"+kind, fmt.Sprintf("exec(%q)", h.Path), err)
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

// runHooksFromInit is the init's side of the hooks: it asks the parent to
// run createRuntime (and the old prestart) hooks in the runtime's
// namespaces, then runs createContainer hooks itself, in the container's
// namespaces, before pivot_root.
func runHooksFromInit(spec *specs.Spec, st specs.State) error {
	if spec.Hooks == nil {
		return nil
	}
	if len(spec.Hooks.Prestart) > 0 || len(spec.Hooks.CreateRuntime) > 0 {
		if err := sendMsg(fdSync, syncMsg{Type: msgHooks}, -1); err != nil {
			return err
		}
		if _, err := expect(fdSync, msgHooksDone); err != nil {
			return err
		}
	}
	return runHooks(trace.Default(), "createContainer", spec.Hooks.CreateContainer, st)
}
