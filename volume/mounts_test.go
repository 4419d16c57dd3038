package volume

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"minidock/api"
)

// TestPlan: each way of asking for storage, as the engine receives it,
// becomes the mounts Docker would make.
func TestPlan(t *testing.T) {
	host := t.TempDir()
	other := []Mount{
		{Type: api.MountTypeVolume, Name: "shared", Driver: "local", Source: "/v/shared/_data", Destination: "/shared", RW: true, Mode: "z", CopyData: true},
		{Type: api.MountTypeBind, Source: host, Destination: "/host", RW: true, Propagation: api.PropagationRPrivate},
		{Type: api.MountTypeTmpfs, Destination: "/run", RW: true, FromTmpfs: true},
		{Type: api.MountTypeVolume, Name: "over", Driver: "local", Source: "/v/over/_data", Destination: "/data", RW: true},
	}
	got, err := Plan(Request{
		Binds:  []string{"data:/data:ro", "/srv/missing:/srv:rshared", "/cache"},
		Mounts: []api.Mount{{Type: api.MountTypeBind, Source: host, Target: "/etc/conf/", ReadOnly: true}, {Type: api.MountTypeVolume, Target: "/anon", VolumeOptions: &api.VolumeOptions{NoCopy: true}}, {Type: api.MountTypeTmpfs, Target: "/scratch", TmpfsOptions: &api.TmpfsOptions{SizeBytes: 64 << 20, Mode: 0o1770}}},
		Tmpfs:  map[string]string{"/tmp": "size=1m,exec"},
		Volumes: map[string]struct{}{
			"/data": {}, // covered by the bind: no anonymous volume
			"/logs": {},
		},
		VolumesFrom: []string{"other:ro"},
		MountsOf: func(c string) ([]Mount, error) {
			if c != "other" {
				return nil, fmt.Errorf("no such container: %s", c)
			}
			return other, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []Mount{
		{Type: api.MountTypeVolume, Destination: "/anon", Driver: "local", RW: true, Mode: "z"},
		{Type: api.MountTypeVolume, Destination: "/cache", Driver: "local", RW: true, Mode: "z", CopyData: true},
		{Type: api.MountTypeVolume, Destination: "/data", Name: "data", Driver: "local", Mode: "ro", CopyData: true},
		{Type: api.MountTypeBind, Destination: "/etc/conf", Source: host, Propagation: "rprivate"},
		{Type: api.MountTypeBind, Destination: "/host", Source: host, Propagation: "rprivate"},
		{Type: api.MountTypeVolume, Destination: "/logs", Driver: "local", RW: true, CopyData: true},
		{Type: api.MountTypeTmpfs, Destination: "/scratch", RW: true, TmpfsData: "mode=1770,size=64m"},
		{Type: api.MountTypeVolume, Destination: "/shared", Name: "shared", Driver: "local", Source: "/v/shared/_data"},
		{Type: api.MountTypeBind, Destination: "/srv", Source: "/srv/missing", RW: true, Mode: "rshared", Propagation: "rshared", CreateSource: true},
		{Type: api.MountTypeTmpfs, Destination: "/tmp", RW: true, TmpfsData: "size=1m,exec", FromTmpfs: true},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Plan:\n got %+v\nwant %+v", got, want)
	}

	// inspect's Mounts: --tmpfs ones are not listed, as Docker
	points := MountPoints(got)
	if len(points) != len(want)-1 || points[0].Destination != "/anon" || points[len(points)-1].Destination != "/srv" {
		t.Errorf("MountPoints = %+v", points)
	}
	if p := points[2]; p != (api.MountPoint{Type: "volume", Name: "data", Destination: "/data", Driver: "local", Mode: "ro"}) {
		t.Errorf("MountPoint of -v data:/data:ro = %+v", p)
	}
}

// TestPlanBadInput: every bad request is refused with Docker's words
// where Docker has them, as ErrInvalid (a 400), before anything exists.
func TestPlanBadInput(t *testing.T) {
	dir := t.TempDir()
	outside := t.TempDir()
	if err := os.Symlink(outside+"/gone", dir+"/link"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		req  Request
		want string
	}{
		{"bind source through a dangling symlink", Request{Binds: []string{dir + "/link/sub:/d"}}, "a symlink to " + outside + "/gone, which does not exist"},
		{"bind source a dangling symlink", Request{Mounts: []api.Mount{{Type: "bind", Source: dir + "/link", Target: "/d", BindOptions: &api.BindOptions{CreateMountpoint: true}}}}, "a symlink to " + outside + "/gone, which does not exist"},
		{"relative host path", Request{Binds: []string{"data/dir:/d"}}, `create data/dir: "data/dir" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`},
		{"relative host path ./", Request{Binds: []string{"./dir:/d"}}, `"./dir" includes invalid characters`},
		{"volume name with ..", Request{Binds: []string{"../../etc:/d"}}, `"../../etc" includes invalid characters`},
		{"volume name with /", Request{Mounts: []api.Mount{{Type: "volume", Source: "a/b", Target: "/d"}}}, `"a/b" includes invalid characters`},
		{"one-letter volume name", Request{Binds: []string{"a:/d"}}, "volume name is too short"},
		{"bind target not absolute", Request{Binds: []string{dir + ":rel"}}, "invalid mount path: 'rel' mount path must be absolute"},
		{"volume target not absolute", Request{Mounts: []api.Mount{{Type: "volume", Source: "vol", Target: "rel"}}}, "invalid mount path: 'rel' mount path must be absolute"},
		{"tmpfs target not absolute", Request{Tmpfs: map[string]string{"rel": ""}}, "invalid mount path: 'rel' mount path must be absolute"},
		{"anonymous volume not absolute", Request{Volumes: map[string]struct{}{"rel": {}}}, "invalid mount path: 'rel' mount path must be absolute"},
		{"bind on /", Request{Binds: []string{dir + ":/"}}, "invalid specification: destination can't be '/'"},
		{"volume on /", Request{Mounts: []api.Mount{{Type: "volume", Target: "/"}}}, "destination can't be '/'"},
		{"tmpfs on /", Request{Tmpfs: map[string]string{"/": ""}}, "destination can't be '/'"},
		{"anonymous volume on /", Request{Volumes: map[string]struct{}{"/": {}}}, "destination can't be '/'"},
		{"tmpfs size", Request{Tmpfs: map[string]string{"/t": "size=abc"}}, `invalid tmpfs options for /t: invalid tmpfs size "abc"`},
		{"tmpfs size unit", Request{Tmpfs: map[string]string{"/t": "size=64mb"}}, `invalid tmpfs size "64mb"`},
		{"tmpfs mode", Request{Tmpfs: map[string]string{"/t": "mode=999"}}, `invalid tmpfs mode "999"`},
		{"tmpfs option", Request{Tmpfs: map[string]string{"/t": "bogus"}}, `unknown tmpfs option "bogus"`},
		{"two binds on one target", Request{Binds: []string{dir + ":/d", "vol:/d/"}}, "Duplicate mount point: /d"},
		{"bind and mount on one target", Request{Binds: []string{dir + ":/d"}, Mounts: []api.Mount{{Type: "tmpfs", Target: "/d"}}}, "Duplicate mount point: /d"},
		{"bind and tmpfs on one target", Request{Binds: []string{dir + ":/d"}, Tmpfs: map[string]string{"/d": ""}}, "Duplicate mount point: /d"},
		{"two mounts on one target", Request{Mounts: []api.Mount{{Type: "volume", Target: "/d"}, {Type: "tmpfs", Target: "/d"}}}, "Duplicate mount point: /d"},
		{"--mount of a missing host path", Request{Mounts: []api.Mount{{Type: "bind", Source: dir + "/missing", Target: "/d"}}}, `invalid mount config for type "bind": bind source path does not exist: ` + dir + "/missing"},
		{"bind with nocopy", Request{Binds: []string{dir + ":/d:nocopy"}}, "field VolumeOptions must not be specified"},
		{"bad mode", Request{Binds: []string{"vol:/d:rx"}}, "invalid mode: rx"},
		{"bad propagation", Request{Mounts: []api.Mount{{Type: "bind", Source: dir, Target: "/d", BindOptions: &api.BindOptions{Propagation: "up"}}}}, "invalid propagation mode: up"},
		{"tmpfs with a source", Request{Mounts: []api.Mount{{Type: "tmpfs", Source: "x", Target: "/d"}}}, "field Source must not be specified"},
		{"unknown type", Request{Mounts: []api.Mount{{Type: "image", Source: "busybox", Target: "/d"}}}, "mount type unknown"},
		{"subpath", Request{Mounts: []api.Mount{{Type: "volume", Source: "vol", Target: "/d", VolumeOptions: &api.VolumeOptions{Subpath: "x"}}}}, "volume subpaths are not supported"},
		{"other driver", Request{Mounts: []api.Mount{{Type: "volume", Source: "vol", Target: "/d", VolumeOptions: &api.VolumeOptions{DriverConfig: &api.VolumeDriver{Name: "nfs"}}}}}, `volume driver "nfs" is not supported`},
		{"bad volume option", Request{Mounts: []api.Mount{{Type: "volume", Source: "vol", Target: "/d", VolumeOptions: &api.VolumeOptions{DriverConfig: &api.VolumeDriver{Options: map[string]string{"colour": "red"}}}}}}, `invalid option: "colour"`},
		{"forced recursive ro", Request{Mounts: []api.Mount{{Type: "bind", Source: dir, Target: "/d", ReadOnly: true, BindOptions: &api.BindOptions{ReadOnlyForceRecursive: true}}}}, "not supported"},
		{"bad volumes-from mode", Request{VolumesFrom: []string{"c:rshared"}}, "invalid mode: rshared"},
		{"volumes-from nothing", Request{VolumesFrom: []string{""}}, "cannot be an empty string"},
	} {
		_, err := Plan(c.req)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: Plan = %v, want an error with %q", c.name, err, c.want)
			continue
		}
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v is not ErrInvalid", c.name, err)
		}
	}
	// what the engine's lookup says of an unknown container is returned
	// as it is
	notFound := errors.New("No such container: ghost")
	_, err := Plan(Request{VolumesFrom: []string{"ghost"}, MountsOf: func(string) ([]Mount, error) { return nil, notFound }})
	if err != notFound {
		t.Errorf("volumes-from an unknown container: %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("Plan created %v", entries)
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("Plan created %v", entries)
	}
}

// TestVolumesFrom: another container's mounts, read-only with :ro, never
// copied into, without its --tmpfs mounts.
func TestVolumesFrom(t *testing.T) {
	theirs := []Mount{
		{Type: "volume", Name: "v1", Source: "/x/v1/_data", Destination: "/a", RW: true, Mode: "z", CopyData: true},
		{Type: "bind", Source: "/srv", Destination: "/b", RW: false, Propagation: "rslave"},
		{Type: "tmpfs", Destination: "/c", RW: true, TmpfsData: "size=1m"},
		{Type: "tmpfs", Destination: "/d", RW: true, FromTmpfs: true},
	}
	rw := VolumesFrom(theirs, "rw")
	want := []Mount{
		{Type: "volume", Name: "v1", Source: "/x/v1/_data", Destination: "/a", RW: true},
		{Type: "bind", Source: "/srv", Destination: "/b", RW: false, Propagation: "rslave"},
		{Type: "tmpfs", Destination: "/c", RW: true, TmpfsData: "size=1m"},
	}
	if !reflect.DeepEqual(rw, want) {
		t.Errorf("VolumesFrom rw:\n got %+v\nwant %+v", rw, want)
	}
	for _, m := range VolumesFrom(theirs, "ro,z") {
		if m.RW {
			t.Errorf("VolumesFrom ro: %s is read-write", m)
		}
	}
}

// TestSpec: the config.json mounts, in an order the runtime can follow,
// replacing the defaults they cover.
func TestSpec(t *testing.T) {
	defaults := []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc"},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs"},
		{Destination: "/dev/shm", Type: "tmpfs", Source: "shm"},
		{Destination: "/etc/hosts", Type: "bind", Source: "/c/hosts", Options: []string{"rbind", "ro"}},
	}
	mounts := []Mount{
		{Type: "bind", Source: "/h/deep", Destination: "/a/b/c", RW: true, Propagation: "rprivate"},
		{Type: "volume", Name: "v", Source: "/v/v/_data", Destination: "/a", RW: false},
		{Type: "tmpfs", Destination: "/a/b", RW: true, TmpfsData: "size=1m,exec,noexec,exec,mode=700"},
		{Type: "bind", Source: "/h/hosts", Destination: "/etc/hosts", RW: true, NonRecursive: true, Propagation: "rprivate"},
	}
	got, prop, err := Spec(defaults, mounts)
	if err != nil {
		t.Fatal(err)
	}
	want := []specs.Mount{
		defaults[0], defaults[1], defaults[2],
		{Destination: "/a", Type: "bind", Source: "/v/v/_data", Options: []string{"rbind", "ro"}},
		{Destination: "/a/b", Type: "tmpfs", Source: "tmpfs", Options: []string{"exec", "nosuid", "nodev", "rprivate", "size=1m", "mode=700"}},
		{Destination: "/etc/hosts", Type: "bind", Source: "/h/hosts", Options: []string{"bind", "rprivate"}},
		{Destination: "/a/b/c", Type: "bind", Source: "/h/deep", Options: []string{"rbind", "rprivate"}},
	}
	if !reflect.DeepEqual(got, want) || prop != "" {
		t.Errorf("Spec:\n got %+v %q\nwant %+v", got, prop, want)
	}
	// a /dev of the container's own drops the defaults below /dev
	got, _, _ = Spec(defaults, []Mount{{Type: "tmpfs", Destination: "/dev"}})
	if len(got) != 3 || got[2].Destination != "/dev" || got[1].Destination != "/etc/hosts" {
		t.Errorf("Spec with /dev: %+v", got)
	}
	// a volume not set up has nothing to bind
	if _, _, err := Spec(nil, []Mount{{Type: "volume", Destination: "/x"}}); err == nil {
		t.Error("Spec of a volume without a source accepted")
	}
	// a shared bind of a private mount shares nothing: Docker's error
	dir := t.TempDir()
	_, _, err = Spec(nil, []Mount{{Type: "bind", Source: dir, Destination: "/x", Propagation: "rshared"}})
	if err == nil || !strings.Contains(err.Error(), "path "+dir+" is mounted on ") || !strings.Contains(err.Error(), "but it is not a shared mount") {
		t.Errorf("rshared bind of a private mount: %v", err)
	}
}

func TestTmpfsData(t *testing.T) {
	for _, c := range []struct {
		o    *api.TmpfsOptions
		ro   bool
		want string
	}{
		{nil, false, ""},
		{nil, true, "ro"},
		{&api.TmpfsOptions{SizeBytes: 3 << 30}, false, "size=3g"},
		{&api.TmpfsOptions{SizeBytes: 1536 << 10}, false, "size=1536k"},
		{&api.TmpfsOptions{SizeBytes: 1000}, false, "size=1000"},
		{&api.TmpfsOptions{Mode: 0o1777, Options: [][]string{{"exec"}}}, true, "ro,mode=1777,exec"},
	} {
		if got := tmpfsData(c.o, c.ro); got != c.want {
			t.Errorf("tmpfsData(%+v, %v) = %q, want %q", c.o, c.ro, got, c.want)
		}
		if err := validateTmpfsData(c.want); err != nil {
			t.Errorf("validateTmpfsData(%q): %v", c.want, err)
		}
	}
	for _, ok := range []string{"size=50%", "size=1G", "nr_inodes=1k,uid=1000,gid=0,mode=0755,noswap,huge=within_size"} {
		if err := validateTmpfsData(ok); err != nil {
			t.Errorf("validateTmpfsData(%q): %v", ok, err)
		}
	}
}

// TestMountFor: the mount that holds a container path, for docker cp.
func TestMountFor(t *testing.T) {
	mounts := []Mount{
		{Type: "volume", Name: "a", Source: "/v/a/_data", Destination: "/data"},
		{Type: "bind", Source: "/srv", Destination: "/data/deep"},
		{Type: "tmpfs", Destination: "/tmp"},
	}
	for p, want := range map[string][2]string{
		"/data":            {"/data", "."},
		"/data/x/y":        {"/data", "x/y"},
		"data/../data/f":   {"/data", "f"},
		"/data/deep":       {"/data/deep", "."},
		"/data/deep/f":     {"/data/deep", "f"},
		"/data/deeper":     {"/data", "deeper"},
		"/tmp/sock":        {"/tmp", "sock"},
		"/etc/passwd":      {"", ""},
		"/datafile":        {"", ""},
		"/../../data/../x": {"", ""},
	} {
		m, rel, ok := MountFor(mounts, p)
		if ok != (want[0] != "") || m.Destination != want[0] || rel != want[1] {
			t.Errorf("MountFor(%q) = %q %q %v, want %q", p, m.Destination, rel, ok, want)
		}
	}
}
