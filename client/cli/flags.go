package cli

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"

	"minidock/api"
)

// listValue is a repeatable flag (-e A=1 -e B=2), docker's "list": each
// use adds one value, commas and all.
type listValue []string

func (l *listValue) String() string     { return strings.Join(*l, " ") }
func (l *listValue) Set(v string) error { *l = append(*l, v); return nil }
func (l *listValue) Type() string       { return "list" }

// bytesValue is a size flag (-m 64m): docker's "bytes".
type bytesValue int64

func (b *bytesValue) String() string {
	if *b == 0 {
		return ""
	}
	return strconv.FormatInt(int64(*b), 10)
}

func (b *bytesValue) Set(v string) error {
	n, err := api.ParseBytes(v)
	*b = bytesValue(n)
	return err
}

func (b *bytesValue) Type() string { return "bytes" }

// parseRestartPolicy reads --restart: no, always, unless-stopped,
// on-failure or on-failure:MAX-RETRIES.
func parseRestartPolicy(s string) (api.RestartPolicy, error) {
	name, max, hasMax := strings.Cut(s, ":")
	p := api.RestartPolicy{Name: name}
	switch name {
	case "", "no", "always", "unless-stopped":
		if hasMax {
			return p, fmt.Errorf("invalid restart policy %q: only on-failure takes a maximum retry count", s)
		}
	case "on-failure":
		if hasMax {
			n, err := strconv.Atoi(max)
			if err != nil || n < 0 {
				return p, fmt.Errorf("invalid restart policy %q: the maximum retry count must be a number", s)
			}
			p.MaximumRetryCount = n
		}
	default:
		return p, fmt.Errorf("invalid restart policy %q: want no, always, unless-stopped or on-failure[:MAX-RETRIES]", s)
	}
	return p, nil
}

// readEnvFile reads an --env-file: KEY=VALUE lines; a line with a name
// alone takes its value from our environment (and is dropped when unset);
// blank lines and # comments are skipped.
func readEnvFile(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--env-file: %w", err)
	}
	defer f.Close()
	var out []string
	s := bufio.NewScanner(f)
	for n := 1; s.Scan(); n++ {
		line := strings.TrimLeft(s.Text(), " \t")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, _, hasValue := strings.Cut(line, "=")
		if k == "" || strings.ContainsAny(k, " \t") {
			return nil, fmt.Errorf("--env-file %s line %d: %q is not NAME=VALUE", path, n, line)
		}
		if !hasValue {
			v, ok := os.LookupEnv(k)
			if !ok {
				continue
			}
			line = k + "=" + v
		}
		out = append(out, line)
	}
	return out, s.Err()
}

// keyValues turns KEY=VALUE flags (--label, --opt) into a map.
func keyValues(l []string) map[string]string {
	m := map[string]string{}
	for _, kv := range l {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

// splitRepoTag splits REPOSITORY[:TAG]; a colon before the last slash is
// a registry's port, not a tag.
func splitRepoTag(ref string) (repo, tag string) {
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		return ref[:i], ref[i+1:]
	}
	return ref, ""
}
