package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"minidock/api"
)

// securityOptions are the run/create flags that confine a container (or
// lift its confinement), docker's names; they fill api.Confinement.
type securityOptions struct {
	privileged, init                               bool
	capAdd, capDrop, securityOpt, devices, sysctls listValue
	ulimits, groupAdd                              listValue
	userns, pid, ipc, uts, cgroupns                string
	oomScoreAdj                                    int
	shmSize                                        bytesValue
}

func (o *securityOptions) addFlags(fs *pflag.FlagSet) {
	fs.BoolVar(&o.privileged, "privileged", false, "Give extended privileges to this container")
	fs.Var(&o.capAdd, "cap-add", "Add Linux capabilities")
	fs.Var(&o.capDrop, "cap-drop", "Drop Linux capabilities")
	fs.Var(&o.securityOpt, "security-opt", "Security Options (no-new-privileges, seccomp=unconfined|PROFILE.json, systempaths=unconfined)")
	fs.Var(&o.devices, "device", "Add a host device to the container (HOST[:CONTAINER[:rwm]])")
	fs.Var(&o.sysctls, "sysctl", "Sysctl options (namespaced ones: net.*, kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.*)")
	fs.Var(&o.ulimits, "ulimit", "Ulimit options (NAME=SOFT[:HARD])")
	fs.Var(&o.groupAdd, "group-add", "Add additional groups to join")
	fs.StringVar(&o.userns, "userns", "", "User namespace to use (host: no remapping)")
	fs.StringVar(&o.pid, "pid", "", "PID namespace to use (host, container:NAME)")
	fs.StringVar(&o.ipc, "ipc", "", "IPC mode to use (private, shareable, host, container:NAME)")
	fs.StringVar(&o.uts, "uts", "", "UTS namespace to use (host)")
	fs.StringVar(&o.cgroupns, "cgroupns", "", "Cgroup namespace to use (host, private)")
	fs.BoolVar(&o.init, "init", false, "Run an init inside the container that forwards signals and reaps processes")
	fs.IntVar(&o.oomScoreAdj, "oom-score-adj", 0, "Tune host's OOM preferences (-1000 to 1000)")
	fs.Var(&o.shmSize, "shm-size", "Size of /dev/shm")
}

// apply puts the flags into the request's HostConfig, as the docker CLI
// does: capability names upper-cased with "CAP_" (except ALL), devices
// and ulimits parsed, and a seccomp profile file read and sent inline.
func (o *securityOptions) apply(hc *api.HostConfig) error {
	c := &hc.Confinement
	c.Privileged = o.privileged
	c.CapAdd, c.CapDrop = capNames(o.capAdd), capNames(o.capDrop)
	for _, opt := range o.securityOpt {
		opt, err := inlineSeccompProfile(opt)
		if err != nil {
			return err
		}
		c.SecurityOpt = append(c.SecurityOpt, opt)
	}
	for _, d := range o.devices {
		m, err := api.ParseDevice(d)
		if err != nil {
			return err
		}
		c.Devices = append(c.Devices, m)
	}
	for _, kv := range o.sysctls {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return fmt.Errorf("invalid argument %q for \"--sysctl\" flag: want KEY=VALUE", kv)
		}
		if c.Sysctls == nil {
			c.Sysctls = map[string]string{}
		}
		c.Sysctls[k] = v
	}
	for _, u := range o.ulimits {
		l, err := api.ParseUlimit(u)
		if err != nil {
			return err
		}
		c.Ulimits = append(c.Ulimits, l)
	}
	c.GroupAdd = o.groupAdd
	c.UsernsMode, c.PidMode, c.IpcMode, c.UTSMode, c.CgroupnsMode = o.userns, o.pid, o.ipc, o.uts, o.cgroupns
	if o.init {
		c.Init = &o.init
	}
	c.OomScoreAdj = o.oomScoreAdj
	c.ShmSize = int64(o.shmSize)
	return nil
}

func capNames(list []string) []string {
	var out []string
	for _, n := range list {
		n = strings.ToUpper(n)
		if n != "ALL" && !strings.HasPrefix(n, "CAP_") {
			n = "CAP_" + n
		}
		out = append(out, n)
	}
	return out
}

// inlineSeccompProfile turns "seccomp=FILE" into "seccomp=<its JSON>",
// as the docker CLI does: the daemon never reads the client's files.
// "seccomp=unconfined" and the other options pass as they are.
func inlineSeccompProfile(opt string) (string, error) {
	key, val, ok := strings.Cut(opt, "=")
	if !ok {
		key, val, ok = strings.Cut(opt, ":")
	}
	if !ok || key != "seccomp" || val == "unconfined" || val == "builtin" || val == "default" {
		return opt, nil
	}
	data, err := os.ReadFile(val)
	if err != nil {
		return "", fmt.Errorf("opening seccomp profile (%s) failed: %w", val, err)
	}
	var b bytes.Buffer
	if err := json.Compact(&b, data); err != nil {
		return "", fmt.Errorf("seccomp profile %s does not parse as JSON: %w", val, err)
	}
	return "seccomp=" + b.String(), nil
}
