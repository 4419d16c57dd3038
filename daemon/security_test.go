package daemon

import (
	"archive/tar"
	"bytes"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"minidock/api"
	"minidock/internal/errdefs"
	"minidock/seccomp"
)

func TestContainerCaps(t *testing.T) {
	held := allHeldCaps()
	without := func(list []string, drop ...string) []string {
		return slices.DeleteFunc(slices.Clone(list), func(c string) bool { return slices.Contains(drop, c) })
	}
	for _, c := range []struct {
		name string
		hc   api.Confinement
		want []string
	}{
		{"defaults", api.Confinement{}, defaultCaps},
		{"drop two, any spelling", api.Confinement{CapDrop: []string{"chown", "CAP_KILL"}}, without(defaultCaps, "CAP_CHOWN", "CAP_KILL")},
		{"add one", api.Confinement{CapAdd: []string{"net_admin"}}, append(slices.Clone(defaultCaps), "CAP_NET_ADMIN")},
		{"drop ALL, add one", api.Confinement{CapDrop: []string{"ALL"}, CapAdd: []string{"NET_ADMIN"}}, []string{"CAP_NET_ADMIN"}},
		{"drop ALL", api.Confinement{CapDrop: []string{"all"}}, []string{}},
		{"add ALL, drop one", api.Confinement{CapAdd: []string{"ALL"}, CapDrop: []string{"SYS_ADMIN"}}, without(held, "CAP_SYS_ADMIN")},
		{"privileged", api.Confinement{Privileged: true, CapDrop: []string{"ALL"}}, held},
	} {
		got, err := containerCaps(&api.HostConfig{Confinement: c.hc})
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, %v; want %v", c.name, got, err, c.want)
		}
	}
	if _, err := containerCaps(&api.HostConfig{Confinement: api.Confinement{CapAdd: []string{"CAP_FLY"}}}); err == nil ||
		errdefs.KindOf(err) != errdefs.InvalidParameter || !strings.Contains(err.Error(), `CapAdd: unknown capability "CAP_FLY"`) {
		t.Errorf("unknown capability: %v", err)
	}
}

func TestParseSecurityOpts(t *testing.T) {
	o, err := parseSecurityOpts([]string{"no-new-privileges", "seccomp=unconfined", "systempaths=unconfined", "apparmor=unconfined", "label=disable"})
	if err != nil || !o.noNewPrivileges || o.seccomp != "unconfined" || !o.systemPaths {
		t.Errorf("%+v, %v", o, err)
	}
	if o, _ := parseSecurityOpts([]string{"no-new-privileges:false"}); o.noNewPrivileges {
		t.Errorf("no-new-privileges:false set it")
	}
	for _, bad := range []string{"no-new-privileges=maybe", "apparmor=docker-default", "label=type:x", "systempaths=open", "fly=1", "nonsense"} {
		if _, err := parseSecurityOpts([]string{bad}); err == nil || !strings.Contains(err.Error(), "SecurityOpt") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// rulesFor lists the syscall names of a profile's rules with an action.
func rulesFor(p *specs.LinuxSeccomp, action specs.LinuxSeccompAction) []string {
	var out []string
	for _, r := range p.Syscalls {
		if r.Action == action {
			out = append(out, r.Names...)
		}
	}
	return out
}

// TestSeccompProfileConditions: Docker's profile, resolved for the
// container's capabilities: mount and unshare only with CAP_SYS_ADMIN,
// clone3 answered ENOSYS without it (so that libc falls back to clone,
// whose flags the filter can see), ptrace-family calls with
// CAP_SYS_PTRACE; privileged or unconfined: no profile.
func TestSeccompProfileConditions(t *testing.T) {
	plain, err := seccompProfile(&api.HostConfig{}, securityOpts{}, defaultCaps)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := seccomp.Compile(plain); err != nil {
		t.Fatalf("Docker's profile does not compile: %v", err)
	}
	if plain.DefaultAction != specs.ActErrno {
		t.Errorf("default action %s", plain.DefaultAction)
	}
	allowed := rulesFor(plain, specs.ActAllow)
	for _, name := range []string{"read", "execve", "clone", "capset"} {
		if !slices.Contains(allowed, name) {
			t.Errorf("%s not allowed by default", name)
		}
	}
	for _, name := range []string{"mount", "unshare", "setns", "keyctl", "add_key", "swapoff", "settimeofday", "delete_module", "reboot", "bpf"} {
		if slices.Contains(allowed, name) {
			t.Errorf("%s allowed without its capability", name)
		}
	}
	enosys := false
	for _, r := range plain.Syscalls {
		if slices.Contains(r.Names, "clone3") && r.Action == specs.ActErrno && r.ErrnoRet != nil && *r.ErrnoRet == 38 {
			enosys = true
		}
	}
	if !enosys {
		t.Error("clone3 does not get ENOSYS without CAP_SYS_ADMIN")
	}
	admin, err := seccompProfile(&api.HostConfig{}, securityOpts{}, append(slices.Clone(defaultCaps), "CAP_SYS_ADMIN"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"mount", "unshare", "setns", "clone3"} {
		if !slices.Contains(rulesFor(admin, specs.ActAllow), name) {
			t.Errorf("%s not allowed with CAP_SYS_ADMIN", name)
		}
	}
	if p, _ := seccompProfile(&api.HostConfig{Confinement: api.Confinement{Privileged: true}}, securityOpts{}, nil); p != nil {
		t.Error("a privileged container has a profile")
	}
	if p, _ := seccompProfile(&api.HostConfig{}, securityOpts{seccomp: "unconfined"}, nil); p != nil {
		t.Error("seccomp=unconfined has a profile")
	}
	for _, bad := range []string{`{"defaultAction":`, `{"defaultAction":"SCMP_ACT_FLY"}`, `{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[{"names":["read"],"action":"SCMP_ACT_ALLOW","args":[{"index":9,"op":"SCMP_CMP_EQ"}]}]}`} {
		hc := &api.HostConfig{Confinement: api.Confinement{SecurityOpt: []string{"seccomp=" + bad}}}
		if err := (&Daemon{}).checkConfinement(&api.ContainerConfig{}, hc); err == nil || !strings.Contains(err.Error(), "seccomp profile") {
			t.Errorf("%s: %v", bad, err)
		}
	}
}

func TestCheckUser(t *testing.T) {
	for _, ok := range []string{"", "0", "65534", "2147483647", "nobody", "nobody:nogroup", "1000:1000", "www-data:2147483647"} {
		if err := checkUser("User", ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"4294967295", "65534:4294967295", "2147483648", "-1", "0:-5", "99999999999999999999", "1000:"} {
		if err := checkUser("User", bad); err == nil || errdefs.KindOf(err) != errdefs.InvalidParameter {
			t.Errorf("%q accepted: %v", bad, err)
		}
	}
}

func TestIDShift(t *testing.T) {
	m := &IDMapping{UIDs: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 1000}, {ContainerID: 1000, HostID: 300000, Size: 10}},
		GIDs: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 200000, Size: 65536}}}
	if hostID(m.UIDs, 0) != 100000 || hostID(m.UIDs, 1005) != 300005 || hostID(m.UIDs, 5000) != 5000 {
		t.Error("hostID")
	}
	if containerID(m.UIDs, 100999) != 999 || containerID(m.UIDs, 300009) != 1009 || containerID(m.UIDs, 0) != 0 {
		t.Error("containerID")
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "f", Uid: 100001, Gid: 200002, Uname: "x", Mode: 0o644, Size: 2})
	tw.Write([]byte("hi"))
	tw.Close()
	tr := tar.NewReader(m.toContainerIDs(&buf))
	hdr, err := tr.Next()
	if err != nil || hdr.Uid != 1 || hdr.Gid != 2 || hdr.Uname != "" {
		t.Fatalf("shifted header %+v, %v", hdr, err)
	}
	if data, _ := io.ReadAll(tr); string(data) != "hi" {
		t.Errorf("content %q", data)
	}
	if laid := laidEndToEnd([]specs.LinuxIDMapping{{HostID: 100000, Size: 10}, {HostID: 5000, Size: 3}}); laid[1].ContainerID != 10 {
		t.Errorf("laidEndToEnd: %+v", laid)
	}
}

// BenchmarkDefaultSeccompProfile: Docker's profile built and resolved
// (moby/profiles, at every create and start), and compiled to BPF (the
// runtime, at every create), side by side.
func BenchmarkDefaultSeccompProfile(b *testing.B) {
	var build, compile time.Duration
	for b.Loop() {
		t0 := time.Now()
		p, err := seccompProfile(&api.HostConfig{}, securityOpts{}, defaultCaps)
		if err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if _, err := seccomp.Compile(p); err != nil {
			b.Fatal(err)
		}
		build, compile = build+t1.Sub(t0), compile+time.Since(t1)
	}
	b.ReportMetric(float64(build.Microseconds())/float64(b.N), "build-µs")
	b.ReportMetric(float64(compile.Microseconds())/float64(b.N), "compile-µs")
}
