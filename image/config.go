package image

import (
	"encoding/json"
	"fmt"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ApplyChanges applies Dockerfile-like instructions to an image config,
// as `docker commit --change` and `docker import --change` do. Supported:
// CMD, ENTRYPOINT (JSON array, or shell form run by /bin/sh -c), ENV and
// LABEL (KEY=VALUE ..., or KEY VALUE), EXPOSE (port[/proto] ...), USER,
// WORKDIR, VOLUME (JSON array or paths) and STOPSIGNAL.
func ApplyChanges(c *ocispec.ImageConfig, changes []string) error {
	for _, ch := range changes {
		ch = strings.TrimSpace(ch)
		if ch == "" {
			continue
		}
		instr, args, _ := strings.Cut(ch, " ")
		args = strings.TrimSpace(args)
		switch strings.ToUpper(instr) {
		case "CMD":
			c.Cmd = commandForm(args)
		case "ENTRYPOINT":
			c.Entrypoint = commandForm(args)
		case "ENV":
			kvs, err := keyValues(args)
			if err != nil {
				return fmt.Errorf("change %q: %w", ch, err)
			}
			for _, kv := range kvs {
				c.Env = setEnv(c.Env, kv[0], kv[1])
			}
		case "LABEL":
			kvs, err := keyValues(args)
			if err != nil {
				return fmt.Errorf("change %q: %w", ch, err)
			}
			if c.Labels == nil {
				c.Labels = map[string]string{}
			}
			for _, kv := range kvs {
				c.Labels[kv[0]] = kv[1]
			}
		case "EXPOSE":
			if c.ExposedPorts == nil {
				c.ExposedPorts = map[string]struct{}{}
			}
			for _, p := range strings.Fields(args) {
				if !strings.Contains(p, "/") {
					p += "/tcp"
				}
				c.ExposedPorts[p] = struct{}{}
			}
		case "USER":
			c.User = args
		case "WORKDIR":
			c.WorkingDir = args
		case "STOPSIGNAL":
			c.StopSignal = args
		case "VOLUME":
			var vols []string
			if err := json.Unmarshal([]byte(args), &vols); err != nil {
				vols = strings.Fields(args)
			}
			if c.Volumes == nil {
				c.Volumes = map[string]struct{}{}
			}
			for _, v := range vols {
				c.Volumes[v] = struct{}{}
			}
		default:
			return fmt.Errorf("change %q: unsupported instruction %q (CMD, ENTRYPOINT, ENV, LABEL, EXPOSE, USER, WORKDIR, VOLUME, STOPSIGNAL)", ch, instr)
		}
	}
	return nil
}

// commandForm parses the exec form ["a","b"] or else takes args as a
// shell command line.
func commandForm(args string) []string {
	var argv []string
	if strings.HasPrefix(args, "[") && json.Unmarshal([]byte(args), &argv) == nil {
		return argv
	}
	return []string{"/bin/sh", "-c", args}
}

// keyValues parses `K=V K2="v 2"` or the one-pair form `K V`.
func keyValues(args string) ([][2]string, error) {
	words, err := splitWords(args)
	if err != nil {
		return nil, err
	}
	if len(words) == 0 {
		return nil, fmt.Errorf("missing KEY=VALUE")
	}
	if !strings.Contains(words[0], "=") {
		k, v, _ := strings.Cut(args, " ")
		return [][2]string{{k, strings.TrimSpace(v)}}, nil
	}
	var out [][2]string
	for _, w := range words {
		k, v, ok := strings.Cut(w, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%q is not KEY=VALUE", w)
		}
		out = append(out, [2]string{k, v})
	}
	return out, nil
}

// splitWords splits on spaces, honouring double and single quotes and
// backslash escapes.
func splitWords(s string) ([]string, error) {
	var out []string
	var cur strings.Builder
	in := false
	var quote rune
	for i := 0; i < len(s); i++ {
		ch := rune(s[i])
		switch {
		case quote != 0:
			if ch == quote {
				quote = 0
			} else if ch == '\\' && quote == '"' && i+1 < len(s) {
				i++
				cur.WriteByte(s[i])
			} else {
				cur.WriteRune(ch)
			}
		case ch == '"' || ch == '\'':
			quote, in = ch, true
		case ch == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			in = true
		case ch == ' ' || ch == '\t':
			if in {
				out = append(out, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(ch)
			in = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated quote in %q", s)
	}
	if in {
		out = append(out, cur.String())
	}
	return out, nil
}

// setEnv sets KEY=value in an environment list, replacing an old value.
func setEnv(env []string, k, v string) []string {
	for i, e := range env {
		if strings.HasPrefix(e, k+"=") {
			env[i] = k + "=" + v
			return env
		}
	}
	return append(env, k+"="+v)
}
