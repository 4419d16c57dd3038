package tests

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"minidock/internal/testutil"
	"minidock/shim"
)

// The engine benchmarks (`make bench`, -benchtime=1x): minidock's daemon
// against Debian's dockerd (package docker.io) when it is installed, side
// by side in one run. Memory figures are read from /proc: VmRSS
// (/proc/PID/status: every page mapped, shared ones counted in full) and
// Pss (/proc/PID/smaps_rollup: each shared page divided among the
// processes that map it). Fifty shims of one binary share its text, so
// Pss is the fair share of one container; the targets below are quoted
// against both.
//
// dockerd, when present, runs on a private socket, data root, exec root
// and cgroup parent, in its own mount namespace, with no bridge, no
// iptables rules and the containerd it starts itself; images are made
// locally (`docker import`), never pulled. Everything it made is removed
// afterwards.

// BenchmarkEngineRunTrue times `docker run --rm --network none busybox
// true` end to end (CLI, daemon, shim, runtime) with the same docker 28
// CLI against minidock's daemon and against dockerd, and, beside them,
// minidock's own CLI, the docker CLI alone (`docker version`: its start
// and two requests) and the runtime alone (`minidock runtime run` of
// /bin/true on a busybox bundle), one after another in each round; and
// reads the idle daemons' memory.
func BenchmarkEngineRunTrue(b *testing.B) {
	md, dk := benchEngines(b)
	bundle := benchBundle(b)
	docker28 := os.Getenv("MINIDOCK_BENCH_DOCKER_CLI")
	if docker28 == "" {
		docker28 = dockerCLI
	}
	if _, err := os.Stat(docker28); err != nil {
		b.Skipf("the docker CLI %s is not installed", docker28)
	}
	mdDocker := benchCLI{b: b, prog: docker28, env: append(os.Environ(), "DOCKER_HOST=unix://"+filepath.Join(md.execRoot, "d.sock"), "DOCKER_CONFIG="+b.TempDir())}
	mdIdle := memOf(md.pid())
	var dkIdle memUse
	if dk != nil {
		dkIdle = memOf(dk.pids()...)
	}

	type side struct {
		name string
		run  func(i int) error
	}
	netNone := md.supports("run", "network")
	sides := []side{
		{"runtime run", func(i int) error {
			out, err := exec.Command(binary, "runtime", "--root", "/run/minidock-bench", "run", "--bundle", bundle,
				fmt.Sprintf("bench-engine-%d", i)).CombinedOutput()
			return outErr(err, out)
		}},
		{"minidock CLI → minidock", func(int) error {
			args := []string{"run", "--rm"}
			if netNone {
				args = append(args, "--network", "none")
			}
			_, err := md.cli(append(args, "busybox", "true")...)
			return err
		}},
		{"docker version → minidock", func(int) error {
			_, err := mdDocker.cli("version")
			return err
		}},
		{"docker CLI → minidock", func(int) error {
			_, err := mdDocker.cli("run", "--rm", "--pull", "never", "--network", "none", "busybox", "true")
			return err
		}},
	}
	if dk != nil {
		dkDocker := benchCLI{b: b, prog: docker28, env: append(os.Environ(), "DOCKER_HOST=unix://"+filepath.Join(dk.execRoot, "docker.sock"), "DOCKER_CONFIG="+b.TempDir())}
		sides = append(sides, side{"docker CLI → dockerd", func(int) error {
			_, err := dkDocker.cli("run", "--rm", "--pull", "never", "--network", "none", "busybox", "true")
			return err
		}})
	}
	for _, s := range sides { // one warm-up each: page cache, first-use costs
		if err := s.run(-1); err != nil {
			b.Fatalf("%s: %v", s.name, err)
		}
	}
	rounds := 21
	if dk == nil {
		rounds = 31
	}
	times := make([][]time.Duration, len(sides))
	for i := 0; i < rounds; i++ {
		for s, sd := range sides {
			start := time.Now()
			if err := sd.run(i); err != nil {
				b.Fatalf("%s: %v", sd.name, err)
			}
			times[s] = append(times[s], time.Since(start))
		}
	}
	med := make([]time.Duration, len(sides))
	for s, sd := range sides {
		med[s] = median(times[s])
		b.ReportMetric(ms(med[s]), strings.ReplaceAll(sd.name, " ", "-")+"-ms")
	}
	fmt.Printf("run --rm --network none busybox true, median of %d rounds (sides alternating):\n", rounds)
	fmt.Printf("  minidock runtime run /bin/true               %7.1f ms\n", ms(med[0]))
	fmt.Printf("  minidock's CLI against minidock's daemon     %7.1f ms\n", ms(med[1]))
	fmt.Printf("  %s version against minidock's daemon %7.1f ms   (the CLI's own start and two requests)\n", filepath.Base(docker28), ms(med[2]))
	fmt.Printf("  %s run against minidock's daemon     %7.1f ms\n", filepath.Base(docker28), ms(med[3]))
	if dk != nil {
		ratio := float64(med[3]) / float64(med[4])
		b.ReportMetric(ratio, "minidock/docker")
		fmt.Printf("  %s run against dockerd %s        %7.1f ms\n", filepath.Base(docker28), dk.version, ms(med[4]))
		fmt.Printf("  ratio minidock/dockerd, the same docker CLI: %.3f (target <= 0.150: %s)\n", ratio, verdict(ratio <= 0.15))
	} else {
		fmt.Println("  docker: skipped, /usr/sbin/dockerd not installed (apt-get install docker.io to compare)")
	}

	mdAfter := memOf(md.pid())
	fmt.Printf("idle daemon memory (started, image imported):\n")
	fmt.Printf("  minidock daemon          VmRSS %7.1f MB  Pss %7.1f MB   (after the runs: VmRSS %.1f MB, Pss %.1f MB)\n",
		mb(mdIdle.rss), mb(mdIdle.pss), mb(mdAfter.rss), mb(mdAfter.pss))
	b.ReportMetric(mb(mdIdle.rss), "minidockd-rss-MB")
	if dk != nil {
		dkAfter := memOf(dk.pids()...)
		fmt.Printf("  dockerd + containerd     VmRSS %7.1f MB  Pss %7.1f MB   (after the runs: VmRSS %.1f MB, Pss %.1f MB)\n",
			mb(dkIdle.rss), mb(dkIdle.pss), mb(dkAfter.rss), mb(dkAfter.pss))
		ratio := float64(mdIdle.rss) / float64(dkIdle.rss)
		b.ReportMetric(ratio, "rss-ratio")
		fmt.Printf("  ratio minidock/(dockerd+containerd): VmRSS %.3f, Pss %.3f (target <= 0.200: %s)\n",
			ratio, float64(mdIdle.pss)/float64(dkIdle.pss), verdict(ratio <= 0.2))
	}
}

// BenchmarkEngineRunDetached50 starts 50 containers with `run -d busybox
// sleep` (minidock and docker alternating), reports the total time of
// each, and the memory one running container costs: its shim, plus the
// daemon's growth divided by 50.
func BenchmarkEngineRunDetached50(b *testing.B) {
	const n = 50
	md, dk := benchEngines(b)
	mdBefore := memOf(md.pid())
	var dkBefore memUse
	if dk != nil {
		dkBefore = memOf(dk.pids()...)
	}
	netNone := md.supports("run", "network")
	var mdTotal, dkTotal time.Duration
	for i := 0; i < n; i++ {
		args := []string{"run", "-d"}
		if netNone {
			args = append(args, "--network", "none")
		}
		start := time.Now()
		md.mustCLI(append(args, "busybox", "sleep", "100000")...)
		mdTotal += time.Since(start)
		if dk != nil {
			start = time.Now()
			dk.mustCLI("run", "-d", "--pull", "never", "--network", "none", "busybox", "sleep", "100000")
			dkTotal += time.Since(start)
		}
	}
	time.Sleep(2 * time.Second) // let the shims settle
	mdShims := shimMemory(b, md.execRoot, " shim ", n)
	mdAfter := memOf(md.pid())
	// The daemon's share is its growth over 50 containers; its own pages
	// (RssAnon) stand for Pss, which falls as 50 shims come to share the
	// binary's pages with it.
	share := func(before, after memUse) memUse {
		return memUse{rss: (after.rss - before.rss) / n, pss: (after.anon - before.anon) / n}
	}
	mdShare := share(mdBefore, mdAfter)
	fmt.Printf("%d x run -d busybox sleep (sides alternating):\n", n)
	fmt.Printf("  minidock total %6.2f s (%.1f ms each)\n", mdTotal.Seconds(), ms(mdTotal)/n)
	b.ReportMetric(mdTotal.Seconds(), "minidock-s")
	if dk != nil {
		fmt.Printf("  docker   total %6.2f s (%.1f ms each), ratio minidock/docker %.3f\n",
			dkTotal.Seconds(), ms(dkTotal)/n, float64(mdTotal)/float64(dkTotal))
		b.ReportMetric(dkTotal.Seconds(), "docker-s")
	}
	fmt.Printf("memory per running container (shim: median of %d; daemon's share: its growth / %d, VmRSS and RssAnon):\n", n, n)
	printShare := func(name string, shim, dshare memUse) {
		fmt.Printf("  %-8s shim VmRSS %5.2f MB Pss %5.2f MB (RssAnon %5.2f MB) | daemon share VmRSS %5.2f MB RssAnon %5.2f MB | total VmRSS %5.2f MB, Pss+RssAnon %5.2f MB\n",
			name, mb(shim.rss), mb(shim.pss), mb(shim.anon), mb(dshare.rss), mb(dshare.pss), mb(shim.rss+dshare.rss), mb(shim.pss+dshare.pss))
	}
	printShare("minidock", mdShims, mdShare)
	b.ReportMetric(mb(mdShims.rss), "shim-rss-MB")
	b.ReportMetric(mb(mdShims.pss), "shim-pss-MB")
	fmt.Printf("  minidock shim target <= 1.5 MB: VmRSS %s, Pss %s\n", verdict(mdShims.rss <= 1536), verdict(mdShims.pss <= 1536))
	if floor, ok := goFloor(b); ok {
		fmt.Printf("  the Go floor, an empty static Go program (pause(2)): VmRSS %.2f MB, RssAnon %.2f MB\n", mb(floor.rss), mb(floor.anon))
	}
	if dk != nil {
		dkShims := shimMemory(b, dk.execRoot, "containerd-shim", n)
		dkShare := share(dkBefore, memOf(dk.pids()...))
		printShare("docker", dkShims, dkShare)
	}
	start := time.Now()
	md.mustCLI(append([]string{"rm", "-f"}, strings.Fields(string(md.mustCLI("ps", "-q")))...)...)
	fmt.Printf("  minidock rm -f of %d: %.2f s\n", n, time.Since(start).Seconds())
	if dk != nil {
		start = time.Now()
		dk.mustCLI(append([]string{"rm", "-f"}, strings.Fields(string(dk.mustCLI("ps", "-q")))...)...)
		fmt.Printf("  docker   rm -f of %d: %.2f s\n", n, time.Since(start).Seconds())
	}
}

// goFloor builds and runs a static Go program that only waits, and reads
// its memory: what any Go shim costs at least.
func goFloor(b *testing.B) (memUse, bool) {
	dir := b.TempDir()
	src := "package main\n\nimport \"syscall\"\n\nfunc main() { syscall.Pause() }\n"
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644); err != nil {
		b.Fatal(err)
	}
	build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", "floor", "main.go")
	build.Dir, build.Env = dir, append(os.Environ(), "CGO_ENABLED=0", "GO111MODULE=off")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Printf("  (no Go floor: %v: %s)\n", err, out)
		return memUse{}, false
	}
	cmd := exec.Command(filepath.Join(dir, "floor"))
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	time.Sleep(500 * time.Millisecond)
	return memOf(cmd.Process.Pid), true
}

// benchEngines starts a minidock daemon and, when it is installed,
// dockerd; imports the busybox image into both; and lets them settle.
// dk is nil without dockerd.
func benchEngines(b *testing.B) (md *benchDaemon, dk *benchDocker) {
	testutil.RequireRoot(b)
	tar := benchImageTar(b)
	md = startBenchDaemon(b)
	md.mustCLI("import", tar, "busybox")
	if dk = startBenchDocker(b); dk != nil {
		dk.mustCLI("import", tar, "busybox")
	}
	time.Sleep(2 * time.Second)
	return md, dk
}

// BenchmarkEngineShimLog has a container write 200,000 lines of 100
// bytes (20 MB) and then sleep: the time until its shim has logged them
// all, and the shim's memory, peak (VmHWM) and after.
func BenchmarkEngineShimLog(b *testing.B) {
	const lines = 200000
	testutil.RequireRoot(b)
	md := startBenchDaemon(b)
	md.mustCLI("import", benchImageTar(b), "busybox")
	args := []string{"run", "-d"}
	if md.supports("run", "network") {
		args = append(args, "--network", "none")
	}
	script := fmt.Sprintf("yes %s | head -n %d; sleep 100000", strings.Repeat("x", 99), lines)
	start := time.Now()
	id := strings.TrimSpace(string(md.mustCLI(append(args, "busybox", "sh", "-c", script)...)))
	logFile, err := os.Open(shim.LogPath(filepath.Join(md.dataRoot, "containers", id), id))
	if err != nil {
		b.Fatal(err)
	}
	defer logFile.Close()
	buf := make([]byte, 1<<20)
	for n, deadline := 0, time.Now().Add(5*time.Minute); n < lines; {
		k, err := logFile.Read(buf)
		n += bytes.Count(buf[:k], []byte("\n"))
		if err != nil {
			if time.Now().After(deadline) {
				b.Fatalf("%d of %d lines logged after 5 minutes", n, lines)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	d := time.Since(start)
	pids := processesMentioning(md.execRoot)
	var m memUse
	var hwm int64
	for _, pid := range pids {
		if strings.Contains(cmdline(pid), " shim ") {
			m = memOf(pid)
			hwm = procKB(fmt.Sprintf("/proc/%d/status", pid), "VmHWM:")
		}
	}
	fi, _ := logFile.Stat()
	fmt.Printf("shim log: %d lines of 100 bytes logged in %.2f s (%.0f lines/s, log %.0f MB); shim VmHWM %.2f MB, now VmRSS %.2f MB RssAnon %.2f MB\n",
		lines, d.Seconds(), lines/d.Seconds(), float64(fi.Size())/1e6, mb(hwm), mb(m.rss), mb(m.anon))
	b.ReportMetric(d.Seconds(), "log-s")
	b.ReportMetric(mb(hwm), "shim-hwm-MB")
}

// memUse is resident memory in kB: VmRSS, Pss, and RssAnon (the
// process's own pages: heap, stacks).
type memUse struct{ rss, pss, anon int64 }

// memOf sums VmRSS and RssAnon (/proc/PID/status) and Pss
// (/proc/PID/smaps_rollup).
func memOf(pids ...int) memUse {
	var m memUse
	for _, pid := range pids {
		m.rss += procKB(fmt.Sprintf("/proc/%d/status", pid), "VmRSS:")
		m.anon += procKB(fmt.Sprintf("/proc/%d/status", pid), "RssAnon:")
		m.pss += procKB(fmt.Sprintf("/proc/%d/smaps_rollup", pid), "Pss:")
	}
	return m
}

func procKB(file, key string) int64 {
	data, _ := os.ReadFile(file)
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == key {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			return n
		}
	}
	return 0
}

// hasChildren reports whether a process has a child, forked by any of
// its threads.
func hasChildren(pid int) bool {
	files, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	for _, f := range files {
		if data, _ := os.ReadFile(f); strings.TrimSpace(string(data)) != "" {
			return true
		}
	}
	return false
}

// shimMemory is the median VmRSS and Pss of the shims (processes whose
// command line mentions root and has mark, and that have a child: not an
// idle spare); there must be want of them.
func shimMemory(b *testing.B, root, mark string, want int) memUse {
	var rss, pss, anon []int64
	for _, pid := range processesMentioning(root) {
		if strings.Contains(cmdline(pid), mark) && hasChildren(pid) {
			m := memOf(pid)
			rss, pss, anon = append(rss, m.rss), append(pss, m.pss), append(anon, m.anon)
		}
	}
	if len(rss) != want {
		b.Fatalf("%d shims (%q under %s), want %d", len(rss), mark, root, want)
	}
	mid := func(v []int64) int64 {
		sort.Slice(v, func(i, j int) bool { return v[i] < v[j] })
		return v[len(v)/2]
	}
	return memUse{mid(rss), mid(pss), mid(anon)}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
func mb(kb int64) float64        { return float64(kb) / 1024 }

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "NOT met"
}

func outErr(err error, out []byte) error {
	if err != nil {
		return fmt.Errorf("%v: %s", err, bytes.TrimSpace(out))
	}
	return nil
}

// benchImageTar is a tarball of testutil's busybox rootfs, for `import`.
func benchImageTar(b *testing.B) string {
	dir := b.TempDir()
	testutil.MakeBusyboxRootfs(b, filepath.Join(dir, "rootfs"))
	tar := filepath.Join(dir, "busybox.tar")
	out, err := exec.Command("tar", "-C", filepath.Join(dir, "rootfs"), "-cf", tar, ".").CombinedOutput()
	if err != nil {
		b.Fatalf("tar: %v: %s", err, out)
	}
	return tar
}

// benchDaemon is a minidock daemon driven through its CLI, on private
// roots, socket and cgroup parent, in its own mount namespace (as
// newEngine starts one for the tests, which need a *testing.T).
type benchDaemon struct {
	benchCLI
	execRoot, dataRoot string
	cgroupParent       string
	bridge, nftTable   string // "" when the daemon has no networking
	cmd                *exec.Cmd
}

func startBenchDaemon(b *testing.B) *benchDaemon {
	n := engineSeq.Add(1)
	d := &benchDaemon{
		benchCLI:     benchCLI{b: b, prog: binary},
		dataRoot:     b.TempDir(),
		execRoot:     fmt.Sprintf("/run/minidock-bench-%d-e%d", os.Getpid(), n),
		cgroupParent: fmt.Sprintf("/minidock-bench-%d-e%d", os.Getpid(), n),
	}
	sock := "unix://" + filepath.Join(d.execRoot, "d.sock")
	d.env = append(os.Environ(), "MINIDOCK_HOST="+sock)
	args := []string{"daemon", "--data-root", d.dataRoot, "--exec-root", d.execRoot,
		"-H", sock, "--cgroup-parent", d.cgroupParent}
	if help, _ := exec.Command(binary, "daemon", "--help").CombinedOutput(); bytes.Contains(help, []byte("-nft-table")) {
		// networking of its own, as newEngine's: bridge, subnets, nftables table
		d.bridge = fmt.Sprintf("mdb%d", (int64(os.Getpid())%10000)*100+n%100)
		d.nftTable = fmt.Sprintf("minidock_bench_%d_%d", os.Getpid(), n)
		args = append(args, "--bridge", d.bridge, "--bip", fmt.Sprintf("10.223.%d.1/24", n%250+1),
			"--default-address-pool", fmt.Sprintf("base=10.%d.0.0/16,size=24", 224+n%20),
			"--nft-table", d.nftTable, "--dns", "none")
	}
	d.cmd = exec.Command(binary, args...)
	logPath := startDaemonProcess(b, d.cmd)
	b.Cleanup(d.stop)
	d.waitAnswer(10*time.Second, logPath, "version")
	return d
}

// startDaemonProcess starts a daemon in its own mount namespace (its
// overlay and netns mounts stay out of the host's table, which other
// packages' leak checks read), its output to a log file, and returns the
// log's path.
func startDaemonProcess(b testing.TB, cmd *exec.Cmd) string {
	logf, err := os.Create(filepath.Join(b.TempDir(), filepath.Base(cmd.Path)+".log"))
	if err != nil {
		b.Fatal(err)
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	return logf.Name()
}

// waitAnswer runs the client until its daemon answers, and returns the
// answer.
func (c benchCLI) waitAnswer(timeout time.Duration, logPath string, args ...string) []byte {
	for deadline := time.Now().Add(timeout); ; time.Sleep(50 * time.Millisecond) {
		out, err := c.cli(args...)
		if err == nil {
			return out
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logPath)
			c.b.Fatalf("the daemon of %s did not answer: %v\n%s", c.prog, err, log)
		}
	}
}

// removeLeftovers, once a daemon has stopped, kills the processes that
// still mention its exec root (a leak), removes its cgroup parent and
// its exec root.
func removeLeftovers(b testing.TB, execRoot, cgroupParent string, wait time.Duration) {
	waitNoProcesses(execRoot, wait)
	for _, pid := range processesMentioning(execRoot) {
		b.Errorf("leak: process %d still runs: %s", pid, cmdline(pid))
		syscall.Kill(pid, syscall.SIGKILL)
	}
	removeCgroupTree(strings.TrimPrefix(cgroupParent, "/"))
	if err := os.RemoveAll(execRoot); err != nil {
		b.Errorf("remove the exec root: %v", err)
	}
}

func (d *benchDaemon) pid() int { return d.cmd.Process.Pid }

// benchCLI runs a daemon's command-line client.
type benchCLI struct {
	b    testing.TB
	prog string   // the client binary
	env  []string // its environment: which daemon it talks to
}

func (c benchCLI) cli(args ...string) ([]byte, error) {
	cmd := exec.Command(c.prog, args...)
	cmd.Env = c.env
	out, err := cmd.CombinedOutput()
	return out, outErr(err, out)
}

func (c benchCLI) mustCLI(args ...string) []byte {
	out, err := c.cli(args...)
	if err != nil {
		c.b.Fatalf("%s %s: %v", filepath.Base(c.prog), strings.Join(args, " "), err)
	}
	return out
}

// supports reports whether `minidock COMMAND --help` lists flag.
func (d *benchDaemon) supports(command, flag string) bool {
	out, _ := d.cli(command, "--help")
	return bytes.Contains(out, []byte("-"+flag))
}

// stop removes every container, stops the daemon and removes what is
// left: processes, the exec root, the cgroup parent.
func (d *benchDaemon) stop() {
	if out, err := d.cli("ps", "-a", "-q"); err == nil {
		if ids := strings.Fields(string(out)); len(ids) > 0 {
			if _, err := d.cli(append([]string{"rm", "-f"}, ids...)...); err != nil {
				d.b.Errorf("cleanup: %v", err)
			}
		}
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	d.cmd.Wait()
	removeLeftovers(d.b, d.execRoot, d.cgroupParent, 3*time.Second)
	if d.bridge != "" {
		if _, err := os.Stat("/sys/class/net/" + d.bridge); err == nil {
			d.b.Errorf("leak: bridge %s", d.bridge)
			exec.Command("ip", "link", "del", d.bridge).Run()
		}
		if out, err := exec.Command("nft", "list", "table", "inet", d.nftTable).CombinedOutput(); err == nil {
			d.b.Errorf("leak: nftables table inet %s:\n%s", d.nftTable, out)
			exec.Command("nft", "delete", "table", "inet", d.nftTable).Run()
		}
	}
}

// removeCgroupTree removes a cgroup directory, children first, in every
// hierarchy.
func removeCgroupTree(rel string) {
	for _, dir := range cgroupDirs(rel) {
		if filepath.Base(dir) != filepath.Base(rel) {
			continue
		}
		var dirs []string
		filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
			if err == nil && e.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			os.Remove(dirs[i])
		}
	}
}

// benchDocker is a private dockerd with the containerd it supervises.
type benchDocker struct {
	benchCLI           // Debian's docker CLI, the same version as dockerd
	execRoot, dataRoot string
	cgroupParent       string
	version            string
	cmd                *exec.Cmd
	made               []string // host paths dockerd creates whatever its roots
}

// startBenchDocker starts dockerd, or returns nil (with a message) when
// it is not installed.
func startBenchDocker(b testing.TB) *benchDocker {
	const dockerd = "/usr/sbin/dockerd"
	cli := "/usr/bin/docker"
	if _, err := os.Stat(dockerd); err != nil {
		fmt.Println("docker side skipped: /usr/sbin/dockerd not installed (apt-get install docker.io to compare)")
		return nil
	}
	if _, err := os.Stat(cli); err != nil {
		fmt.Println("docker side skipped: /usr/bin/docker not installed")
		return nil
	}
	d := &benchDocker{
		benchCLI:     benchCLI{b: b, prog: cli},
		dataRoot:     b.TempDir(),
		execRoot:     fmt.Sprintf("/run/minidock-bench-docker-%d", os.Getpid()),
		cgroupParent: fmt.Sprintf("/minidock-bench-docker-%d", os.Getpid()),
	}
	// Paths dockerd and containerd use whatever their roots are: removed
	// afterwards if they were not there before.
	for _, p := range []string{"/etc/docker/key.json", "/etc/docker", "/run/docker/plugins", "/run/docker",
		"/run/containerd/s", "/run/containerd"} {
		if _, err := os.Lstat(p); err != nil {
			d.made = append(d.made, p)
		}
	}
	_, err := os.Stat("/sys/class/net/docker0")
	hadBridge := err == nil
	rulesBefore := dockerRules()
	sock := "unix://" + filepath.Join(d.execRoot, "docker.sock")
	d.env = append(os.Environ(), "DOCKER_HOST="+sock, "DOCKER_CONFIG="+b.TempDir())
	if err := os.MkdirAll(d.execRoot, 0o700); err != nil {
		b.Fatal(err)
	}
	d.cmd = exec.Command(dockerd, "-H", sock, "--data-root", d.dataRoot, "--exec-root", filepath.Join(d.execRoot, "exec"),
		"--pidfile", filepath.Join(d.execRoot, "docker.pid"), "--cgroup-parent", d.cgroupParent,
		"--bridge=none", "--iptables=false", "--ip-masq=false", "--ip-forward=false",
		"--log-level=warn")
	logPath := startDaemonProcess(b, d.cmd)
	b.Cleanup(func() { d.stop(hadBridge, rulesBefore) })
	d.version = strings.TrimSpace(string(d.waitAnswer(60*time.Second, logPath, "version", "--format", "{{.Server.Version}}")))
	if len(d.pids()) != 2 {
		b.Fatalf("dockerd runs without its own containerd (pids %v)", d.pids())
	}
	fmt.Printf("docker side: dockerd %s, containerd %s (Debian docker.io), runtime runc\n", d.version, d.containerdVersion())
	return d
}

// pids are dockerd's and its containerd's.
func (d *benchDocker) pids() []int {
	pids := []int{d.cmd.Process.Pid}
	for _, pid := range processesMentioning(d.execRoot) {
		if f := strings.Fields(cmdline(pid)); len(f) > 0 && filepath.Base(f[0]) == "containerd" {
			pids = append(pids, pid)
		}
	}
	return pids
}

func (d *benchDocker) containerdVersion() string {
	out, _ := exec.Command("containerd", "--version").Output()
	if f := strings.Fields(string(out)); len(f) >= 3 {
		return f[2]
	}
	return "?"
}

// stop removes the containers, stops dockerd (which stops its
// containerd), then removes what is left: processes, the roots, the
// cgroup parent, host paths it made, a docker0 or DOCKER chains if they
// appeared anyway.
func (d *benchDocker) stop(hadBridge bool, rulesBefore string) {
	if out, err := d.cli("ps", "-aq"); err == nil {
		if ids := strings.Fields(string(out)); len(ids) > 0 {
			d.cli(append([]string{"rm", "-f"}, ids...)...)
		}
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { d.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		d.b.Errorf("dockerd ignored SIGTERM for 30s")
		d.cmd.Process.Kill()
		<-done
	}
	removeLeftovers(d.b, d.execRoot, d.cgroupParent, 10*time.Second)
	for _, p := range d.made {
		os.Remove(p) // files, and directories only when empty
	}
	if _, err := os.Stat("/sys/class/net/docker0"); err == nil && !hadBridge {
		d.b.Errorf("leak: dockerd made docker0 despite --bridge=none; removing it")
		exec.Command("ip", "link", "del", "docker0").Run()
	}
	if after := dockerRules(); after != rulesBefore {
		d.b.Errorf("leak: iptables DOCKER rules appeared despite --iptables=false:\n%s", after)
	}
}

// dockerRules lists the iptables rules and chains that mention DOCKER.
func dockerRules() string {
	var lines []string
	for _, table := range []string{"filter", "nat"} {
		out, _ := exec.Command("iptables", "-t", table, "-S").Output()
		for _, l := range strings.Split(string(out), "\n") {
			if strings.Contains(l, "DOCKER") {
				lines = append(lines, table+": "+l)
			}
		}
	}
	return strings.Join(lines, "\n")
}
