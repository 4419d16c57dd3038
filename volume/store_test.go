package volume

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"minidock/api"
)

func openStore(t *testing.T) (*Store, string) {
	t.Helper()
	root := filepath.Join(t.TempDir(), "volumes")
	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	return s, root
}

func mustCreate(t *testing.T, s *Store, o api.VolumeCreateOptions) api.Volume {
	t.Helper()
	v, err := s.Create(o)
	if err != nil {
		t.Fatalf("Create(%+v): %v", o, err)
	}
	return v
}

func names(vs []api.Volume) []string {
	out := []string{}
	for _, v := range vs {
		out = append(out, v.Name)
	}
	return out
}

// TestStoreRoundTrip: create, inspect, list, reopen, remove, each as the
// Engine API shows it, and the files on disk in Docker's layout.
func TestStoreRoundTrip(t *testing.T) {
	s, root := openStore(t)
	v := mustCreate(t, s, api.VolumeCreateOptions{Name: "data", Labels: map[string]string{"app": "db"}})
	if v.Name != "data" || v.Driver != "local" || v.Scope != "local" || v.Mountpoint != filepath.Join(root, "data", "_data") ||
		!reflect.DeepEqual(v.Labels, map[string]string{"app": "db"}) || v.Options != nil {
		t.Errorf("created %+v", v)
	}
	if _, err := time.Parse(time.RFC3339, v.CreatedAt); err != nil {
		t.Errorf("CreatedAt %q: %v", v.CreatedAt, err)
	}
	if fi, err := os.Stat(v.Mountpoint); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o755 {
		t.Errorf("_data: %v %v", fi, err)
	}
	var meta metadata
	data, err := os.ReadFile(filepath.Join(root, "data", metaFile))
	if err != nil || json.Unmarshal(data, &meta) != nil || meta.Name != "data" || meta.Labels["app"] != "db" {
		t.Errorf("%s: %s %v", metaFile, data, err)
	}

	// the same name again is the same volume, unchanged (Docker)
	again := mustCreate(t, s, api.VolumeCreateOptions{Name: "data", Labels: map[string]string{"other": "x"}})
	if !reflect.DeepEqual(again, v) {
		t.Errorf("create again: %+v, want %+v", again, v)
	}
	// no name: an anonymous volume
	anon := mustCreate(t, s, api.VolumeCreateOptions{})
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(anon.Name) || !reflect.DeepEqual(anon.Labels, map[string]string{api.AnonymousVolumeLabel: ""}) {
		t.Errorf("anonymous volume %+v", anon)
	}

	got, err := s.Get("data")
	if err != nil || got.UsageData == nil || got.UsageData.RefCount != 0 || got.Mountpoint != v.Mountpoint {
		t.Errorf("Get: %+v %v", got, err)
	}
	if _, err := s.Get("nope"); !errors.Is(err, ErrNotFound) || err.Error() != "get nope: no such volume" {
		t.Errorf("Get of a missing volume: %v", err)
	}

	// what a new store (a restarted daemon) reads is what was written
	before := s.List(ListFilter{})
	s2, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	if after := s2.List(ListFilter{}); !reflect.DeepEqual(after, before) || len(after) != 2 {
		t.Errorf("after reopening:\n %+v\nwant %+v", after, before)
	}

	if err := s2.Remove("data", false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "data")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("removed volume's directory: %v", err)
	}
	if err := s2.Remove("data", false); !errors.Is(err, ErrNotFound) {
		t.Errorf("remove again: %v", err)
	}
	if err := s2.Remove("data", true); err != nil {
		t.Errorf("remove -f of a missing volume: %v", err)
	}
	if got := names(s2.List(ListFilter{})); !reflect.DeepEqual(got, []string{anon.Name}) {
		t.Errorf("left: %v", got)
	}
	assertOnlyVolumes(t, root, anon.Name)
}

// assertOnlyVolumes checks that root holds these volume directories and
// nothing else (no half-made or half-removed one).
func assertOnlyVolumes(t *testing.T, root string, want ...string) {
	t.Helper()
	entries, _ := os.ReadDir(root)
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("%s holds %v, want %v", root, got, want)
	}
}

// TestStoreBadInput: bad names, drivers and options are refused as
// ErrInvalid, in Docker's words, and nothing is created.
func TestStoreBadInput(t *testing.T) {
	s, root := openStore(t)
	dir := t.TempDir()
	for _, c := range []struct {
		o    api.VolumeCreateOptions
		want string
	}{
		{api.VolumeCreateOptions{Name: "a"}, "create a: volume name is too short, names should be at least two alphanumeric characters"},
		{api.VolumeCreateOptions{Name: "a/b"}, `"a/b" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path`},
		{api.VolumeCreateOptions{Name: ".."}, `".." includes invalid characters`},
		{api.VolumeCreateOptions{Name: "../etc"}, `"../etc" includes invalid characters`},
		{api.VolumeCreateOptions{Name: ".hidden"}, `".hidden" includes invalid characters`},
		{api.VolumeCreateOptions{Name: "-x"}, `"-x" includes invalid characters`},
		{api.VolumeCreateOptions{Name: "sp ace"}, `"sp ace" includes invalid characters`},
		{api.VolumeCreateOptions{Name: strings.Repeat("x", 256)}, "volume name is too long"},
		{api.VolumeCreateOptions{Name: "vv", Driver: "nfs"}, `create vv: volume driver "nfs" is not supported`},
		{api.VolumeCreateOptions{Name: "vv", DriverOpts: map[string]string{"colour": "red"}}, `invalid option: "colour"`},
		{api.VolumeCreateOptions{Name: "vv", DriverOpts: map[string]string{"size": "1g"}}, "quota size requested but no quota support"},
		{api.VolumeCreateOptions{Name: "vv", DriverOpts: map[string]string{"type": "tmpfs"}}, `missing required option: "device"`},
		{api.VolumeCreateOptions{Name: "vv", DriverOpts: map[string]string{"device": "tmpfs"}}, `missing required option: "type"`},
		{api.VolumeCreateOptions{Name: "vv", DriverOpts: map[string]string{"o": "size=1m"}}, `missing required option: "device"`},
		{api.VolumeCreateOptions{Name: "vv", DriverOpts: map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "size=lots"}}, `invalid option "o": invalid tmpfs size "lots"`},
		{api.VolumeCreateOptions{Name: "vv", DriverOpts: map[string]string{"type": "none", "device": "rel/dir", "o": "bind"}}, "a bind volume's device must be an absolute host path"},
		{api.VolumeCreateOptions{Name: "vv", DriverOpts: map[string]string{"type": "none", "device": dir + "/missing", "o": "bind"}}, "no such file or directory"},
	} {
		_, err := s.Create(c.o)
		if err == nil || !strings.Contains(err.Error(), c.want) || !errors.Is(err, ErrInvalid) {
			t.Errorf("Create(%+v) = %v, want ErrInvalid with %q", c.o, err, c.want)
		}
	}
	assertOnlyVolumes(t, root)
	// valid options
	mustCreate(t, s, api.VolumeCreateOptions{Name: "mem", DriverOpts: map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "size=1m,uid=1000"}})
	mustCreate(t, s, api.VolumeCreateOptions{Name: "host", DriverOpts: map[string]string{"type": "none", "device": dir, "o": "bind,ro"}})
	mustCreate(t, s, api.VolumeCreateOptions{Name: "x..y"}) // a plain directory name
	assertOnlyVolumes(t, root, "host", "mem", "x..y")
}

// TestStoreInUse: a volume a container uses (running or not) is not
// removed, not even with force, not pruned, and not dangling.
func TestStoreInUse(t *testing.T) {
	s, _ := openStore(t)
	mustCreate(t, s, api.VolumeCreateOptions{Name: "data"})
	mustCreate(t, s, api.VolumeCreateOptions{Name: "idle"})
	if err := s.Acquire("data", "c1"); err != nil {
		t.Fatal(err)
	}
	s.Acquire("data", "c2")
	s.Acquire("data", "c1") // once per container
	if err := s.Acquire("ghost", "c1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Acquire of a missing volume: %v", err)
	}
	for _, force := range []bool{false, true} {
		err := s.Remove("data", force)
		if !errors.Is(err, ErrInUse) || err.Error() != "remove data: volume is in use - [c1, c2]" {
			t.Errorf("Remove(force=%v) of a volume in use: %v", force, err)
		}
	}
	if v, _ := s.Get("data"); v.UsageData.RefCount != 2 {
		t.Errorf("RefCount %d", v.UsageData.RefCount)
	}
	yes, no := true, false
	if got := names(s.List(ListFilter{Dangling: &yes})); !reflect.DeepEqual(got, []string{"idle"}) {
		t.Errorf("dangling: %v", got)
	}
	if got := names(s.List(ListFilter{Dangling: &no})); !reflect.DeepEqual(got, []string{"data"}) {
		t.Errorf("not dangling: %v", got)
	}
	rep, err := s.Prune(PruneFilter{All: true})
	if err != nil || !reflect.DeepEqual(rep.VolumesDeleted, []string{"idle"}) {
		t.Errorf("prune: %+v %v", rep, err)
	}
	s.Release("data", "c1")
	if err := s.Remove("data", false); !errors.Is(err, ErrInUse) {
		t.Errorf("Remove with one user left: %v", err)
	}
	s.Release("data", "c2")
	s.Release("data", "c2") // twice: nothing
	if err := s.Remove("data", false); err != nil {
		t.Errorf("Remove once released: %v", err)
	}
}

// TestStorePrune: from API 1.42 prune removes unused anonymous volumes
// only, all unused ones with All; label filters; volumes with driver
// options are never pruned.
func TestStorePrune(t *testing.T) {
	s, root := openStore(t)
	anonUnused := mustCreate(t, s, api.VolumeCreateOptions{})
	anonUsed := mustCreate(t, s, api.VolumeCreateOptions{})
	s.Acquire(anonUsed.Name, "c1")
	mustCreate(t, s, api.VolumeCreateOptions{Name: "named"})
	mustCreate(t, s, api.VolumeCreateOptions{Name: "keep", Labels: map[string]string{"keep": "yes"}})
	mustCreate(t, s, api.VolumeCreateOptions{Name: "mem", DriverOpts: map[string]string{"type": "tmpfs", "device": "tmpfs"}})
	if err := os.WriteFile(filepath.Join(anonUnused.Mountpoint, "f"), make([]byte, 64<<10), 0o644); err != nil {
		t.Fatal(err)
	}

	rep, err := s.Prune(PruneFilter{})
	if err != nil || !reflect.DeepEqual(rep.VolumesDeleted, []string{anonUnused.Name}) || rep.SpaceReclaimed < 64<<10 {
		t.Errorf("prune (anonymous only): %+v %v", rep, err)
	}
	rep, err = s.Prune(PruneFilter{All: true, NotLabels: []string{"keep=yes"}})
	if err != nil || !reflect.DeepEqual(rep.VolumesDeleted, []string{"named"}) {
		t.Errorf("prune all but keep=yes: %+v %v", rep, err)
	}
	rep, err = s.Prune(PruneFilter{All: true, Labels: []string{"keep"}})
	if err != nil || !reflect.DeepEqual(rep.VolumesDeleted, []string{"keep"}) {
		t.Errorf("prune label keep: %+v %v", rep, err)
	}
	if got := names(s.List(ListFilter{})); len(got) != 2 || !contains(got, "mem") || !contains(got, anonUsed.Name) {
		t.Errorf("left after prunes: %v", got)
	}
	assertOnlyVolumes(t, root, anonUsed.Name, "mem")
}

// TestStoreFilters: list filters as docker volume ls -f gives them.
func TestStoreFilters(t *testing.T) {
	s, _ := openStore(t)
	mustCreate(t, s, api.VolumeCreateOptions{Name: "mydata1", Labels: map[string]string{"env": "prod", "tier": ""}})
	mustCreate(t, s, api.VolumeCreateOptions{Name: "data2", Labels: map[string]string{"env": "dev"}})
	mustCreate(t, s, api.VolumeCreateOptions{Name: "logs"})
	for _, c := range []struct {
		f    map[string][]string
		want []string
	}{
		{nil, []string{"data2", "logs", "mydata1"}},
		{map[string][]string{"name": {"data"}}, []string{"data2", "mydata1"}},
		{map[string][]string{"name": {"^data", "^logs$"}}, []string{"data2", "logs"}},
		{map[string][]string{"label": {"env"}}, []string{"data2", "mydata1"}},
		{map[string][]string{"label": {"env=prod"}}, []string{"mydata1"}},
		{map[string][]string{"label": {"env", "tier"}}, []string{"mydata1"}},
		{map[string][]string{"driver": {"local"}, "dangling": {"1"}}, []string{"data2", "logs", "mydata1"}},
		{map[string][]string{"driver": {"nfs"}}, []string{}},
		{map[string][]string{"dangling": {"false"}}, []string{}},
	} {
		f, err := ParseListFilter(c.f)
		if err != nil {
			t.Errorf("ParseListFilter(%v): %v", c.f, err)
			continue
		}
		if got := names(s.List(f)); !reflect.DeepEqual(got, c.want) {
			t.Errorf("List(%v) = %v, want %v", c.f, got, c.want)
		}
	}
	for f, want := range map[string]map[string][]string{
		"invalid filter 'colour'":         {"colour": {"red"}},
		"invalid filter 'dangling=maybe'": {"dangling": {"maybe"}},
		"invalid filter 'name=(('":        {"name": {"(("}},
	} {
		if _, err := ParseListFilter(want); err == nil || !strings.Contains(err.Error(), f) || !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseListFilter(%v) = %v, want %q", want, err, f)
		}
	}
	pf, err := ParsePruneFilter(map[string][]string{"all": {"true"}, "label!": {"a"}})
	if err != nil || !pf.All || !reflect.DeepEqual(pf.NotLabels, []string{"a"}) {
		t.Errorf("ParsePruneFilter: %+v %v", pf, err)
	}
	for _, bad := range []map[string][]string{{"all": {"yes"}}, {"all": {"1", "0"}}, {"dangling": {"1"}}} {
		if _, err := ParsePruneFilter(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParsePruneFilter(%v) = %v", bad, err)
		}
	}
}

// TestStoreAtomic: a volume appears whole or not at all. What a crash
// leaves (a half-made or half-removed directory) is cleaned up by Open;
// a directory that is not a volume is left alone and not overwritten.
func TestStoreAtomic(t *testing.T) {
	s, root := openStore(t)
	mustCreate(t, s, api.VolumeCreateOptions{Name: "real"})
	// a crash half-way through a create and a remove
	for _, d := range []string{creatingPrefix + "123/_data", removingPrefix + "456/_data/deep"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(root, creatingPrefix+"123", metaFile), []byte(`{"Name":"hal`), 0o600)
	// someone's directory, and a volume made by hand (a _data alone)
	os.MkdirAll(filepath.Join(root, "junk", "stuff"), 0o755)
	os.MkdirAll(filepath.Join(root, "byhand", "_data"), 0o755)

	s, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	if got := names(s.List(ListFilter{})); !reflect.DeepEqual(got, []string{"byhand", "real"}) {
		t.Errorf("volumes after the crash: %v", got)
	}
	assertOnlyVolumes(t, root, "byhand", "junk", "real")

	_, err = s.Create(api.VolumeCreateOptions{Name: "junk"})
	if err == nil || !strings.Contains(err.Error(), "exists and is not a volume") {
		t.Errorf("create over a foreign directory: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "junk", "stuff")); err != nil {
		t.Errorf("foreign directory touched: %v", err)
	}
	assertOnlyVolumes(t, root, "byhand", "junk", "real")

	// a damaged record stops Open, naming the volume, rather than losing it
	os.WriteFile(filepath.Join(root, "real", metaFile), []byte("{"), 0o600)
	if _, err := Open(root); err == nil || !strings.Contains(err.Error(), "volume real") {
		t.Errorf("Open with a damaged volume.json: %v", err)
	}
}

// TestStoreConcurrentCreate: many creates of one name make one volume.
func TestStoreConcurrentCreate(t *testing.T) {
	s, root := openStore(t)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Create(api.VolumeCreateOptions{Name: "same"})
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	assertOnlyVolumes(t, root, "same")
}

// TestSetupTeardown: a container's volumes at create and rm: created or
// found, used, and with rm -v its anonymous ones removed, named ones kept;
// a failed setup leaves nothing.
func TestSetupTeardown(t *testing.T) {
	s, root := openStore(t)
	mustCreate(t, s, api.VolumeCreateOptions{Name: "existing"})
	plan, err := Plan(Request{Binds: []string{"existing:/e", "fresh:/f"}, Volumes: map[string]struct{}{"/anon": {}},
		Mounts: []api.Mount{{Type: "volume", Source: "labelled", Target: "/l", VolumeOptions: &api.VolumeOptions{Labels: map[string]string{"k": "v"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	c1, err := s.Setup("c1", plan)
	if err != nil {
		t.Fatal(err)
	}
	var anon string
	for _, m := range c1 {
		if m.Name == "" || m.Source != filepath.Join(root, m.Name, "_data") || m.Driver != "local" {
			t.Errorf("after Setup: %+v", m)
		}
		if m.Destination == "/anon" {
			anon = m.Name
		}
		if users, _ := s.Users(m.Name); !reflect.DeepEqual(users, []string{"c1"}) {
			t.Errorf("users of %s: %v", m.Name, users)
		}
	}
	if v, _ := s.Get("labelled"); v.Labels["k"] != "v" {
		t.Errorf("--mount volume-label not applied: %+v", v)
	}
	// c2 takes c1's volumes (--volumes-from): the anonymous one is shared
	c2, err := s.Setup("c2", VolumesFrom(c1, "ro"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Teardown("c1", c1, true); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(anon); err != nil {
		t.Errorf("anonymous volume c2 still uses was removed: %v", err)
	}
	if err := s.Teardown("c2", c2, true); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(anon); !errors.Is(err, ErrNotFound) {
		t.Errorf("anonymous volume kept after rm -v of its last user: %v", err)
	}
	assertOnlyVolumes(t, root, "existing", "fresh", "labelled")

	// rm without -v keeps anonymous volumes
	c3, _ := s.Setup("c3", []Mount{{Type: "volume", Destination: "/x"}})
	s.Teardown("c3", c3, false)
	if _, err := s.Get(c3[0].Name); err != nil {
		t.Errorf("rm without -v removed the anonymous volume: %v", err)
	}
	s.Remove(c3[0].Name, false)

	// a setup that fails half-way takes back what it did
	os.MkdirAll(filepath.Join(root, "blocked", "x"), 0o755) // not a volume: create fails
	_, err = s.Setup("c4", []Mount{{Type: "volume", Destination: "/a"}, {Type: "volume", Name: "existing", Destination: "/b"}, {Type: "volume", Name: "blocked", Destination: "/c"}})
	if err == nil {
		t.Fatal("Setup with a volume that cannot be made succeeded")
	}
	if users, _ := s.Users("existing"); len(users) != 0 {
		t.Errorf("failed setup left users: %v", users)
	}
	os.RemoveAll(filepath.Join(root, "blocked"))
	assertOnlyVolumes(t, root, "existing", "fresh", "labelled")
}

// TestRestore: after a daemon restart the engine declares its containers
// again and the volumes are in use as before.
func TestRestore(t *testing.T) {
	s, root := openStore(t)
	mounts, err := s.Setup("c1", []Mount{{Type: "volume", Name: "data", Destination: "/d"}})
	if err != nil {
		t.Fatal(err)
	}
	s2, err := Open(root) // the daemon restarted
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Restore("c1", mounts, false); err != nil {
		t.Fatal(err)
	}
	if err := s2.Remove("data", false); !errors.Is(err, ErrInUse) {
		t.Errorf("Remove after restore: %v", err)
	}
	if err := s2.Restore("c1", []Mount{{Type: "volume", Name: "gone", Destination: "/g"}}, false); !errors.Is(err, ErrNotFound) {
		t.Errorf("Restore of a volume that is gone: %v", err)
	}
}
