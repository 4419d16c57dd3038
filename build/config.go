package build

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"minidock/image"
)

// applyConfig applies an instruction that only changes the image config
// (or the stage's ARGs) and returns the text of its history entry.
func (b *builder) applyConfig(s *state, c command) (string, error) {
	ex := b.expander(s)
	cfg := &s.config
	switch c := c.(type) {
	case *envCmd:
		// every value is substituted with the variables from before the
		// instruction: ENV A=1 B=$A gives B the earlier A
		keys, values := make([]string, len(c.pairs)), make([]string, len(c.pairs))
		var text []string
		for i, kv := range c.pairs {
			k, err := ex.word(kv.key)
			if err != nil {
				return "", err
			}
			if !envNameOK(k) {
				return "", fmt.Errorf("invalid variable name %q", k)
			}
			if values[i], err = ex.word(kv.value); err != nil {
				return "", err
			}
			keys[i] = k
			text = append(text, k+"="+values[i])
		}
		for i, k := range keys {
			cfg.Env = setEnv(cfg.Env, k, values[i])
		}
		return "ENV " + strings.Join(text, " "), nil
	case *labelCmd:
		if cfg.Labels == nil {
			cfg.Labels = map[string]string{}
		}
		var text []string
		for _, kv := range c.pairs {
			k, err := ex.word(kv.key)
			if err != nil {
				return "", err
			}
			v, err := ex.word(kv.value)
			if err != nil {
				return "", err
			}
			if k == "" {
				return "", fmt.Errorf("a label needs a name")
			}
			cfg.Labels[k] = v
			text = append(text, k+"="+v)
		}
		return "LABEL " + strings.Join(text, " "), nil
	case *argCmd:
		var text []string
		for _, d := range c.args {
			b.consumed[d.name] = true
			var value *string
			switch given, meta := b.opts.BuildArgs[d.name], b.meta[d.name]; {
			case given != nil:
				value = given
			case d.value != nil:
				v, err := ex.word(*d.value)
				if err != nil {
					return "", err
				}
				value = &v
			default:
				if _, ok := b.meta[d.name]; ok {
					value = &meta
				}
			}
			s.args[d.name] = value
			t := d.name
			if d.value != nil {
				t += "=" + *d.value
			}
			text = append(text, t)
		}
		return "ARG " + strings.Join(text, " "), nil
	case *exposeCmd:
		ports, err := ex.words(c.ports)
		if err != nil {
			return "", err
		}
		var added []string
		for _, p := range ports {
			ps, err := expandPorts(p)
			if err != nil {
				return "", err
			}
			added = append(added, ps...)
		}
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = map[string]struct{}{}
		}
		for _, p := range added {
			cfg.ExposedPorts[p] = struct{}{}
		}
		sort.Strings(added)
		return "EXPOSE " + strings.Join(added, " "), nil
	case *userCmd:
		u, err := ex.word(c.user)
		if err != nil {
			return "", err
		}
		if u == "" {
			return "", fmt.Errorf("the user is empty")
		}
		cfg.User = u
		return "USER " + u, nil
	case *volumeCmd:
		vols, err := ex.words(c.paths)
		if err != nil {
			return "", err
		}
		if cfg.Volumes == nil {
			cfg.Volumes = map[string]struct{}{}
		}
		for _, v := range vols {
			if strings.TrimSpace(v) == "" {
				return "", fmt.Errorf("a volume path is empty")
			}
			cfg.Volumes[v] = struct{}{}
		}
		return fmt.Sprintf("VOLUME %v", vols), nil
	case *stopSignalCmd:
		sig, err := ex.word(c.signal)
		if err != nil {
			return "", err
		}
		if err := checkSignal(sig); err != nil {
			return "", err
		}
		cfg.StopSignal = sig
		return "STOPSIGNAL " + sig, nil
	case *cmdCmd:
		cfg.Cmd = c.argv(shellOf(s))
		s.cmdSet = true
		return fmt.Sprintf("CMD %q", cfg.Cmd), nil
	case *entrypointCmd:
		cfg.Entrypoint = c.argv(shellOf(s))
		if !s.cmdSet {
			// a CMD of the base image was meant for its own entrypoint
			cfg.Cmd = nil
		}
		return fmt.Sprintf("ENTRYPOINT %q", cfg.Entrypoint), nil
	case *shellCmd:
		cfg.Shell = append([]string(nil), c.argv...)
		return fmt.Sprintf("SHELL %q", cfg.Shell), nil
	case *healthcheckCmd:
		hc := &image.HealthConfig{Test: []string{"NONE"}}
		if !c.none {
			hc = &image.HealthConfig{Interval: c.interval, Timeout: c.timeout, StartPeriod: c.startPeriod,
				StartInterval: c.startInterval, Retries: c.retries}
			if c.test.isExec() {
				hc.Test = append([]string{"CMD"}, c.test.exec...)
			} else {
				hc.Test = []string{"CMD-SHELL", c.test.shell}
			}
		}
		cfg.Healthcheck = hc
		return fmt.Sprintf("HEALTHCHECK %q", hc.Test), nil
	case *onbuildCmd:
		cfg.OnBuild = append(cfg.OnBuild, c.trigger)
		return "ONBUILD " + c.trigger, nil
	case *maintainerCmd:
		s.author = c.name
		return "MAINTAINER " + c.name, nil
	}
	return "", fmt.Errorf("%s is not a config instruction", c.source().Cmd)
}

func envNameOK(k string) bool {
	return k != "" && !strings.ContainsAny(k, "= \t")
}

// expandPorts reads EXPOSE's "80", "80/tcp", "53/udp", "8000-8002/tcp".
func expandPorts(p string) ([]string, error) {
	spec, proto, hasProto := strings.Cut(p, "/")
	proto = strings.ToLower(proto)
	if !hasProto {
		proto = "tcp"
	}
	if proto != "tcp" && proto != "udp" && proto != "sctp" {
		return nil, fmt.Errorf("invalid port %q: protocol must be tcp, udp or sctp", p)
	}
	lo, hi, isRange := strings.Cut(spec, "-")
	first, err1 := strconv.ParseUint(lo, 10, 16)
	last := first
	var err2 error
	if isRange {
		last, err2 = strconv.ParseUint(hi, 10, 16)
	}
	if err1 != nil || err2 != nil || first == 0 || last < first {
		return nil, fmt.Errorf("invalid port %q", p)
	}
	var out []string
	for n := first; n <= last; n++ {
		out = append(out, fmt.Sprintf("%d/%s", n, proto))
	}
	return out, nil
}

// isSignalName tells the names STOPSIGNAL accepts (after "SIG").
func isSignalName(name string) bool {
	switch name {
	case "ABRT", "ALRM", "BUS", "CHLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT", "KILL", "PIPE",
		"POLL", "PROF", "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM", "TRAP", "TSTP", "TTIN",
		"TTOU", "URG", "USR1", "USR2", "VTALRM", "WINCH", "XCPU", "XFSZ":
		return true
	}
	return false
}

// checkSignal accepts a signal number (1-64), a name, or SIGRTMIN+n /
// SIGRTMAX-n.
func checkSignal(sig string) error {
	if n, err := strconv.Atoi(sig); err == nil {
		if n < 1 || n > 64 {
			return fmt.Errorf("invalid signal %q: numbers go from 1 to 64", sig)
		}
		return nil
	}
	name := strings.TrimPrefix(strings.ToUpper(sig), "SIG")
	if isSignalName(name) {
		return nil
	}
	for _, rt := range []string{"RTMIN+", "RTMAX-"} {
		if n, err := strconv.Atoi(strings.TrimPrefix(name, rt)); strings.HasPrefix(name, rt) && err == nil && n >= 0 && n <= 30 {
			return nil
		}
	}
	if name == "RTMIN" || name == "RTMAX" {
		return nil
	}
	return fmt.Errorf("invalid signal %q", sig)
}
