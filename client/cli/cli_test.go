package cli

import (
	"bytes"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"minidock/api"
)

// runCLI runs the command line in process, with no daemon: what these
// tests check never reaches one.
func runCLI(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(&CLI{Out: &out, Err: &errOut, In: strings.NewReader("")}, args)
	return out.String(), errOut.String(), code
}

// A command line that does not parse: docker's words, exit 125.
func TestUnknownFlag(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--bogus", "busybox"}, "unknown flag: --bogus\n\nUsage:  minidock run [OPTIONS] IMAGE [COMMAND] [ARG...]\n\nRun 'minidock run --help' for more information\n"},
		{[]string{"ps", "-Z"}, "unknown shorthand flag: 'Z' in -Z\n\nUsage:  minidock ps [OPTIONS]\n\nRun 'minidock ps --help' for more information\n"},
		{[]string{"--bogus", "ps"}, "unknown flag: --bogus\n\nUsage:  minidock [OPTIONS] COMMAND [ARG...]\n\nRun 'minidock --help' for more information\n"},
		{[]string{"network", "create", "--nope", "x"}, "unknown flag: --nope\n\nUsage:  minidock network create [OPTIONS] NETWORK\n"},
		{[]string{"run", "-m", "lots", "busybox"}, `invalid argument "lots" for "-m, --memory" flag: invalid size "lots"`},
	} {
		out, errOut, code := runCLI(t, c.args...)
		if code != 125 || out != "" || !strings.HasPrefix(errOut, c.want) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want 125 and %q", c.args, code, out, errOut, c.want)
		}
	}
}

// Wrong arguments and unknown commands: docker's words, exit 1.
func TestArgumentErrors(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"run"}, "minidock: 'minidock run' requires at least 1 argument\n\nUsage:  minidock run [OPTIONS] IMAGE [COMMAND] [ARG...]\n"},
		{[]string{"rename", "a"}, "minidock: 'minidock rename' requires 2 arguments\n"},
		{[]string{"bogus"}, "minidock: unknown command: minidock bogus\n"},
		{[]string{"network", "bogus"}, "minidock: unknown command: minidock network bogus\n"},
	} {
		_, errOut, code := runCLI(t, c.args...)
		if code != 1 || !strings.HasPrefix(errOut, c.want) {
			t.Errorf("%q: exit %d, stderr %q; want 1 and %q", c.args, code, errOut, c.want)
		}
	}
}

// --help, help and the bare command print the verbs, grouped as docker
// groups them, and exit 0.
func TestHelpLayout(t *testing.T) {
	var first string
	for _, args := range [][]string{{"--help"}, {"help"}, {}, {"-H", "unix:///x", "--help"}} {
		out, errOut, code := runCLI(t, args...)
		if code != 0 || errOut != "" {
			t.Fatalf("%q: exit %d, stderr %q", args, code, errOut)
		}
		if first == "" {
			first = out
		} else if out != first {
			t.Errorf("%q prints another help than --help:\n%s", args, out)
		}
	}
	// the sections in docker's order, each with its commands in order
	want := regexp.MustCompile(`(?s)^\nUsage:  minidock \[OPTIONS\] COMMAND \[ARG\.\.\.\]\n\n.+\n\n` +
		`Common Commands:\n  run +Create and run a new container from an image\n  exec +.*\n  ps +.*\n  images +.*\n  version +.*\n  info +.*\n\n` +
		`Management Commands:\n  container +Manage containers\n  image +Manage images\n  network +Manage networks\n  volume +Manage volumes\n\n` +
		`Commands:\n  check +Check what this machine offers.*\n  commit .*\n  cp .*  wait +.*\n  completion +.*\n\n` +
		`Global Options:\n  -H, --host string .*\n\nRun 'minidock COMMAND --help' for more information on a command\.\n`)
	if !want.MatchString(first) {
		t.Errorf("help layout:\n%s", first)
	}
	for _, hidden := range []string{"daemon ", "shim ", "init ", "__complete", "  help "} {
		if strings.Contains(first, "\n  "+hidden) {
			t.Errorf("help lists %q", hidden)
		}
	}

	out, _, code := runCLI(t, "run", "--help")
	for _, flag := range []string{"\n  -d, --detach ", "\n  -h, --hostname string ", "\n      --expose list ",
		"\n  -p, --publish list ", "\n  -e, --env list ", "\n  -m, --memory bytes ", "\n  -v, --volume list ",
		"\n      --mount list ", "\n      --tmpfs list ", "\n      --volumes-from list "} {
		if !strings.Contains(out, flag) {
			t.Errorf("run --help lacks %q:\n%s", flag, out)
		}
	}
	if code != 0 || strings.Contains(out, "-detach ") && !strings.Contains(out, "--detach") || strings.Contains(out, "[flags]") {
		t.Errorf("run --help: exit %d\n%s", code, out)
	}
	out, _, _ = runCLI(t, "container", "ls", "--help")
	if !strings.Contains(out, "Aliases:\n  minidock container list, minidock container ls, minidock container ps, minidock ps\n") {
		t.Errorf("container ls --help aliases:\n%s", out)
	}
}

// completion bash|zsh|fish prints each shell's script.
func TestCompletionScripts(t *testing.T) {
	for shell, want := range map[string]string{
		"bash": "# bash completion V2 for minidock",
		"zsh":  "#compdef minidock",
		"fish": "# fish completion for minidock",
	} {
		out, errOut, code := runCLI(t, "completion", shell)
		if code != 0 || errOut != "" || !strings.HasPrefix(out, want) || !strings.Contains(out, "__complete") {
			t.Errorf("completion %s: exit %d, stderr %q, script starts %.60q", shell, code, errOut, out)
		}
	}
	// commands and flags complete without a daemon
	out, _, _ := runCLI(t, "__complete", "net")
	if !strings.HasPrefix(out, "network\tManage networks\n") {
		t.Errorf("__complete net: %q", out)
	}
	out, _, _ = runCLI(t, "__complete", "run", "--det")
	if !strings.HasPrefix(out, "--detach\t") {
		t.Errorf("__complete run --det: %q", out)
	}
}

// Docker's spellings parse into the create request: long and short
// names, combined short flags, ports and exposed ranges; flags after the
// image belong to the container's command.
func TestRunFlagsToRequest(t *testing.T) {
	var o containerOptions
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	o.addFlags(fs)
	if err := fs.Parse([]string{"-it", "--rm", "-p", "0:80", "-p", "127.0.0.1::81/udp", "--expose", "90-91",
		"-e", "A=1", "--env", "B=2", "-m", "64m", "--restart", "on-failure:3", "-l", "k=v", "busybox", "ls", "-l"}); err != nil {
		t.Fatal(err)
	}
	args := fs.Args()
	req, err := o.request(args[0], args[1:], true)
	if err != nil {
		t.Fatal(err)
	}
	want := &api.ContainerCreateRequest{
		ContainerConfig: api.ContainerConfig{
			Image: "busybox", Cmd: []string{"ls", "-l"}, Env: []string{"A=1", "B=2"}, Tty: true, OpenStdin: true,
			StdinOnce: true, AttachStdin: true, AttachStdout: true, AttachStderr: true, Labels: map[string]string{"k": "v"},
			ExposedPorts: map[string]struct{}{"80/tcp": {}, "81/udp": {}, "90/tcp": {}, "91/tcp": {}},
		},
		HostConfig: &api.HostConfig{
			AutoRemove: true, Memory: 64 << 20, RestartPolicy: api.RestartPolicy{Name: "on-failure", MaximumRetryCount: 3},
			PortBindings: map[string][]api.PortBinding{"80/tcp": {{}}, "81/udp": {{HostIP: "127.0.0.1"}}},
		},
	}
	if !reflect.DeepEqual(req, want) {
		t.Errorf("request:\n got %+v %+v\nwant %+v %+v", req.ContainerConfig, req.HostConfig, want.ContainerConfig, want.HostConfig)
	}
	for _, bad := range [][]string{{"--restart", "sometimes", "x"}, {"-p", "99999", "x"}, {"--expose", "0", "x"}} {
		var o containerOptions
		fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
		o.addFlags(fs)
		if err := fs.Parse(bad); err != nil {
			t.Fatal(err)
		}
		if _, err := o.request("x", nil, true); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
