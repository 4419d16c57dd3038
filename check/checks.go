package check

import (
	"bufio"
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
)

// checkRoot: the daemon and `minidock runtime` make namespaces, mounts,
// cgroups and links, which needs root; the client does not.
func checkRoot(h Host) Result {
	r := Result{Name: "root", Status: OK, Found: "uid 0"}
	if h.UID != 0 {
		r.Status = Warn
		r.Found = fmt.Sprintf("uid %d: only the client works (it talks to a daemon)", h.UID)
		r.Fix = "run `minidock daemon` and `minidock runtime` as root (sudo)"
	}
	return r
}

// minKernel is the oldest kernel minidock runs on: openat2(2) with
// RESOLVE_BENEATH and RESOLVE_IN_ROOT (Linux 5.6), with which layers are
// unpacked and files copied in and out of containers (archive/).
var minKernel = [2]int{5, 6}

// checkKernel reads the release from /proc/sys/kernel/osrelease (uname -r).
func checkKernel(h Host) Result {
	r := Result{Name: "kernel"}
	release, err := readLine(filepath.Join(h.Proc, "sys/kernel/osrelease"))
	if err != nil {
		return noProc(r, Fail, err)
	}
	r.Found = release
	var major, minor int
	if _, err := fmt.Sscanf(release, "%d.%d", &major, &minor); err != nil {
		r.Status, r.Found = Warn, fmt.Sprintf("%s: not a version this check can read", release)
		r.Fix = fmt.Sprintf("make sure the kernel is %d.%d or newer (openat2)", minKernel[0], minKernel[1])
		return r
	}
	if major < minKernel[0] || major == minKernel[0] && minor < minKernel[1] {
		r.Status = Fail
		r.Found = fmt.Sprintf("%s: older than %d.%d, which has openat2(2) for unpacking layers", release, minKernel[0], minKernel[1])
		r.Fix = fmt.Sprintf("boot a kernel %d.%d or newer (Debian 12's is 6.1)", minKernel[0], minKernel[1])
		return r
	}
	r.Status = OK
	return r
}

// checkOverlay: image layers are stacked with overlayfs (overlay/). The
// kernel lists the filesystems it has in /proc/filesystems; a module not
// loaded yet is loaded by the first mount(2) of type overlay.
func checkOverlay(h Host) Result {
	r := Result{Name: "overlayfs", Status: OK}
	fss, err := os.ReadFile(filepath.Join(h.Proc, "filesystems"))
	if err != nil {
		return noProc(r, Fail, err)
	}
	for _, line := range strings.Split(string(fss), "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[len(f)-1] == "overlay" {
			r.Found = "in " + filepath.Join(h.Proc, "filesystems")
			return r
		}
	}
	release, _ := readLine(filepath.Join(h.Proc, "sys/kernel/osrelease"))
	if mod := findModule(filepath.Join(h.Modules, release), "overlay"); mod != "" {
		r.Found = "module " + mod + ", loaded by the first overlay mount"
		return r
	}
	r.Status = Fail
	r.Found = "not in " + filepath.Join(h.Proc, "filesystems") + ", no overlay module"
	r.Fix = "install the kernel's modules (linux-image-$(uname -r)) or build with CONFIG_OVERLAY_FS"
	return r
}

// findModule returns the path of module name under dir (modules.dep's
// list, .ko and compressed), or "".
func findModule(dir, name string) string {
	dep, err := os.ReadFile(filepath.Join(dir, "modules.dep"))
	if err != nil {
		return ""
	}
	re := regexp.MustCompile(`(?m)^(\S*/` + regexp.QuoteMeta(name) + `\.ko(\.[a-z]+)?):`)
	if m := re.FindSubmatch(dep); m != nil {
		return string(m[1])
	}
	return ""
}

// cgroupControllers are the v2 controllers whose limits minidock sets
// (cgroup/v2.go): --cpus and --cpu-shares, --memory, --pids-limit,
// --blkio-weight.
var cgroupControllers = []string{"cpu", "memory", "pids", "io"}

// checkCgroups finds how cgroups are mounted, from the mount table in
// /proc/self/mountinfo: cgroup2 at /sys/fs/cgroup is unified (v2);
// v1 hierarchies beside a cgroup2 at /sys/fs/cgroup/unified is hybrid; v1
// hierarchies only is legacy. On v2 it reads the controllers the kernel
// offers (cgroup.controllers at the root) and, for a user other than root,
// the ones delegated to it: the controllers of the highest cgroup above
// its own that it owns (systemd's Delegate=yes). On v1, /proc/cgroups
// lists each controller and whether it is mounted.
func checkCgroups(h Host) Result {
	r := Result{Name: "cgroups"}
	mounts, err := readMounts(filepath.Join(h.Proc, "self/mountinfo"))
	if err != nil {
		return noProc(r, Fail, err)
	}
	root := filepath.Join(h.Sys, "fs/cgroup")
	hasV1 := false
	for _, m := range mounts {
		hasV1 = hasV1 || m.fstype == "cgroup"
	}
	switch {
	case mounts.typeAt("/sys/fs/cgroup") == "cgroup2":
		return cgroupsV2(h, root)
	case !hasV1:
		r.Status = Fail
		r.Found = "no cgroup filesystem mounted"
		r.Fix = "mount -t cgroup2 none /sys/fs/cgroup"
		return r
	}
	v1, err := v1Controllers(filepath.Join(h.Proc, "cgroups"))
	if err != nil {
		return noProc(r, Fail, err)
	}
	slices.Sort(v1)
	r.Status = Warn
	r.Found = "v1 (legacy): controllers " + strings.Join(v1, " ")
	if mounts.typeAt("/sys/fs/cgroup/unified") == "cgroup2" {
		r.Found = "hybrid: v1 controllers " + strings.Join(v1, " ") + "; cgroup2 at /sys/fs/cgroup/unified (processes only)"
	}
	if missing := missingFrom(cgroupControllers, v1, map[string]string{"io": "blkio"}); len(missing) > 0 {
		r.Found += "; missing " + strings.Join(missing, " ")
	}
	r.Fix = "boot with systemd.unified_cgroup_hierarchy=1 for pure cgroup v2 (meanwhile minidock uses its v1 driver)"
	return r
}

// v1Controllers reads /proc/cgroups ("#subsys_name hierarchy num_cgroups
// enabled") for the controllers that are enabled and mounted (hierarchy
// not 0).
func v1Controllers(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) == 4 && !strings.HasPrefix(f[0], "#") && f[1] != "0" && f[3] == "1" {
			out = append(out, f[0])
		}
	}
	return out, nil
}

func cgroupsV2(h Host, root string) Result {
	r := Result{Name: "cgroups", Status: OK}
	offered, err := readWords(filepath.Join(root, "cgroup.controllers"))
	if err != nil {
		r.Status, r.Found, r.Fix = Fail, err.Error(), "mount -t cgroup2 none /sys/fs/cgroup"
		return r
	}
	r.Found = "v2, controllers " + strings.Join(offered, " ")
	if missing := missingFrom(cgroupControllers, offered, nil); len(missing) > 0 {
		r.Status = Warn
		r.Found += "; missing " + strings.Join(missing, " ")
		r.Fix = "boot with the missing controllers enabled (cgroup_enable=..., no cgroup_disable=...)"
	}
	if h.UID == 0 {
		return r
	}
	dir, delegated := delegatedCgroup(h, root)
	if dir == "" {
		r.Found += fmt.Sprintf("; none delegated to uid %d (systemd-run --user -p Delegate=yes makes one)", h.UID)
		return r
	}
	r.Found += fmt.Sprintf("; delegated to uid %d at %s: %s", h.UID, strings.TrimPrefix(dir, root), strings.Join(delegated, " "))
	return r
}

// delegatedCgroup walks up from the caller's cgroup (the 0:: line of
// /proc/self/cgroup) and returns the highest directory owned by h.UID
// below the root, with its controllers.
func delegatedCgroup(h Host, root string) (string, []string) {
	data, err := os.ReadFile(filepath.Join(h.Proc, "self/cgroup"))
	if err != nil {
		return "", nil
	}
	own := ""
	for _, line := range strings.Split(string(data), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			own = p
		}
	}
	found := ""
	for p := filepath.Join(root, own); p != root && strings.HasPrefix(p, root); p = filepath.Dir(p) {
		var st syscall.Stat_t
		if syscall.Stat(p, &st) == nil && int(st.Uid) == h.UID {
			found = p
		}
	}
	if found == "" {
		return "", nil
	}
	ctrls, _ := readWords(filepath.Join(found, "cgroup.controllers"))
	return found, ctrls
}

// checkUserNamespaces: user namespaces map ids (ns/userns.go) for
// `runtime spec --rootless` bundles and rootless use. Three sysctls can
// forbid them: user.max_user_namespaces (0: none at all), Debian's
// kernel.unprivileged_userns_clone (0: root only) and Ubuntu's
// kernel.apparmor_restrict_unprivileged_userns (1: no capabilities in
// them for unconfined programs). The probe asks the kernel itself.
func checkUserNamespaces(h Host) Result {
	r := Result{Name: "userns", Status: OK}
	var found []string
	max, err := readLine(filepath.Join(h.Proc, "sys/user/max_user_namespaces"))
	switch {
	case err != nil:
		r.Status, r.Found = Warn, "no "+filepath.Join(h.Proc, "sys/user/max_user_namespaces")+": the kernel has no user namespaces"
		r.Fix = "boot a kernel built with CONFIG_USER_NS"
		return r
	case max == "0":
		r.Status = Warn
		found = append(found, "user.max_user_namespaces=0")
		r.Fix = "sysctl -w user.max_user_namespaces=15000"
	default:
		found = append(found, "max "+max)
	}
	if v, err := readLine(filepath.Join(h.Proc, "sys/kernel/unprivileged_userns_clone")); err == nil && v == "0" {
		found = append(found, "kernel.unprivileged_userns_clone=0 (root only)")
		if h.UID != 0 && r.Fix == "" {
			r.Status, r.Fix = Warn, "sysctl -w kernel.unprivileged_userns_clone=1"
		}
	}
	if v, err := readLine(filepath.Join(h.Proc, "sys/kernel/apparmor_restrict_unprivileged_userns")); err == nil && v == "1" {
		found = append(found, "kernel.apparmor_restrict_unprivileged_userns=1")
		if h.UID != 0 && r.Fix == "" {
			r.Status, r.Fix = Warn, "sysctl -w kernel.apparmor_restrict_unprivileged_userns=0 (or an AppArmor profile with userns)"
		}
	}
	if h.Probe {
		if err := probeUserNS(); err != nil {
			found = append(found, "clone(CLONE_NEWUSER) as uid "+strconv.Itoa(h.UID)+": "+err.Error())
			r.Status = Warn
			if r.Fix == "" {
				r.Fix = "allow user namespaces (the sysctls above, or the container manager this runs in)"
			}
		} else {
			found = append(found, "clone(CLONE_NEWUSER) as uid "+strconv.Itoa(h.UID)+" works")
		}
	}
	r.Found = strings.Join(found, "; ")
	return r
}

// probeUserNS starts a child in a new user namespace (clone(2) with
// CLONE_NEWUSER, which a multi-threaded Go program cannot unshare(2)) and
// has it execve(2) a path that does not exist: an error from clone says
// why no namespace was made; ENOENT from execve means it was.
func probeUserNS() error {
	_, err := syscall.ForkExec("/nonexistent/minidock-check-userns", []string{"probe"}, &syscall.ProcAttr{
		Sys: &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUSER},
	})
	if errors.Is(err, syscall.ENOENT) {
		return nil
	}
	if err == nil {
		return errors.New("the probe's child ran a program that should not exist")
	}
	return err
}

// checkIPForward: containers on a bridge reach other hosts through the
// host's routing, which net.ipv4.ip_forward turns on; the daemon sets it
// when it starts (bridge.EnableIPForward).
func checkIPForward(h Host) Result {
	r := Result{Name: "ip_forward", Status: OK, Found: "net.ipv4.ip_forward=1"}
	v, err := readLine(filepath.Join(h.Proc, "sys/net/ipv4/ip_forward"))
	switch {
	case err != nil:
		r.Status, r.Found, r.Fix = Warn, err.Error(), "a kernel with IPv4 (CONFIG_INET)"
	case v != "1":
		r.Status = Warn
		r.Found = "net.ipv4.ip_forward=" + v + ": containers reach only this host until the daemon turns it on"
		r.Fix = "sysctl -w net.ipv4.ip_forward=1 (the daemon does it when it starts)"
	}
	return r
}

// checkNftables: the bridge networks' NAT, published ports and isolation
// are one nftables table loaded with `nft -f -` (bridge/firewall.go). As
// root, `nft list tables` shows that the kernel speaks nf_tables.
func checkNftables(h Host) Result {
	r := Result{Name: "nftables", Status: OK}
	nft := lookPath(h, "nft")
	if nft == "" {
		r.Status, r.Found, r.Fix = Fail, "no nft in PATH", "apt-get install nftables"
		return r
	}
	r.Found = nft
	if v := firstLine(nft, "--version"); v != "" {
		r.Found = v
	}
	if !h.Probe {
		return r
	}
	if h.UID != 0 {
		r.Found += "; the kernel's nf_tables is probed as root only"
		return r
	}
	if out, err := exec.Command(nft, "list", "tables").CombinedOutput(); err != nil {
		r.Status = Fail
		r.Found += fmt.Sprintf("; nft list tables: %v: %s", err, bytes.TrimSpace(out))
		r.Fix = "modprobe nf_tables (a kernel with CONFIG_NF_TABLES and CONFIG_NF_TABLES_INET)"
	}
	return r
}

// checkSeccomp: a container whose spec has linux.seccomp gets a BPF filter
// (seccomp/). The kernel has seccomp when /proc/self/status has a Seccomp
// line, and filters when /proc/sys/kernel/seccomp/actions_avail lists
// what they may answer.
func checkSeccomp(h Host) Result {
	r := Result{Name: "seccomp", Status: OK}
	status, err := os.ReadFile(filepath.Join(h.Proc, "self/status"))
	if err != nil {
		return noProc(r, Warn, err)
	}
	mode := ""
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "Seccomp:"); ok {
			mode = strings.TrimSpace(v)
		}
	}
	actions, err := readLine(filepath.Join(h.Proc, "sys/kernel/seccomp/actions_avail"))
	if mode == "" || err != nil {
		r.Status = Warn
		r.Found = "no seccomp filters: containers whose spec has linux.seccomp cannot start"
		r.Fix = "boot a kernel with CONFIG_SECCOMP_FILTER"
		return r
	}
	r.Found = "filters, actions " + actions
	if mode != "0" {
		// 1 strict, 2 filter: this process already runs under one (a
		// container manager's); the container's filter is added to it
		r.Found += "; this process is filtered already (Seccomp: " + mode + ")"
	}
	return r
}

// checkBusybox: the demos and tests make root filesystems of one static
// busybox (scripts/busybox-rootfs.sh). A dynamically linked one has a
// PT_INTERP program header naming its loader, which the container lacks.
func checkBusybox(h Host) Result {
	r := Result{Name: "busybox", Status: OK, Tool: true}
	bb := lookPath(h, "busybox")
	if bb == "" {
		r.Status, r.Found, r.Fix = Warn, "no busybox in PATH (the demos' root filesystem)", "apt-get install busybox-static"
		return r
	}
	f, err := elf.Open(bb)
	if err != nil {
		r.Status, r.Found, r.Fix = Warn, fmt.Sprintf("%s: %v", bb, err), "apt-get install busybox-static"
		return r
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			r.Status = Warn
			r.Found = bb + " is dynamically linked: a root filesystem of it alone cannot run it"
			r.Fix = "apt-get install busybox-static"
			return r
		}
	}
	r.Found = bb + ", static"
	if v := firstLine(bb, "--help"); strings.HasPrefix(v, "BusyBox") {
		r.Found += ", " + strings.Fields(v)[1]
	}
	return r
}

// minDelve is the oldest Delve that debugs what Go 1.26 builds.
var minDelve = [2]int{1, 27}

const delveFix = "go install github.com/go-delve/delve/cmd/dlv@v1.27.2; then make debug (docs/debugging.md)"

// checkDelve: stepping through a container's init in a debugger
// (docs/debugging.md) needs Delve 1.27 or newer.
func checkDelve(h Host) Result {
	r := Result{Name: "delve", Status: OK, Tool: true}
	dlv := lookPath(h, "dlv")
	if dlv == "" {
		r.Status, r.Found, r.Fix = Warn, "no dlv in PATH (the debugger of docs/debugging.md)", delveFix
		return r
	}
	cmd := exec.Command(dlv, "version")
	// Delve starts golang.org/x/telemetry's crash-watching child, which
	// outlives `dlv version` for a moment; GO_TELEMETRY_CHILD=2 says
	// "you are a child already": no process left behind by the check.
	cmd.Env = append(os.Environ(), "GO_TELEMETRY_CHILD=2")
	out, _ := cmd.Output()
	m := regexp.MustCompile(`Version: (\d+)\.(\d+)\.\S*`).FindSubmatch(out)
	if m == nil {
		r.Status, r.Found, r.Fix = Warn, dlv+": `dlv version` names no version", delveFix
		return r
	}
	major, _ := strconv.Atoi(string(m[1]))
	minor, _ := strconv.Atoi(string(m[2]))
	r.Found = fmt.Sprintf("%s %s", dlv, bytes.TrimPrefix(m[0], []byte("Version: ")))
	if major < minDelve[0] || major == minDelve[0] && minor < minDelve[1] {
		r.Status = Warn
		r.Found += fmt.Sprintf(": older than %d.%d, which debugs Go 1.26 binaries", minDelve[0], minDelve[1])
		r.Fix = delveFix
	}
	return r
}

// noProc is r when a file of procfs cannot be read.
func noProc(r Result, s Status, err error) Result {
	r.Status, r.Found, r.Fix = s, err.Error(), "mount procfs on /proc: mount -t proc proc /proc"
	return r
}

// lookPath finds name in h.Path as exec.LookPath does in $PATH.
func lookPath(h Host, name string) string {
	for _, dir := range filepath.SplitList(h.Path) {
		if dir == "" {
			continue
		}
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

// firstLine runs prog with args and returns the first line it prints.
func firstLine(prog string, args ...string) string {
	out, _ := exec.Command(prog, args...).CombinedOutput()
	line, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(line)
}

func readLine(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(data)), nil
}

func readWords(path string) ([]string, error) {
	line, err := readLine(path)
	return strings.Fields(line), err
}

// missingFrom returns the names of want not in have; alias maps a name to
// another it may go by (v1's blkio is v2's io).
func missingFrom(want, have []string, alias map[string]string) []string {
	var out []string
	for _, w := range want {
		if !slices.Contains(have, w) && (alias[w] == "" || !slices.Contains(have, alias[w])) {
			out = append(out, w)
		}
	}
	return out
}

// mount is one line of /proc/self/mountinfo: where, and what type.
type mount struct {
	point, fstype string
}

type mountTable []mount

// typeAt is the filesystem type mounted last at point, or "".
func (t mountTable) typeAt(point string) string {
	typ := ""
	for _, m := range t {
		if m.point == point {
			typ = m.fstype
		}
	}
	return typ
}

// readMounts parses mountinfo: "36 35 98:0 /mnt1 /mnt2 rw,noatime
// master:1 - ext3 /dev/root rw,errors=continue" (proc(5)).
func readMounts(path string) (mountTable, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var t mountTable
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 64*1024), 1024*1024)
	for s.Scan() {
		pre, post, ok := strings.Cut(s.Text(), " - ")
		a, b := strings.Fields(pre), strings.Fields(post)
		if !ok || len(a) < 5 || len(b) < 1 {
			continue
		}
		// the point as the kernel writes it, octal escapes (\040) and
		// all: the points looked for have none
		t = append(t, mount{point: a[4], fstype: b[0]})
	}
	return t, s.Err()
}
