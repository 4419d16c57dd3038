package tests

import (
	"archive/tar"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// remapEngine starts a daemon with --userns-remap spec; its data root's
// parent is made searchable by others (the containers' root must reach
// the data root; t.TempDir's directories are 0700).
func remapEngine(t *testing.T, spec string) *engine {
	t.Helper()
	parent := t.TempDir()
	os.Chmod(filepath.Dir(parent), 0o711)
	os.Chmod(parent, 0o711)
	return newEngineAt(t, "", "--userns-remap", spec)
}

// hostUID is the uid, on the host, of a process.
func hostUID(t *testing.T, pid int) int {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(statusField(string(data), "Uid"))
	n, _ := strconv.Atoi(f[0])
	return n
}

// TestUsernsRemap: under --userns-remap USER, a container's root is the
// first id of USER's range in /etc/subuid, on the host; it sees the
// image's files as its own (the layers are idmapped, not copied); what
// it writes belongs to its host ids on disk, and comes back in the
// container's ids in a commit and a copy out; --privileged and the host's
// namespaces need --userns=host, which runs the container unmapped.
func TestUsernsRemap(t *testing.T) {
	u := newRootlessUser(t)
	first := 400000 + (os.Getpid()%1000)*65536
	rng := fmt.Sprintf("%d-%d", first, first+65535)
	if o, err := exec.Command("usermod", "--add-subuids", rng, "--add-subgids", rng, u.name).CombinedOutput(); err != nil {
		t.Fatalf("usermod: %v: %s", err, o)
	}
	e := remapEngine(t, u.name)
	e.importBusybox("busybox:latest")

	id := strings.TrimSpace(e.mustCLI("run", "-d", "--network", "none", "busybox", "sh", "-c",
		"touch /tmp/made; chown 5:6 /tmp/made; sleep 100"))
	insp := e.inspect(id)
	if got := hostUID(t, insp.State.Pid); got != first {
		t.Errorf("the container's root is uid %d on the host, want %d", got, first)
	}
	if out := strings.TrimSpace(e.mustCLI("exec", id, "cat", "/proc/self/uid_map")); strings.Join(strings.Fields(out), " ") != fmt.Sprintf("0 %d 65536", first) {
		t.Errorf("uid_map: %q", out)
	}
	if out := strings.TrimSpace(e.mustCLI("exec", id, "stat", "-c", "%u:%g", "/bin/busybox", "/")); strings.Join(strings.Fields(out), " ") != "0:0 0:0" {
		t.Errorf("the image's files and / inside: %q, want the container's root's", out)
	}
	if out, code := e.cli("exec", id, "id", "-u"); code != 0 || strings.TrimSpace(out) != "0" {
		t.Errorf("exec id -u: %d %q", code, out)
	}
	// on disk, in the upper dir: host ids
	var st syscall.Stat_t
	upper := filepath.Join(e.dataRoot, "containers", id, "upper", "tmp", "made")
	if err := syscall.Stat(upper, &st); err != nil || int(st.Uid) != first+5 || int(st.Gid) != first+6 {
		t.Errorf("%s: uid %d gid %d (%v), want %d:%d", upper, st.Uid, st.Gid, err, first+5, first+6)
	}
	// a copy out and a commit are in the container's ids
	st2, data := e.do("GET", "/containers/"+id+"/archive?path=/tmp/made", nil)
	if st2 != 200 {
		t.Fatalf("archive: %d %s", st2, data)
	}
	hdr, err := tar.NewReader(bytes.NewReader(data)).Next()
	if err != nil || hdr.Uid != 5 || hdr.Gid != 6 {
		t.Errorf("cp out: %+v %v, want 5:6", hdr, err)
	}
	e.mustCLI("commit", id, "remapped:v1")
	if out := strings.TrimSpace(e.mustCLI("run", "--rm", "--network", "none", "--userns", "host", "remapped:v1", "stat", "-c", "%u:%g", "/tmp/made")); out != "5:6" {
		t.Errorf("the committed file, unmapped: %q, want 5:6", out)
	}
	e.mustCLI("rm", "-f", id)

	// refused under the remapping, and fine with --userns=host
	for _, flags := range [][]string{{"--privileged"}, {"--pid", "host"}, {"--network", "host"}, {"--ipc", "host"}, {"--uts", "host"}} {
		out, code := e.cli(append(append([]string{"run", "--rm"}, flags...), "busybox", "true")...)
		if code == 0 || !strings.Contains(out, "--userns=host") {
			t.Errorf("%v under --userns-remap: exit %d: %s", flags, code, out)
		}
	}
	if out := strings.TrimSpace(e.mustCLI("run", "--rm", "--network", "none", "--privileged", "--userns", "host", "busybox", "cat", "/proc/self/uid_map")); strings.Join(strings.Fields(out), " ") != "0 0 4294967295" {
		t.Errorf("--privileged --userns=host: uid_map %q", out)
	}
}

// TestUsernsRemapDefault: --userns-remap default makes Docker's user
// dockremap with a range, when missing (removed again by the test if it
// made it).
func TestUsernsRemapDefault(t *testing.T) {
	if _, err := user.Lookup("dockremap"); err == nil {
		t.Log("dockremap exists already: it is used as it is")
	} else {
		t.Cleanup(func() {
			if o, err := exec.Command("userdel", "dockremap").CombinedOutput(); err != nil {
				t.Errorf("userdel dockremap: %v: %s", err, o)
			}
			exec.Command("groupdel", "dockremap").Run()
			for _, f := range []string{"/etc/subuid", "/etc/subgid"} {
				if data, _ := os.ReadFile(f); strings.Contains(string(data), "dockremap:") {
					t.Errorf("leak: %s still names dockremap", f)
				}
			}
		})
	}
	e := remapEngine(t, "default")
	e.importBusybox("busybox:latest")
	u, err := user.Lookup("dockremap")
	if err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile("/etc/subuid")
	var first string
	for _, l := range strings.Split(string(data), "\n") {
		if p := strings.Split(l, ":"); len(p) == 3 && (p[0] == "dockremap" || p[0] == u.Uid) {
			first = p[1]
			break
		}
	}
	if first == "" {
		t.Fatalf("/etc/subuid gives dockremap no range:\n%s", data)
	}
	if out := strings.TrimSpace(e.mustCLI("run", "--rm", "--network", "none", "busybox", "cat", "/proc/self/uid_map")); strings.Fields(out)[1] != first {
		t.Errorf("uid_map %q, want dockremap's range from %s", out, first)
	}
}
