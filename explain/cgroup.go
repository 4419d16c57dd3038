package explain

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"minidock/api"
	"minidock/cgroup"
	"minidock/internal/mountinfo"
)

// The files Cgroup reads, by the driver's layout. On v2 they are all in
// the one directory; on v1 each is in the hierarchy of the controller
// its name starts with (memory.limit_in_bytes in the memory hierarchy).
var (
	v2Files = []string{"memory.max", "memory.current", "memory.peak", "memory.swap.max",
		"cpu.max", "cpu.weight", "cpuset.cpus", "pids.max", "pids.current"}
	v1Files = []string{"memory.limit_in_bytes", "memory.usage_in_bytes", "memory.max_usage_in_bytes",
		"memory.memsw.limit_in_bytes", "cpu.cfs_quota_us", "cpu.cfs_period_us", "cpu.shares",
		"cpuset.cpus", "pids.max", "pids.current"}
)

// Cgroup reads /proc/PID/cgroup, the kernel's own record of which cgroup
// the init is in ("0::/minidock/<id>" on v2; one "N:controllers:/path"
// line per v1 hierarchy), finds each hierarchy's directory under
// cgroup.Root (cgroup.DetectMode tells the layout; the v1 mounts come
// from the mount table), and reads the limit and usage files there. A
// file the kernel does not offer (a controller not enabled, memory.peak
// before 5.19, no swap accounting) is left out.
func Cgroup(pid int) (*api.ExplainCgroup, error) {
	mode, err := cgroup.DetectMode()
	if err != nil {
		return nil, err
	}
	text, err := procFile(pid, "cgroup")
	if err != nil {
		return nil, fmt.Errorf("cgroup of pid %d: %w", pid, err)
	}
	lines := parseProcCgroup(text)
	out := &api.ExplainCgroup{Mode: mode.String()}
	if mode == cgroup.Unified {
		p, ok := lines[""]
		if !ok {
			return nil, fmt.Errorf("cgroup of pid %d: no 0:: line in /proc/%d/cgroup", pid, pid)
		}
		dir := filepath.Join(cgroup.Root, p)
		out.Path = p
		out.Dirs = []api.ExplainCgroupDir{{Dir: dir}}
		out.Files = readCgroupFiles(v2Files, func(string) string { return dir })
		return out, nil
	}
	mounts, err := v1Hierarchies()
	if err != nil {
		return nil, err
	}
	dirs := map[string]string{} // controller -> the cgroup's directory
	for controllers, p := range lines {
		mp, ok := mounts[sortedList(controllers)]
		if controllers == "" || !ok {
			continue
		}
		dir := filepath.Join(mp, p)
		out.Dirs = append(out.Dirs, api.ExplainCgroupDir{Hierarchy: controllers, Dir: dir})
		for _, c := range strings.Split(controllers, ",") {
			dirs[c] = dir
		}
		if controllers == "memory" || out.Path == "" {
			out.Path = p
		}
	}
	slices.SortFunc(out.Dirs, func(a, b api.ExplainCgroupDir) int { return strings.Compare(a.Hierarchy, b.Hierarchy) })
	out.Files = readCgroupFiles(v1Files, func(file string) string {
		c, _, _ := strings.Cut(file, ".")
		return dirs[c]
	})
	return out, nil
}

// parseProcCgroup maps each line's controller list ("" for the v2
// line) to its path.
func parseProcCgroup(text string) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		f := strings.SplitN(line, ":", 3)
		if len(f) == 3 {
			out[f[1]] = f[2]
		}
	}
	return out
}

// v1Hierarchies maps each v1 hierarchy's controller list, as
// /proc/PID/cgroup spells it ("cpu,cpuacct"), to its mount point: the
// mount table's cgroup filesystems list their controllers among the
// superblock options ("rw,cpu,cpuacct").
func v1Hierarchies() (map[string]string, error) {
	table, err := mountinfo.Read()
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, m := range table {
		if m.FSType != "cgroup" || m.Root != "/" {
			continue
		}
		var cs []string
		for _, o := range strings.Split(m.SuperOptions, ",") {
			if slices.Contains(v1ControllerNames, o) || strings.HasPrefix(o, "name=") {
				cs = append(cs, o)
			}
		}
		key := sortedList(strings.Join(cs, ","))
		if _, seen := out[key]; !seen {
			out[key] = m.Point
		}
	}
	return out, nil
}

// sortedList sorts a comma-separated list, so that two spellings of one
// hierarchy's controllers compare equal.
func sortedList(s string) string {
	l := strings.Split(s, ",")
	slices.Sort(l)
	return strings.Join(l, ",")
}

// v1ControllerNames are the kernel's v1 controllers (cgroup_subsys.h),
// to tell them from the other superblock options.
var v1ControllerNames = []string{"cpuset", "cpu", "cpuacct", "io", "blkio", "memory", "devices", "freezer",
	"net_cls", "perf_event", "net_prio", "hugetlb", "pids", "rdma", "misc"}

// readCgroupFiles reads each file in the directory dirOf gives it.
func readCgroupFiles(files []string, dirOf func(file string) string) []api.ExplainCgroupFile {
	var out []api.ExplainCgroupFile
	for _, f := range files {
		dir := dirOf(f)
		if dir == "" {
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			continue
		}
		v := strings.TrimSpace(string(data))
		out = append(out, api.ExplainCgroupFile{File: f, Value: v, Meaning: cgroupMeaning(f, v)})
	}
	return out
}

// v1Unlimited is what a v1 limit file reads when no limit is set:
// LLONG_MAX rounded down to a page.
const v1Unlimited = "9223372036854771712"

// cgroupMeaning says a cgroup file's value in words.
func cgroupMeaning(file, v string) string {
	limit := strings.HasSuffix(file, ".max") || strings.Contains(file, "limit_in_bytes")
	switch {
	case file == "cpu.max":
		quota, period, _ := strings.Cut(v, " ")
		if quota == "max" {
			return "no CPU limit"
		}
		return cpus(quota, period)
	case file == "cpu.cfs_quota_us":
		if v == "-1" {
			return "no CPU limit"
		}
		return "CPU time per period, in µs"
	case file == "cpu.cfs_period_us":
		return "the period, in µs"
	case file == "cpu.weight":
		return "relative share (default 100)"
	case file == "cpu.shares":
		return "relative share (default 1024)"
	case file == "cpuset.cpus":
		if v == "" {
			return "the parent's CPUs"
		}
		return "may run on these CPUs"
	case limit && (v == "max" || v == v1Unlimited):
		return "no limit"
	case file == "pids.max":
		return "at most " + v + " tasks"
	case file == "pids.current":
		return v + " tasks now"
	case limit:
		return "limit " + bytesText(v)
	case strings.HasPrefix(file, "memory."):
		if strings.Contains(file, "max_usage") || strings.HasSuffix(file, ".peak") {
			return "peak " + bytesText(v)
		}
		return "in use " + bytesText(v)
	}
	return ""
}

// cpus spells a quota over a period as a number of CPUs.
func cpus(quota, period string) string {
	q, err1 := strconv.ParseFloat(quota, 64)
	p, err2 := strconv.ParseFloat(period, 64)
	if err1 != nil || err2 != nil || p == 0 {
		return ""
	}
	return fmt.Sprintf("%.2f CPUs", q/p)
}

// bytesText spells a byte count in binary units.
func bytesText(v string) string {
	n, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return v
	}
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	i := 0
	for n >= 1024 && i < len(units)-1 {
		n /= 1024
		i++
	}
	if i == 0 {
		return fmt.Sprintf("%.0fB", n)
	}
	return fmt.Sprintf("%.1f%s", n, units[i])
}
