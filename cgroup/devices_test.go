package cgroup

// Tests of the device controller (devices.go, devices_v1.go,
// devices_v2.go). The unit tests pin down the rule semantics, the v1 lines
// and the eBPF program (run by a small interpreter, so the program is
// checked on a v1 host too); the kernel tests open real device nodes from a
// process in the cgroup: through devices.allow/deny on v1, through the
// attached eBPF program on v2 (`make vm-test`).

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"minidock/internal/testutil"
)

func charDev(allow bool, major, minor int64, access string) specs.LinuxDeviceCgroup {
	d := specs.LinuxDeviceCgroup{Allow: allow, Type: "c", Access: access}
	if major != wildcard {
		d.Major = &major
	}
	if minor != wildcard {
		d.Minor = &minor
	}
	return d
}

var denyAll = specs.LinuxDeviceCgroup{Allow: false, Access: "rwm"}

func TestDeviceRulesRefused(t *testing.T) {
	for _, c := range []struct {
		name  string
		rules []specs.LinuxDeviceCgroup
		want  string
	}{
		{"type x", []specs.LinuxDeviceCgroup{{Allow: true, Type: "x", Access: "rwm"}}, `devices[0]: type "x"`},
		{"access q", []specs.LinuxDeviceCgroup{denyAll, charDev(true, 1, 3, "rq")}, `devices[1]: access "rq": 'q' is not`},
		{"empty access", []specs.LinuxDeviceCgroup{{Allow: true, Type: "c"}}, "access is empty"},
		{"negative major", []specs.LinuxDeviceCgroup{charDev(true, -5, 3, "r")}, "major -5"},
		{"hole in a wildcard", []specs.LinuxDeviceCgroup{denyAll, charDev(true, 1, wildcard, "rwm"), charDev(false, 1, 3, "w")}, "cannot cut an exception out of a wildcard"},
	} {
		err := checkDevices(c.rules)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error containing %q", c.name, err, c.want)
		}
	}
	if err := checkDevices(append([]specs.LinuxDeviceCgroup{denyAll}, DefaultDeviceRules...)); err != nil {
		t.Errorf("deny all + DefaultDeviceRules: %v", err)
	}
}

// allows answers from a devState the way the v1 kernel does
// (security/device_cgroup.c): with a deny default one exception must cover
// all the access asked for; with an allow default no exception may touch it.
func (s *devState) allows(typ byte, major, minor int64, acc devAccess) bool {
	dev := devKey{typ, major, minor}
	for k, a := range s.except {
		if !k.covers(dev) {
			continue
		}
		if s.defaultAllow && a&acc != 0 {
			return false
		}
		if !s.defaultAllow && acc&^a == 0 {
			return true
		}
	}
	return s.defaultAllow
}

func TestDeviceRulesLastMatchWins(t *testing.T) {
	rules := []specs.LinuxDeviceCgroup{
		{Allow: true, Type: "a", Access: "r"}, // "a" is every access, whatever it says
		denyAll,
		charDev(true, 1, 3, "rwm"),
		charDev(true, 136, wildcard, "rw"),
		charDev(true, 1, 5, "rwm"),
		charDev(false, 1, 5, "w"),
		charDev(false, 1, wildcard, "m"), // takes m from 1:3 and 1:5 too
	}
	parsed, err := parseDeviceRules(rules)
	if err != nil {
		t.Fatal(err)
	}
	s, err := devStateOf(parsed)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		major, minor int64
		acc          devAccess
		want         bool
	}{
		{1, 3, accRead | accWrite, true}, {1, 3, accMknod, false},
		{1, 5, accRead, true}, {1, 5, accWrite, false}, {1, 5, accMknod, false},
		{136, 7, accRead | accWrite, true}, {136, 7, accMknod, false},
		{1, 9, accRead, false},
	} {
		if got := s.allows('c', c.major, c.minor, c.acc); got != c.want {
			t.Errorf("c %d:%d %s: allowed %v, want %v (state %+v)", c.major, c.minor, c.acc, got, c.want, s)
		}
	}
}

func TestDevicesV1Lines(t *testing.T) {
	state := func(rules ...specs.LinuxDeviceCgroup) *devState {
		t.Helper()
		p, err := parseDeviceRules(rules)
		if err != nil {
			t.Fatal(err)
		}
		s, err := devStateOf(p)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	allowAll := &devState{defaultAllow: true}
	for _, c := range []struct {
		name        string
		cur, target *devState
		want        []devLine
	}{
		{"new cgroup, deny all but /dev/null", allowAll, state(denyAll, charDev(true, 1, 3, "rwm")),
			[]devLine{{"devices.deny", "a *:* rwm"}, {"devices.allow", "c 1:3 rwm"}}},
		{"update of an allow list: no reset", state(denyAll, charDev(true, 1, 3, "rwm"), charDev(true, 1, 5, "rwm")),
			state(denyAll, charDev(true, 1, 3, "rwm"), charDev(true, 1, 9, "r")),
			[]devLine{{"devices.deny", "c 1:5 rwm"}, {"devices.allow", "c 1:9 r"}}},
		{"deny list", state(denyAll), state(specs.LinuxDeviceCgroup{Allow: true, Type: "a", Access: "rwm"}, charDev(false, 1, 5, "w")),
			[]devLine{{"devices.allow", "a *:* rwm"}, {"devices.deny", "c 1:5 w"}}},
	} {
		if got := devTransition(c.cur, c.target); !slices.Equal(got, c.want) {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
	// devices.list as the kernel prints it reads back as the same state.
	dir := fakeDir(t, map[string]string{"devices.list": "c 1:3 rwm\nc 136:* rw\nb *:* m\n"})
	s, err := readDevicesList(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := state(denyAll, charDev(true, 1, 3, "rwm"), charDev(true, 136, wildcard, "rw"), specs.LinuxDeviceCgroup{Allow: true, Type: "b", Access: "m"})
	if s.defaultAllow || len(s.except) != len(want.except) || devTransition(s, want) != nil {
		t.Errorf("devices.list read as %+v, want %+v", s, want)
	}
}

// runBPF interprets the few instructions deviceProgram emits, on a
// struct bpf_cgroup_dev_ctx, and returns R0.
func runBPF(t *testing.T, prog []bpfInsn, ctx [3]uint32) uint64 {
	t.Helper()
	var reg [11]uint64
	for pc := 0; pc < len(prog); pc++ {
		in := prog[pc]
		switch in.code {
		case opLoadWord:
			if in.src != r1 || in.off%4 != 0 || in.off < 0 || in.off > 8 {
				t.Fatalf("pc %d: load from r%d%+d", pc, in.src, in.off)
			}
			reg[in.dst] = uint64(ctx[in.off/4])
		case opAnd32Imm:
			reg[in.dst] = uint64(uint32(reg[in.dst]) & uint32(in.imm))
		case opRsh32Imm:
			reg[in.dst] = uint64(uint32(reg[in.dst]) >> uint32(in.imm))
		case opMov32Imm:
			reg[in.dst] = uint64(uint32(in.imm))
		case opMov32Reg:
			reg[in.dst] = uint64(uint32(reg[in.src]))
		case opJneImm:
			if reg[in.dst] != uint64(int64(in.imm)) {
				pc += int(in.off)
			}
		case opJeqImm:
			if reg[in.dst] == uint64(int64(in.imm)) {
				pc += int(in.off)
			}
		case opJneReg:
			if reg[in.dst] != reg[in.src] {
				pc += int(in.off)
			}
		case opExit:
			return reg[r0]
		default:
			t.Fatalf("pc %d: opcode %#x not interpreted", pc, in.code)
		}
	}
	t.Fatal("program fell off its end")
	return 0
}

func TestDeviceProgramMatchesV1Semantics(t *testing.T) {
	for _, rules := range [][]specs.LinuxDeviceCgroup{
		append([]specs.LinuxDeviceCgroup{denyAll}, DefaultDeviceRules...),
		{denyAll, charDev(true, 1, 3, "rwm")},
		{denyAll, charDev(true, 1, 3, "r"), charDev(true, 1, wildcard, "w")},
		{{Allow: true, Type: "a", Access: "rwm"}, charDev(false, 1, 5, "w"), {Allow: false, Type: "b", Access: "rwm"}},
		{{Allow: true, Type: "a", Access: "rwm"}},
		{denyAll},
	} {
		p, err := parseDeviceRules(rules)
		if err != nil {
			t.Fatal(err)
		}
		s, err := devStateOf(p)
		if err != nil {
			t.Fatal(err)
		}
		prog := deviceProgram(s)
		for _, typ := range []byte{'c', 'b'} {
			for _, dev := range [][2]int64{{1, 3}, {1, 5}, {1, 9}, {5, 2}, {136, 4}, {8, 0}, {10, 200}} {
				for acc := devAccess(1); acc <= accAll; acc++ {
					bt := uint32(unix.BPF_DEVCG_DEV_CHAR)
					if typ == 'b' {
						bt = unix.BPF_DEVCG_DEV_BLOCK
					}
					var ba uint32
					if acc&accRead != 0 {
						ba |= unix.BPF_DEVCG_ACC_READ
					}
					if acc&accWrite != 0 {
						ba |= unix.BPF_DEVCG_ACC_WRITE
					}
					if acc&accMknod != 0 {
						ba |= unix.BPF_DEVCG_ACC_MKNOD
					}
					got := runBPF(t, prog, [3]uint32{bt | ba<<16, uint32(dev[0]), uint32(dev[1])}) == 1
					if want := s.allows(typ, dev[0], dev[1], acc); got != want {
						t.Errorf("rules %v: %c %d:%d %s: program says %v, v1 semantics %v", rules, typ, dev[0], dev[1], acc, got, want)
					}
				}
			}
		}
	}
}

// probe starts a shell in m that opens each path for reading and reports,
// per path, "ok" or the error the shell printed.
func probe(t *testing.T, m Manager, paths ...string) map[string]string {
	t.Helper()
	var script strings.Builder
	for _, p := range paths {
		// A subshell: a failed redirection ends a non-interactive shell.
		fmt.Fprintf(&script, "if ( : < %s ); then echo 'open %s: ok'; fi; ", p, p)
	}
	pr := start(t, m, script.String())
	if ws := pr.wait(t); ws.Signaled() {
		t.Fatalf("probe shell ended with %v: %q", ws, pr.output())
	}
	// busybox prints "can't open /x: ..." or, in other builds, "'/x'".
	out := strings.ReplaceAll(pr.output(), "'", "")
	res := map[string]string{}
	for _, p := range paths {
		switch {
		case strings.Contains(out, "open "+p+": ok"):
			res[p] = "ok"
		case strings.Contains(out, "cant open "+p+": "):
			_, after, _ := strings.Cut(out, "cant open "+p+": ")
			res[p], _, _ = strings.Cut(after, "\n")
		default:
			t.Fatalf("no word about %s from the probe: %q", p, out)
		}
	}
	return res
}

const eperm = "Operation not permitted"

func TestDevicesAreEnforced(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode Mode) {
		onlyNull := []specs.LinuxDeviceCgroup{denyAll, charDev(true, 1, 3, "rwm")}
		m := createTestManager(t, mode, &specs.LinuxResources{Devices: onlyNull})
		if got := probe(t, m, "/dev/null", "/dev/zero"); got["/dev/null"] != "ok" || got["/dev/zero"] != eperm {
			t.Fatalf("deny all + allow c 1:3: got %v, want /dev/null ok and /dev/zero %q", got, eperm)
		}
		// Update replaces the rules: now /dev/zero too, read only.
		if err := m.Update(&specs.LinuxResources{Devices: append(onlyNull, charDev(true, 1, 5, "r"))}); err != nil {
			t.Fatalf("Update: %v", err)
		}
		if got := probe(t, m, "/dev/null", "/dev/zero"); got["/dev/null"] != "ok" || got["/dev/zero"] != "ok" {
			t.Errorf("after Update allowing c 1:5 r: got %v, want both ok", got)
		}
		// An update without devices leaves them alone.
		if err := m.Update(pidsLimit(50)); err != nil {
			t.Fatal(err)
		}
		if got := probe(t, m, "/dev/zero", "/dev/urandom"); got["/dev/zero"] != "ok" || got["/dev/urandom"] != eperm {
			t.Errorf("after Update without devices: got %v, want /dev/zero ok and /dev/urandom %q", got, eperm)
		}
		if v2m, ok := m.(*v2); ok {
			if n := attachedCount(t, v2m.dir); n != 1 {
				t.Errorf("%d device programs attached after two updates, want 1 (replaced, not added)", n)
			}
		}
	})
}

// attachedCount counts the device programs attached to a v2 cgroup.
func attachedCount(t *testing.T, dir string) int {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	fds, err := attachedDevicePrograms(fd)
	if err != nil {
		t.Fatal(err)
	}
	closeAll(fds)
	return len(fds)
}

func TestDefaultDeviceRulesLetAShellWork(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode Mode) {
		// Our own nodes (made from outside the cgroup), so that the test
		// does not depend on what this machine's /dev holds.
		dir := t.TempDir()
		node := func(name string, major, minor uint32) string {
			p := filepath.Join(dir, name)
			if err := unix.Mknod(p, unix.S_IFCHR|0o666, int(unix.Mkdev(major, minor))); err != nil {
				t.Fatal(err)
			}
			return p
		}
		allowed := []string{node("null", 1, 3), node("zero", 1, 5), node("full", 1, 7), node("random", 1, 8), node("urandom", 1, 9)}
		// Opening these can fail for other reasons (ENXIO without a
		// controlling terminal, ENODEV for a ptmx outside devpts), but
		// the device cgroup must not be what refuses them.
		notRefused := []string{node("tty", 5, 0), node("ptmx", 5, 2), node("pts0", 136, 0), node("tun", 10, 200)}
		kmsg := node("kmsg", 1, 11) // not in the defaults

		rules := append([]specs.LinuxDeviceCgroup{denyAll}, DefaultDeviceRules...)
		m := createTestManager(t, mode, &specs.LinuxResources{Devices: rules})
		got := probe(t, m, slices.Concat(allowed, notRefused, []string{kmsg})...)
		for _, p := range allowed {
			if got[p] != "ok" {
				t.Errorf("open %s: %s, want ok", p, got[p])
			}
		}
		for _, p := range notRefused {
			if got[p] == eperm {
				t.Errorf("open %s: %s", p, eperm)
			}
		}
		if got[kmsg] != eperm {
			t.Errorf("open %s (c 1:11): %s, want %q", kmsg, got[kmsg], eperm)
		}
		// mknod of any character device is allowed; opening it is not.
		made := filepath.Join(dir, "made")
		pr := start(t, m, fmt.Sprintf("mknod %s c 1 11 && echo made; : < %s", made, made))
		pr.wait(t)
		if out := pr.output(); !strings.Contains(out, "made") || !strings.Contains(out, eperm) {
			t.Errorf("mknod and open of c 1:11 inside the cgroup: %q, want it made and its open refused", out)
		}
	})
}

func TestBadDeviceRulesCreateNothing(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode Mode) {
		for _, c := range []struct {
			name string
			d    specs.LinuxDeviceCgroup
			want string
		}{
			{"type x", specs.LinuxDeviceCgroup{Allow: true, Type: "x", Access: "rwm"}, `type "x"`},
			{"access q", charDev(true, 1, 3, "q"), `access "q"`},
		} {
			t.Run(c.name, func(t *testing.T) {
				testutil.RequireRoot(t)
				top := uniqueName()
				m, err := newManager(mode, "/"+top+"/c", "")
				if err != nil {
					t.Fatal(err)
				}
				err = m.Create(&specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{denyAll, c.d}})
				if err == nil || !strings.Contains(err.Error(), c.want) {
					t.Errorf("Create: got error %v, want one containing %q", err, c.want)
				}
				if left := existing(t, top); len(left) > 0 {
					t.Errorf("failed Create left %v", left)
					for _, d := range left {
						_ = removeTree(nil, d)
					}
				}
			})
		}
	})
}

func TestDevicesV1NeedsItsHierarchy(t *testing.T) {
	m := &v1{mode: Legacy, path: "/x", mounts: map[string]string{"memory": "/sys/fs/cgroup/memory"}}
	err := m.check(&specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{denyAll}})
	if err == nil || !strings.Contains(err.Error(), `"devices" is not mounted`) {
		t.Errorf("check without a devices hierarchy: got %v", err)
	}
}

func TestDeviceProgramIsDetached(t *testing.T) {
	forEachMode(t, func(t *testing.T, mode Mode) {
		if mode != Unified {
			t.Skipf("device programs are cgroup v2; this host is %s (make vm-test runs it)", mode)
		}
		m := createTestManager(t, mode, &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{denyAll, charDev(true, 1, 3, "rwm")}})
		dir := m.(*v2).dir
		fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		ids := make([]uint32, 64)
		attr := bpfProgQueryAttr{targetFd: uint32(fd), attachType: unix.BPF_CGROUP_DEVICE,
			progIds: unsafe.Pointer(&ids[0]), progCnt: uint32(len(ids))}
		_, err = bpf(unix.BPF_PROG_QUERY, &attr)
		unix.Close(fd)
		if err != nil || attr.progCnt != 1 {
			t.Fatalf("BPF_PROG_QUERY: %d programs, %v; want 1", attr.progCnt, err)
		}
		// What Destroy does before rmdir (which alone would free the
		// program too, once the kernel frees the cgroup).
		if err := m.(*v2).detachDevicePrograms(); err != nil {
			t.Fatal(err)
		}
		if n := attachedCount(t, dir); n != 0 {
			t.Errorf("%d device programs still attached", n)
		}
		// Detached and no descriptor left: the kernel frees the program
		// and its id with it.
		eventually(t, "the device program to be freed", func() bool {
			pfd, err := bpf(unix.BPF_PROG_GET_FD_BY_ID, &bpfGetFdByIDAttr{id: ids[0]})
			if err == nil {
				unix.Close(pfd)
			}
			return errors.Is(err, unix.ENOENT)
		})
		if err := m.Destroy(); err != nil {
			t.Fatal(err)
		}
	})
}

func TestVerifierLogInLoadError(t *testing.T) {
	testutil.RequireRoot(t)
	if !isCgroup2(Root) {
		t.Skip("loads a device program: only on pure cgroup v2 (make vm-test runs it)")
	}
	// No exit: the verifier refuses a program that falls off its end.
	_, err := loadDeviceProgram([]bpfInsn{{code: opMov32Imm, dst: r0, imm: 1}})
	if err == nil || !strings.Contains(err.Error(), "verifier log") {
		t.Errorf("loading a program without exit: got %v, want an error with the verifier log", err)
	}
}
