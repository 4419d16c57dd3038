package cli

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"minidock/api"
)

// TestStorageFlagsToRequest: -v, --mount, --tmpfs and --volumes-from
// become the create request's fields as the docker CLI makes them.
func TestStorageFlagsToRequest(t *testing.T) {
	var o containerOptions
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	o.addFlags(fs)
	wd, _ := os.Getwd()
	if err := fs.Parse([]string{"-v", "data:/data:ro", "-v", "/anon", "--volume", "/srv:/srv:rshared", "-v", "./rel:/rel",
		"--mount", "type=tmpfs,dst=/t,tmpfs-size=1m", "--mount", "src=v2,dst=/v2,volume-nocopy",
		"--tmpfs", "/run:size=64m,exec", "--tmpfs", "/cache", "--volumes-from", "other:ro", "busybox"}); err != nil {
		t.Fatal(err)
	}
	req, err := o.request("busybox", nil, false)
	if err != nil {
		t.Fatal(err)
	}
	hc := req.HostConfig
	if want := []string{"data:/data:ro", "/srv:/srv:rshared", filepath.Join(wd, "rel") + ":/rel"}; !reflect.DeepEqual(hc.Binds, want) {
		t.Errorf("Binds %q, want %q", hc.Binds, want)
	}
	if !reflect.DeepEqual(req.Volumes, map[string]struct{}{"/anon": {}}) {
		t.Errorf("Volumes %v", req.Volumes)
	}
	wantMounts := []api.Mount{
		{Type: "tmpfs", Target: "/t", TmpfsOptions: &api.TmpfsOptions{SizeBytes: 1 << 20}},
		{Type: "volume", Source: "v2", Target: "/v2", VolumeOptions: &api.VolumeOptions{NoCopy: true}},
	}
	if !reflect.DeepEqual(hc.Mounts, wantMounts) {
		t.Errorf("Mounts %+v", hc.Mounts)
	}
	if !reflect.DeepEqual(hc.Tmpfs, map[string]string{"/run": "size=64m,exec", "/cache": ""}) {
		t.Errorf("Tmpfs %v", hc.Tmpfs)
	}
	if !reflect.DeepEqual(hc.VolumesFrom, []string{"other:ro"}) {
		t.Errorf("VolumesFrom %v", hc.VolumesFrom)
	}

	for args, want := range map[string]string{
		"-v /a:/b:bogus":                  "invalid mode: bogus",
		"-v /a:rel":                       "mount path must be absolute",
		"-v /a:/":                         "destination can't be '/'",
		"--mount type=tmpfs,tmpfs-size=x": `invalid argument "type=tmpfs,tmpfs-size=x" for "--mount" flag: invalid value for tmpfs-size: x`,
	} {
		var o containerOptions
		fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
		o.addFlags(fs)
		if err := fs.Parse(append(strings.Fields(args), "x")); err != nil {
			t.Fatal(err)
		}
		if _, err := o.request("x", nil, true); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", args, err, want)
		}
	}
}

// TestVolumeCommands: the volume verbs and their flags are docker's.
func TestVolumeCommands(t *testing.T) {
	out, _, code := runCLI(t, "volume", "--help")
	for _, sub := range []string{"create", "inspect", "ls", "prune", "rm"} {
		if !strings.Contains(out, "\n  "+sub+" ") {
			t.Errorf("volume --help lacks %s:\n%s", sub, out)
		}
	}
	if code != 0 {
		t.Errorf("volume --help: exit %d", code)
	}
	for args, flags := range map[string][]string{
		"volume create --help": {"-d, --driver string", "--label list", "-o, --opt list", "--name string"},
		"volume ls --help":     {"-q, --quiet", "-f, --filter list", "--format string"},
		"volume rm --help":     {"-f, --force"},
		"volume prune --help":  {"-a, --all", "-f, --force", "--filter list"},
		"rm --help":            {"-v, --volumes"},
	} {
		out, _, _ := runCLI(t, strings.Fields(args)...)
		for _, f := range flags {
			if !strings.Contains(out, f) {
				t.Errorf("%s lacks %q:\n%s", args, f, out)
			}
		}
	}
	if _, errOut, code := runCLI(t, "volume", "create", "a", "b"); code != 1 || !strings.Contains(errOut, "'minidock volume create' requires at most 1 argument") {
		t.Errorf("volume create a b: exit %d, %q", code, errOut)
	}
}
