package api

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseBind(t *testing.T) {
	for _, c := range []struct {
		spec string
		want Mount
		mode string
	}{
		{"/data", Mount{Type: MountTypeVolume, Target: "/data"}, ""},
		{"vol:/data", Mount{Type: MountTypeVolume, Source: "vol", Target: "/data"}, ""},
		{"vol:/data:ro", Mount{Type: MountTypeVolume, Source: "vol", Target: "/data", ReadOnly: true}, "ro"},
		{"vol:/data:nocopy", Mount{Type: MountTypeVolume, Source: "vol", Target: "/data", VolumeOptions: &VolumeOptions{NoCopy: true}}, "nocopy"},
		{"vol:/data:ro,nocopy,z", Mount{Type: MountTypeVolume, Source: "vol", Target: "/data", ReadOnly: true, VolumeOptions: &VolumeOptions{NoCopy: true}}, "ro,nocopy,z"},
		{"/host:/c", Mount{Type: MountTypeBind, Source: "/host", Target: "/c"}, ""},
		{"/host:/c:rw,Z", Mount{Type: MountTypeBind, Source: "/host", Target: "/c"}, "rw,Z"},
		{"/host:/c:ro,rshared", Mount{Type: MountTypeBind, Source: "/host", Target: "/c", ReadOnly: true, BindOptions: &BindOptions{Propagation: PropagationRShared}}, "ro,rshared"},
		{"/host:/c:delegated", Mount{Type: MountTypeBind, Source: "/host", Target: "/c"}, "delegated"},
	} {
		got, mode, err := ParseBind(c.spec)
		if err != nil {
			t.Errorf("ParseBind(%q): %v", c.spec, err)
			continue
		}
		if !reflect.DeepEqual(got, c.want) || mode != c.mode {
			t.Errorf("ParseBind(%q) = %+v %q, want %+v %q", c.spec, got, mode, c.want, c.mode)
		}
	}
	for spec, want := range map[string]string{
		"":                 "invalid volume specification: ''",
		":/x":              "invalid volume specification: ':/x'",
		"/foo:rw":          "invalid volume specification: '/foo:rw'",
		"a:/b:ro:d":        "invalid volume specification: 'a:/b:ro:d'",
		"vol:/data:bogus":  "invalid mode: bogus",
		"vol:/data:ro,rw":  "invalid mode: ro,rw",
		"vol:/data:z,Z":    "invalid mode: z,Z",
		"vol:relative":     `invalid volume specification: 'vol:relative': invalid mount config for type "volume": invalid mount path: 'relative' mount path must be absolute`,
		"relative":         `invalid mount path: 'relative' mount path must be absolute`,
		"vol:/":            `invalid volume specification: 'vol:/': invalid mount config for type "volume": invalid specification: destination can't be '/'`,
		"/host:/":          "destination can't be '/'",
		"/host:/..":        "destination can't be '/'",
		"/":                "destination can't be '/'",
		"/host:/c:nocopy":  `invalid mount config for type "bind": field VolumeOptions must not be specified`,
		"vol:/c:rshared":   `invalid mount config for type "volume": field BindOptions must not be specified`,
		"/host:/c:shared,": "invalid mode: shared,",
	} {
		_, _, err := ParseBind(spec)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseBind(%q) = %v, want an error with %q", spec, err, want)
		}
	}
}

func TestValidateMount(t *testing.T) {
	for _, c := range []struct {
		m    Mount
		want string
	}{
		{Mount{Type: MountTypeTmpfs, Source: "x", Target: "/t"}, `invalid mount config for type "tmpfs": field Source must not be specified`},
		{Mount{Type: MountTypeTmpfs, Target: "/t", TmpfsOptions: &TmpfsOptions{SizeBytes: -1}}, `invalid mount config for type "tmpfs": invalid tmpfs size -1: must not be negative`},
		{Mount{Type: MountTypeTmpfs, Target: "/t", TmpfsOptions: &TmpfsOptions{Mode: 0o17777}}, `invalid tmpfs mode 17777`},
		{Mount{Type: MountTypeTmpfs, Target: "/t", TmpfsOptions: &TmpfsOptions{Options: [][]string{{"suid"}}}}, "invalid option: suid"},
		{Mount{Type: MountTypeTmpfs, Target: "/t", TmpfsOptions: &TmpfsOptions{Options: [][]string{{}}}}, "invalid option array length"},
		{Mount{Type: "image", Source: "busybox", Target: "/i"}, `invalid mount config for type "image": mount type unknown`},
		{Mount{Type: MountTypeBind, Target: "/b"}, "field Source must not be empty"},
		{Mount{Type: MountTypeBind, Source: "rel/dir", Target: "/b"}, "invalid mount path: 'rel/dir' mount path must be absolute"},
		{Mount{Type: MountTypeBind, Source: "/a", Target: "/b", BindOptions: &BindOptions{Propagation: "sideways"}}, "invalid propagation mode: sideways"},
		{Mount{Type: MountTypeVolume, Source: "v"}, "field Target must not be empty"},
		{Mount{Type: MountTypeVolume, Source: "v", Target: "/"}, "destination can't be '/'"},
		{Mount{Type: MountTypeVolume, Source: "v", Target: "/x", TmpfsOptions: &TmpfsOptions{}}, "field TmpfsOptions must not be specified"},
	} {
		err := ValidateMount(c.m)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ValidateMount(%+v) = %v, want an error with %q", c.m, err, c.want)
		}
	}
	if err := ValidateMount(Mount{Type: MountTypeTmpfs, Target: "/t", TmpfsOptions: &TmpfsOptions{Options: [][]string{{"exec"}}}}); err != nil {
		t.Error(err)
	}
}

func TestParseMountFlag(t *testing.T) {
	wd, _ := os.Getwd()
	for _, c := range []struct {
		flag string
		want Mount
	}{
		{"target=/x", Mount{Type: MountTypeVolume, Target: "/x"}},
		{"type=bind,source=/a,target=/b,readonly,bind-propagation=rslave", Mount{Type: MountTypeBind, Source: "/a", Target: "/b", ReadOnly: true,
			BindOptions: &BindOptions{Propagation: PropagationRSlave}}},
		{"type=bind,src=./rel,dst=/b,bind-create-src,bind-recursive=disabled", Mount{Type: MountTypeBind, Source: filepath.Join(wd, "rel"), Target: "/b",
			BindOptions: &BindOptions{CreateMountpoint: true, NonRecursive: true}}},
		{"type=volume,src=v,dst=/d,volume-nocopy,volume-opt=type=tmpfs,volume-opt=device=tmpfs,volume-label=a=b,ro=false", Mount{Type: MountTypeVolume, Source: "v", Target: "/d",
			VolumeOptions: &VolumeOptions{NoCopy: true, Labels: map[string]string{"a": "b"}, DriverConfig: &VolumeDriver{Options: map[string]string{"type": "tmpfs", "device": "tmpfs"}}}}},
		{"type=tmpfs,destination=/t,tmpfs-size=64m,tmpfs-mode=1770", Mount{Type: MountTypeTmpfs, Target: "/t", TmpfsOptions: &TmpfsOptions{SizeBytes: 64 << 20, Mode: 0o1770}}},
		{`type=bind,"src=/a,b",dst=/c`, Mount{Type: MountTypeBind, Source: "/a,b", Target: "/c"}},
	} {
		got, err := ParseMountFlag(c.flag)
		if err != nil {
			t.Errorf("ParseMountFlag(%q): %v", c.flag, err)
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("ParseMountFlag(%q) =\n %+v, want\n %+v", c.flag, got, c.want)
		}
	}
	for flag, want := range map[string]string{
		"":                                           "value is empty",
		"type=tmpfs,dst=/t,tmpfs-size=abc":           "invalid value for tmpfs-size: abc",
		"type=tmpfs,dst=/t,tmpfs-mode=999":           "invalid value for tmpfs-mode: 999",
		"type=bind,src=/a,dst=/b,volume-nocopy":      "cannot mix 'volume-*' options with mount type 'bind'",
		"type=volume,dst=/b,tmpfs-size=1m":           "cannot mix 'tmpfs-*' options with mount type 'volume'",
		"type=tmpfs,dst=/b,bind-propagation=rshared": "cannot mix 'bind-*' options with mount type 'tmpfs'",
		"bogus=1,dst=/x":                             "unknown option 'bogus' in 'bogus=1'",
		"dst=/x,readonly=maybe":                      `invalid value for 'readonly': invalid boolean value ("maybe")`,
		"target":                                     "invalid field 'target' must be a key=value pair",
		"src= x,dst=/x":                              "value should not have whitespace",
		"dst=/x,src=":                                "invalid value for 'src': value is empty",
		"type=bind,src=/a,dst=/b,bind-recursive=writable": "requires 'readonly'",
		"type=bind,src=/a,dst=/b,bind-recursive=maybe":    "invalid value for bind-recursive: maybe",
	} {
		_, err := ParseMountFlag(flag)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseMountFlag(%q) = %v, want an error with %q", flag, err, want)
		}
	}
}

func TestParseVolumesFrom(t *testing.T) {
	for spec, want := range map[string][2]string{"c": {"c", "rw"}, "c:ro": {"c", "ro"}, "c:rw,z": {"c", "rw,z"}} {
		c, mode, err := ParseVolumesFrom(spec)
		if err != nil || c != want[0] || mode != want[1] {
			t.Errorf("ParseVolumesFrom(%q) = %q %q %v, want %q", spec, c, mode, err, want)
		}
	}
	for spec, want := range map[string]string{"": "cannot be an empty string", "c:rshared": "invalid mode: rshared",
		"c:nocopy": "invalid mode: nocopy", "c:bogus": "invalid mode: bogus", "c:ro,rw": "invalid mode: ro,rw"} {
		_, _, err := ParseVolumesFrom(spec)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseVolumesFrom(%q) = %v, want an error with %q", spec, err, want)
		}
	}
}
