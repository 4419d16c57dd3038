package daemon

import (
	"runtime"

	"minidock/api"
	"minidock/internal/errdefs"
)

// checkCPUs refuses a NanoCpus (--cpus) the kernel cannot be given: the
// CFS quota it becomes (NanoCpus × period / 1e9 µs, spec.go) must be at
// least 1 ms (0.01 CPU over the 100 ms period) and can use at most the
// CPUs the host has; a larger value would overflow the multiplication
// and turn into a negative quota, "no limit" (Docker's rule and message).
func checkCPUs(hc *api.HostConfig) error {
	if hc.NanoCPUs == 0 {
		return nil
	}
	n := int64(runtime.NumCPU())
	if hc.NanoCPUs < 1e7 || hc.NanoCPUs > n*1e9 {
		return errdefs.Invalidf("range of CPUs is from 0.01 to %d.00, as there are only %d CPUs available (NanoCpus %d)", n, n, hc.NanoCPUs)
	}
	return nil
}
