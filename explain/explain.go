// Package explain reads what the kernel built for a running container:
// plain functions over /proc and /sys, each taking the container's init
// pid as the host sees it. The daemon (daemon/explain.go) puts their
// answers together with what it knows of the image and the network into
// an api.Explanation; `minidock explain` prints it. Nothing here changes
// anything. docs/explain.md names the file behind every fact.
//
// In the order the explanation shows them: Namespaces (ns/*), Cgroup
// (cgroup and its files), Mounts and RootOverlay (mountinfo), Security
// (status), Interfaces and Rules (netlink in the container's network
// namespace, nft), ProcessTree (stat and status of every process).
package explain

import (
	"fmt"
	"os"
	"strings"
)

// procFile reads /proc/PID/name.
func procFile(pid int, name string) (string, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, name))
	if err != nil {
		return "", err
	}
	return string(data), nil
}

// statusFields parses /proc/PID/status's "Key:\tvalue" lines.
func statusFields(text string) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(text, "\n") {
		k, v, ok := strings.Cut(line, ":")
		if ok {
			out[k] = strings.TrimSpace(v)
		}
	}
	return out
}
