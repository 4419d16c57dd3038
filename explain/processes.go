package explain

import (
	"bytes"
	"os"
	"slices"
	"strconv"
	"strings"

	"minidock/api"
)

// ProcessTree is the tree from the container's supervisor down: the
// init's parent (the shim, which started it or, with runc, adopted it as
// a child subreaper), the init, and every descendant of the shim, depth
// first. It reads the parent of every process (/proc/*/stat, field 4),
// the pid each has in the container's pid namespace (NSpid: in
// /proc/PID/status) and its command line (/proc/PID/cmdline).
func ProcessTree(initPid int) []api.ExplainProcess {
	parent := parents()
	shim, ok := parent[initPid]
	if !ok {
		return nil
	}
	children := map[int][]int{}
	for pid, pp := range parent {
		children[pp] = append(children[pp], pid)
	}
	var out []api.ExplainProcess
	var walk func(pid, depth int)
	walk = func(pid, depth int) {
		p := api.ExplainProcess{Pid: pid, PPid: parent[pid], Depth: depth, Command: command(pid)}
		switch pid {
		case shim:
			p.Role = "shim"
		case initPid:
			p.Role = "init"
		}
		if pid != shim {
			p.NSPid = nsPid(pid)
		}
		out = append(out, p)
		kids := children[pid]
		slices.Sort(kids)
		for _, k := range kids {
			walk(k, depth+1)
		}
	}
	walk(shim, 0)
	return out
}

// parents maps every process to its parent, from /proc/PID/stat.
func parents() map[int]int {
	out := map[int]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if pp, ok := parentOf(pid); ok {
			out[pid] = pp
		}
	}
	return out
}

// parentOf reads field 4 of /proc/PID/stat; the command (field 2) may
// hold spaces and parentheses, so the fields are counted after the last ')'.
func parentOf(pid int) (int, bool) {
	s, err := procFile(pid, "stat")
	if err != nil {
		return 0, false
	}
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(s[i+1:]) // f[0] is field 3, the state
	if len(f) < 2 {
		return 0, false
	}
	pp, err := strconv.Atoi(f[1])
	return pp, err == nil
}

// nsPid is the last pid of NSpid: the process's pid in its own (the
// innermost) pid namespace.
func nsPid(pid int) int {
	s, err := procFile(pid, "status")
	if err != nil {
		return 0
	}
	f := strings.Fields(statusFields(s)["NSpid"])
	if len(f) == 0 {
		return 0
	}
	n, _ := strconv.Atoi(f[len(f)-1])
	return n
}

// command is the process's command line, its arguments joined by spaces.
func command(pid int) string {
	s, err := procFile(pid, "cmdline")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(bytes.ReplaceAll(bytes.TrimRight([]byte(s), "\x00"), []byte{0}, []byte{' '})))
}
