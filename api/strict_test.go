package api

import (
	"reflect"
	"testing"
)

// dockerCreateBody is what the docker 28.2 CLI sends for `docker create
// busybox true` (captured from its socket): every field it knows, empty.
const dockerCreateBody = `{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":true,"AttachStderr":true,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":["true"],"Image":"busybox","Volumes":{},"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":{},"HostConfig":{"Binds":null,"ContainerIDFile":"","LogConfig":{"Type":"","Config":{}},"NetworkMode":"default","PortBindings":{},"RestartPolicy":{"Name":"no","MaximumRetryCount":0},"AutoRemove":false,"VolumeDriver":"","VolumesFrom":null,"ConsoleSize":[0,0],"CapAdd":null,"CapDrop":null,"CgroupnsMode":"","Dns":[],"DnsOptions":[],"DnsSearch":[],"ExtraHosts":null,"GroupAdd":null,"IpcMode":"","Cgroup":"","Links":null,"OomScoreAdj":0,"PidMode":"","Privileged":false,"PublishAllPorts":false,"ReadonlyRootfs":false,"SecurityOpt":null,"UTSMode":"","UsernsMode":"","ShmSize":0,"Isolation":"","CpuShares":0,"Memory":0,"NanoCpus":0,"CgroupParent":"","BlkioWeight":0,"BlkioWeightDevice":[],"BlkioDeviceReadBps":[],"BlkioDeviceWriteBps":[],"BlkioDeviceReadIOps":[],"BlkioDeviceWriteIOps":[],"CpuPeriod":0,"CpuQuota":0,"CpuRealtimePeriod":0,"CpuRealtimeRuntime":0,"CpusetCpus":"","CpusetMems":"","Devices":[],"DeviceCgroupRules":null,"DeviceRequests":null,"MemoryReservation":0,"MemorySwap":0,"MemorySwappiness":-1,"OomKillDisable":false,"PidsLimit":0,"Ulimits":[],"CpuCount":0,"CpuPercent":0,"IOMaximumIOps":0,"IOMaximumBandwidth":0,"MaskedPaths":null,"ReadonlyPaths":null},"NetworkingConfig":{"EndpointsConfig":{"default":{"IPAMConfig":null,"Links":null,"Aliases":null,"MacAddress":"","DriverOpts":null,"GwPriority":0,"NetworkID":"","EndpointID":"","Gateway":"","IPAddress":"","IPPrefixLen":0,"IPv6Gateway":"","GlobalIPv6Address":"","GlobalIPv6PrefixLen":0,"DNSNames":null}}}}`

func TestUnsupportedFields(t *testing.T) {
	for _, c := range []struct {
		name, body string
		want       []string
	}{
		{"the docker CLI's default body", dockerCreateBody, nil},
		{"a Docker field that is set", `{"HostConfig":{"CpusetCpus":"0","OomKillDisable":true}}`, []string{"HostConfig.CpusetCpus", "HostConfig.OomKillDisable"}},
		{"MemorySwappiness -1 means unset", `{"HostConfig":{"MemorySwappiness":-1}}`, nil},
		{"MemorySwappiness set", `{"HostConfig":{"MemorySwappiness":60}}`, []string{"HostConfig.MemorySwappiness"}},
		{"an unknown top-level field", `{"Image":"x","Wings":{"Span":2}}`, []string{"Wings"}},
		{"an object of empty values", `{"Healthcheck":{"Test":[],"Interval":0}}`, nil},
		{"in a map of structs", `{"NetworkingConfig":{"EndpointsConfig":{"net1":{"GwPriority":5}}}}`, []string{"NetworkingConfig.EndpointsConfig.net1.GwPriority"}},
		{"in a slice of structs", `{"HostConfig":{"Mounts":[{"Type":"bind","Target":"/x","Wings":1}]}}`, []string{"HostConfig.Mounts[0].Wings"}},
		{"names match without regard to case", `{"hostconfig":{"privileged":true,"capadd":["X"]}}`, nil},
		{"a field of the embedded Confinement", `{"HostConfig":{"Privileged":true,"Sysctls":{"a":"b"}}}`, nil},
		{"a console size", `{"HostConfig":{"ConsoleSize":[40,120]}}`, nil},
	} {
		var req ContainerCreateRequest
		if got := UnsupportedFields([]byte(c.body), &req); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
	// exec: the docker CLI's body passes, DetachKeys set does not
	var ec ExecConfig
	if got := UnsupportedFields([]byte(`{"User":"5","Privileged":true,"Tty":false,"AttachStdin":false,"AttachStderr":true,"AttachStdout":true,"Detach":false,"DetachKeys":"","Env":null,"WorkingDir":"","Cmd":["true"],"ConsoleSize":[24,80]}`), &ec); got != nil {
		t.Errorf("docker exec body: %v", got)
	}
	if got := UnsupportedFields([]byte(`{"Cmd":["true"],"DetachKeys":"ctrl-x"}`), &ec); !reflect.DeepEqual(got, []string{"DetachKeys"}) {
		t.Errorf("DetachKeys: %v", got)
	}
}

func TestParseDevice(t *testing.T) {
	for in, want := range map[string]DeviceMapping{
		"/dev/sda":                {"/dev/sda", "/dev/sda", "rwm"},
		"/dev/sda:/dev/xvdc":      {"/dev/sda", "/dev/xvdc", "rwm"},
		"/dev/sda:r":              {"/dev/sda", "/dev/sda", "r"},
		"/dev/sda:/dev/xvdc:rw":   {"/dev/sda", "/dev/xvdc", "rw"},
		"/dev/nvidia0:/dev/gpu:m": {"/dev/nvidia0", "/dev/gpu", "m"},
	} {
		got, err := ParseDevice(in)
		if err != nil || got != want {
			t.Errorf("ParseDevice(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", ":/dev/x", "/dev/sda:/dev/x:rwx", "/dev/sda:/dev/x:rr", "a:b:c:d"} {
		if _, err := ParseDevice(bad); err == nil {
			t.Errorf("ParseDevice(%q) accepted", bad)
		}
	}
}

func TestParseUlimit(t *testing.T) {
	for in, want := range map[string]Ulimit{
		"nofile=100:200": {"nofile", 100, 200},
		"nproc=50":       {"nproc", 50, 50},
		"core=-1":        {"core", -1, -1},
	} {
		got, err := ParseUlimit(in)
		if err != nil || got != want {
			t.Errorf("ParseUlimit(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, bad := range []string{"nofile", "=1", "nofile=x", "nofile=1:y", "nofile=12abc"} {
		if _, err := ParseUlimit(bad); err == nil {
			t.Errorf("ParseUlimit(%q) accepted", bad)
		}
	}
}
