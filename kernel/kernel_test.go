package kernel

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"minidock/internal/trace"
)

func TestFlagsSpelledByName(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{MountFlags(unix.MS_BIND | unix.MS_REC), "MS_BIND|MS_REC"},
		{MountFlags(unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_REMOUNT | unix.MS_BIND), "MS_RDONLY|MS_NOSUID|MS_REMOUNT|MS_BIND"},
		{MountFlags(0), "0"},
		{MountFlags(1 << 31), "0x80000000"},
		{CloneFlags(unix.CLONE_NEWPID | unix.CLONE_NEWNS), "CLONE_NEWPID|CLONE_NEWNS"},
		{openFlagNames(unix.O_DIRECTORY | unix.O_CLOEXEC), "O_RDONLY|O_DIRECTORY|O_CLOEXEC"},
		{openFlagNames(unix.O_WRONLY | unix.O_TRUNC), "O_WRONLY|O_TRUNC"},
		{nodeMode(unix.S_IFCHR | 0o666), "S_IFCHR|0666"},
		{capSetNames(1<<21 | 1<<5), "CAP_KILL|CAP_SYS_ADMIN"},
		{rlimitName(unix.RLIMIT_NOFILE), "RLIMIT_NOFILE"},
		{unmountArgs(".", unix.MNT_DETACH), "., flags=MNT_DETACH"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
	if Capability("sys_admin") != 21 || Capability("CAP_KILL") != 5 || Capability("CAP_NOPE") != -1 {
		t.Error("Capability lookup")
	}
	if Rlimit("RLIMIT_NOFILE") != unix.RLIMIT_NOFILE || Rlimit("RLIMIT_NOPE") != -1 {
		t.Error("Rlimit lookup")
	}
}

// The real calls write the trace line and return the error from the same
// words: the call, its arguments, the errno.
func TestLinuxTraceAndErrorAgree(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "trace"))
	if err != nil {
		t.Fatal(err)
	}
	k := NewLinux(trace.New(f, "test")).Begin("someStep")
	missing := filepath.Join(t.TempDir(), "missing")
	err = k.Chdir(missing)
	var ke *Error
	if !errors.As(err, &ke) || !errors.Is(err, unix.ENOENT) {
		t.Fatalf("Chdir error %v (%T), want a *kernel.Error wrapping ENOENT", err, err)
	}
	if want := "chdir " + missing + ": no such file or directory"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	if err := k.Chdir("/"); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(f.Name())
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 3 {
		t.Fatalf("trace:\n%s", data)
	}
	for i, want := range []string{"someStep", "someStep", "someStep"} {
		if fields := strings.Fields(lines[i]); len(fields) < 4 || fields[3] != want {
			t.Errorf("line %d %q: step column is not %q", i, lines[i], want)
		}
	}
	for i, want := range []string{"begin", "chdir " + missing + " = ENOENT (no such file or directory)  # ", "chdir / = ok  # "} {
		if !strings.Contains(lines[i], want) {
			t.Errorf("line %d %q does not hold %q", i, lines[i], want)
		}
	}
}

// Every flag a container's set-up uses is spelled by its name: no hex
// number is left for a known bit.
func TestNoRawHexForKnownFlags(t *testing.T) {
	for _, c := range []struct {
		name string
		got  string
	}{
		{"rslave", MountFlags(unix.MS_REC | unix.MS_SLAVE)},
		{"read-only bind remount", MountFlags(unix.MS_BIND | unix.MS_REMOUNT | unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC | unix.MS_RELATIME)},
		{"every mount flag", MountFlags(allBits(mountFlags))},
		{"every clone flag", CloneFlags(allBits(cloneFlags) | unix.CLONE_NEWUSER | unix.CLONE_NEWCGROUP)},
		{"open", openFlagNames(unix.O_RDONLY | unix.O_PATH | unix.O_NOFOLLOW | unix.O_CLOEXEC | unix.O_DIRECTORY)},
		{"resolve", spell(uintptr(unix.RESOLVE_IN_ROOT|unix.RESOLVE_NO_MAGICLINKS|unix.RESOLVE_NO_XDEV), resolveFlags)},
		{"seccomp", spell(unix.SECCOMP_FILTER_FLAG_TSYNC|unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW|unix.SECCOMP_FILTER_FLAG_LOG, seccompFlags)},
		{"umount", spell(unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW, unmountFlags)},
		{"every capability", capSetNames(1<<uint(len(capabilities)) - 1)},
		{"default caps", capSetNames(1<<unix.CAP_CHOWN | 1<<unix.CAP_DAC_OVERRIDE | 1<<unix.CAP_FSETID | 1<<unix.CAP_FOWNER | 1<<unix.CAP_MKNOD | 1<<unix.CAP_NET_RAW | 1<<unix.CAP_SETGID | 1<<unix.CAP_SETUID | 1<<unix.CAP_SETFCAP | 1<<unix.CAP_SETPCAP | 1<<unix.CAP_NET_BIND_SERVICE | 1<<unix.CAP_SYS_CHROOT | 1<<unix.CAP_KILL | 1<<unix.CAP_AUDIT_WRITE)},
	} {
		if strings.Contains(c.got, "0x") || c.got == "0" {
			t.Errorf("%s: %q has a raw number", c.name, c.got)
		}
	}
	if got := MountFlags(unix.MS_REC | unix.MS_SLAVE); got != "MS_REC|MS_SLAVE" && got != "MS_SLAVE|MS_REC" {
		t.Errorf("rslave spelled %q", got)
	}
	if got := capSetNames(1 << 45); got != "cap 45" {
		t.Errorf("an unknown capability: %q", got)
	}
}

func allBits(table []flagName) uintptr {
	var v uintptr
	for _, f := range table {
		v |= f.v
	}
	return v
}

// Each mount says why it is made, from its flags.
func TestMountWhy(t *testing.T) {
	for _, c := range []struct {
		src, dst, fstype string
		flags            uintptr
		want             string
	}{
		{"", "/", "", unix.MS_REC | unix.MS_SLAVE, "propagation"},
		{"/r", "/r", "", unix.MS_BIND | unix.MS_REC, "mount point"},
		{"", "/r/proc/sys", "", unix.MS_BIND | unix.MS_REMOUNT | unix.MS_RDONLY, "read-only"},
		{"proc", "/r/proc", "proc", unix.MS_NOSUID, "pid namespace"},
		{"/dev/null", "/r/proc/kcore", "", unix.MS_BIND, "masked"},
	} {
		if got := mountWhy(c.src, c.dst, c.fstype, c.flags); !strings.Contains(got, c.want) {
			t.Errorf("mount %s %s %s %s: why %q, want it to say %q", c.src, c.dst, c.fstype, MountFlags(c.flags), got, c.want)
		}
	}
}

func TestRecorder(t *testing.T) {
	r := NewRecorder()
	r.FailOn("mount", "/proc", unix.EPERM)
	k := r.Begin("prepareRootfs")
	if err := k.Mount("tmpfs", "/r/dev", "tmpfs", unix.MS_NOSUID, "mode=755"); err != nil {
		t.Fatal(err)
	}
	err := k.Mount("proc", "/r/proc", "proc", 0, "")
	if !errors.Is(err, unix.EPERM) || err.Error() != "mount src=proc, dst=/r/proc, type=proc: operation not permitted" {
		t.Errorf("scripted failure: %v", err)
	}
	fd, _ := k.Open("/", unix.O_RDONLY)
	if fd < 100 {
		t.Errorf("the fake's descriptors start at 100, got %d", fd)
	}
	want := []string{
		"prepareRootfs: begin",
		"prepareRootfs: mount src=tmpfs, dst=/r/dev, type=tmpfs, flags=MS_NOSUID, data=mode=755",
		"prepareRootfs: mount src=proc, dst=/r/proc, type=proc",
		"prepareRootfs: open /, O_RDONLY",
	}
	got := r.Calls()
	if len(got) != len(want) {
		t.Fatalf("recorded %v", got)
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Errorf("call %d: %q, want %q", i, got[i], want[i])
		}
	}
}
