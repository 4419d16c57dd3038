// Package check is minidock's preflight: what this machine offers
// containers and what it lacks, each finding with a one-line fix. It reads
// the kernel's own reports (/proc, /sys), looks for the programs minidock
// runs (nft) or that a learner needs (busybox, dlv), and makes the two
// probes that only the kernel can answer: a child in a new user namespace,
// and `nft list tables` as root. It needs no root: without it, it says so
// and checks what it can.
//
// `minidock check` prints the results (client/cli/check.go); the daemon's
// GET /info carries Warnings(Run(System())), computed once as it starts
// (daemon/system.go), as Docker's does.
// docs/check.md explains each check and the kernel interface it reads.
package check

import (
	"fmt"
	"os"
)

// Status is how one check came out.
type Status string

const (
	// OK: the machine offers it.
	OK Status = "ok"
	// Warn: minidock works, without this or in a degraded way.
	Warn Status = "warn"
	// Fail: containers (or the daemon) cannot work until it is fixed.
	Fail Status = "fail"
)

// Result is one check: what was found and, unless it is OK, the fix.
type Result struct {
	Name   string // root, kernel, overlayfs, cgroups, userns, ip_forward, nftables, seccomp, busybox, delve
	Status Status
	Found  string // what this machine has, in a few words
	Fix    string `json:",omitempty"` // one line: what to do; empty when OK
	// Tool is true for what a learner uses (busybox, dlv) rather than
	// what the engine needs; the daemon's warnings leave tools out.
	Tool bool `json:",omitempty"`
}

// Host is where the checks look: the roots of procfs and sysfs, the
// directory of kernel modules, the PATH to find programs in and the user
// the checks are for. Tests point it at fake trees.
type Host struct {
	Proc    string // /proc
	Sys     string // /sys
	Modules string // /lib/modules
	Path    string // the PATH searched for nft, busybox and dlv
	UID     int    // effective uid
	// Probe runs the probes that make something of the kernel: a child
	// in a new user namespace, `nft list tables`. Off, only files are read.
	Probe bool
}

// System is this machine as the calling process sees it.
func System() Host {
	return Host{Proc: "/proc", Sys: "/sys", Modules: "/lib/modules", Path: os.Getenv("PATH"), UID: os.Geteuid(), Probe: true}
}

// Run makes every check, in the order `minidock check` prints them.
func Run(h Host) []Result {
	return []Result{
		checkRoot(h),
		checkKernel(h),
		checkOverlay(h),
		checkCgroups(h),
		checkUserNamespaces(h),
		checkIPForward(h),
		checkNftables(h),
		checkSeccomp(h),
		checkBusybox(h),
		checkDelve(h),
	}
}

// Warnings are the results that are not OK, leaving out the learner's
// tools, as lines for the daemon's /info ("WARNING: cgroups: hybrid ...;
// fix: ..."), the way Docker's info lists what the host lacks.
func Warnings(results []Result) []string {
	var out []string
	for _, r := range results {
		if r.Status == OK || r.Tool {
			continue
		}
		out = append(out, fmt.Sprintf("WARNING: %s: %s; fix: %s", r.Name, r.Found, r.Fix))
	}
	return out
}

// Failed reports whether any result is a failure.
func Failed(results []Result) bool {
	for _, r := range results {
		if r.Status == Fail {
			return true
		}
	}
	return false
}
