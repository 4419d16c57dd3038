package build

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// command is one instruction parsed into what it says, its words still
// unsubstituted (that happens when the step runs, with the variables of
// that moment). The builder's step switches on its type.
type command interface{ source() *Instruction }

type at struct{ ins *Instruction }

func (a at) source() *Instruction { return a.ins }

// commandLine is the argument of RUN, CMD, ENTRYPOINT and HEALTHCHECK CMD:
// the exec form (a JSON array) or the shell form (a line for SHELL).
type commandLine struct {
	exec  []string // the JSON array; nil in shell form
	shell string   // the shell form's line
}

func (c commandLine) isExec() bool { return c.exec != nil }

// argv is the process: the exec form as it is, or the shell and the line.
func (c commandLine) argv(shell []string) []string {
	if c.isExec() {
		return append([]string(nil), c.exec...)
	}
	return append(append([]string(nil), shell...), c.shell)
}

type (
	fromCmd struct {
		at
		image, platform, name string // name is AS's, lower case
	}
	runCmd struct {
		at
		commandLine
	}
	cmdCmd struct {
		at
		commandLine
	}
	entrypointCmd struct {
		at
		commandLine
	}
	shellCmd struct {
		at
		argv []string
	}
	envCmd struct {
		at
		pairs []rawPair
	}
	labelCmd struct {
		at
		pairs []rawPair
	}
	argCmd struct {
		at
		args []argDecl
	}
	exposeCmd struct {
		at
		ports []string
	}
	workdirCmd struct {
		at
		path string
	}
	userCmd struct {
		at
		user string
	}
	volumeCmd struct {
		at
		paths []string
	}
	copyCmd struct {
		at
		add                bool // ADD: also URLs and local tar archives
		srcs               []string
		dest               string
		from, chown, chmod string
	}
	stopSignalCmd struct {
		at
		signal string
	}
	healthcheckCmd struct {
		at
		none bool // HEALTHCHECK NONE
		test commandLine
		// timings and retries as given; 0 when not
		interval, timeout, startPeriod, startInterval time.Duration
		retries                                       int
	}
	onbuildCmd struct {
		at
		trigger string // the instruction, as written
	}
	maintainerCmd struct {
		at
		name string
	}
)

// rawPair is one KEY=VALUE of ENV or LABEL, both parts unsubstituted.
type rawPair struct{ key, value string }

// argDecl is one name of ARG, with its default if it has one.
type argDecl struct {
	name  string
	value *string // unsubstituted default; nil: none
}

// parseCommand turns an instruction into its command, checking its form:
// flags, number of arguments, JSON arrays. Errors name the line.
func parseCommand(ins *Instruction, escape rune) (command, error) {
	c, err := parseCommandErr(ins, escape)
	if err != nil {
		return nil, &LineError{Line: ins.Line, Err: fmt.Errorf("%s: %w", ins.Cmd, err)}
	}
	return c, nil
}

func parseCommandErr(ins *Instruction, escape rune) (command, error) {
	a := at{ins}
	allowed := map[string][]string{
		"FROM": {"platform"}, "COPY": {"from", "chown", "chmod"}, "ADD": {"chown", "chmod"},
		"HEALTHCHECK": {"interval", "timeout", "start-period", "start-interval", "retries"},
	}
	flags, err := parseFlags(ins, allowed[ins.Cmd])
	if err != nil {
		return nil, err
	}
	args := ins.Args
	words := rawWords(args, escape)
	if len(ins.Heredocs) > 0 && ins.Cmd != "RUN" && ins.Cmd != "COPY" && ins.Cmd != "ADD" {
		return nil, fmt.Errorf("here-documents are only for RUN, COPY and ADD")
	}
	switch ins.Cmd {
	case "FROM":
		c := &fromCmd{at: a, platform: flags["platform"]}
		switch {
		case len(words) == 1:
		case len(words) == 3 && strings.EqualFold(words[1], "AS"):
			c.name = strings.ToLower(words[2])
			if !stageNameRE().MatchString(c.name) {
				return nil, fmt.Errorf("invalid stage name %q: it must start with a letter and hold only letters, digits, '-', '_' and '.'", words[2])
			}
		default:
			return nil, fmt.Errorf("expected FROM [--platform=P] IMAGE [AS NAME], got %q", args)
		}
		c.image = words[0]
		return c, nil
	case "RUN":
		cl, err := parseCommandLine(args, len(ins.Heredocs) > 0)
		if err != nil {
			return nil, err
		}
		return &runCmd{a, cl}, nil
	case "CMD":
		cl, err := parseCommandLine(args, false)
		if err != nil {
			return nil, err
		}
		return &cmdCmd{a, cl}, nil
	case "ENTRYPOINT":
		cl, err := parseCommandLine(args, false)
		if err != nil {
			return nil, err
		}
		return &entrypointCmd{a, cl}, nil
	case "SHELL":
		argv, ok := jsonArray(args)
		if !ok || len(argv) == 0 {
			return nil, fmt.Errorf(`requires a JSON array, e.g. SHELL ["/bin/bash", "-c"]`)
		}
		return &shellCmd{a, argv}, nil
	case "ENV", "LABEL":
		pairs, err := parsePairs(args, words)
		if err != nil {
			return nil, err
		}
		if ins.Cmd == "ENV" {
			return &envCmd{a, pairs}, nil
		}
		return &labelCmd{a, pairs}, nil
	case "ARG":
		if len(words) == 0 {
			return nil, fmt.Errorf("requires at least one name")
		}
		c := &argCmd{at: a}
		for _, w := range words {
			name, value, hasValue := strings.Cut(w, "=")
			if !envNameRE().MatchString(name) {
				return nil, fmt.Errorf("invalid name %q", name)
			}
			d := argDecl{name: name}
			if hasValue {
				d.value = &value
			}
			c.args = append(c.args, d)
		}
		return c, nil
	case "EXPOSE":
		if len(words) == 0 {
			return nil, fmt.Errorf("requires at least one port")
		}
		return &exposeCmd{a, words}, nil
	case "WORKDIR":
		if args == "" {
			return nil, fmt.Errorf("requires a path")
		}
		return &workdirCmd{a, args}, nil
	case "USER":
		if len(words) != 1 {
			return nil, fmt.Errorf("requires exactly one user[:group], got %q", args)
		}
		return &userCmd{a, words[0]}, nil
	case "VOLUME":
		paths, ok := jsonArray(args)
		if !ok {
			paths = words
		}
		if len(paths) == 0 {
			return nil, fmt.Errorf("requires at least one path")
		}
		return &volumeCmd{a, paths}, nil
	case "COPY", "ADD":
		c := &copyCmd{at: a, add: ins.Cmd == "ADD", from: flags["from"], chown: flags["chown"], chmod: flags["chmod"]}
		list, ok := jsonArray(args)
		if !ok {
			list = words
		}
		n := len(list) + len(ins.Heredocs)
		for _, w := range list {
			if _, isDoc := heredocWord(w); isDoc {
				n-- // counted with the heredocs
			}
		}
		if len(list) == 0 || n < 2 {
			return nil, fmt.Errorf("requires at least one source and a destination")
		}
		for _, w := range list[:len(list)-1] {
			if _, isDoc := heredocWord(w); !isDoc {
				c.srcs = append(c.srcs, w)
			}
		}
		c.dest = list[len(list)-1]
		if c.chmod != "" && !strings.Contains(c.chmod, "$") {
			if _, err := parseChmod(c.chmod); err != nil {
				return nil, err
			}
		}
		return c, nil
	case "STOPSIGNAL":
		if len(words) != 1 {
			return nil, fmt.Errorf("requires exactly one signal, got %q", args)
		}
		return &stopSignalCmd{a, words[0]}, nil
	case "HEALTHCHECK":
		return parseHealthcheck(a, flags, args)
	case "ONBUILD":
		return parseOnbuild(a, args, escape)
	case "MAINTAINER":
		if args == "" {
			return nil, fmt.Errorf("requires a name")
		}
		return &maintainerCmd{a, args}, nil
	}
	return nil, fmt.Errorf("unknown instruction")
}

var (
	stageNameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z][a-z0-9\-_.]*$`) })
	envNameRE   = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`) })
)

// isBuildkitFlag tells the flags only BuildKit knows: naming them beats
// "unknown".
func isBuildkitFlag(name string) bool {
	switch name {
	case "mount", "network", "security", "link", "parents", "exclude", "checksum", "keep-git-dir", "device":
		return true
	}
	return false
}

// parseFlags checks ins's flags against the names allowed and returns
// their values ("" for a flag without one is refused: all take values).
func parseFlags(ins *Instruction, allowed []string) (map[string]string, error) {
	out := map[string]string{}
	for _, f := range ins.Flags {
		name, value, hasValue := strings.Cut(strings.TrimPrefix(f, "--"), "=")
		ok := false
		for _, a := range allowed {
			ok = ok || a == name
		}
		switch {
		case !ok && isBuildkitFlag(name):
			return nil, fmt.Errorf("flag --%s is a BuildKit feature; the classic builder does not have it", name)
		case !ok:
			return nil, fmt.Errorf("unknown flag --%s", name)
		case !hasValue || value == "":
			return nil, fmt.Errorf("flag --%s needs a value (--%s=VALUE)", name, name)
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("flag --%s is given twice", name)
		}
		out[name] = value
	}
	return out, nil
}

// jsonArray parses args as a JSON array of strings: the exec form.
func jsonArray(args string) ([]string, bool) {
	if !strings.HasPrefix(strings.TrimSpace(args), "[") {
		return nil, false
	}
	var out []string
	if err := json.Unmarshal([]byte(args), &out); err != nil {
		return nil, false
	}
	if out == nil {
		out = []string{}
	}
	return out, true
}

// parseCommandLine reads the exec form when args is a JSON array, else
// the shell form (always with here-documents).
func parseCommandLine(args string, heredoc bool) (commandLine, error) {
	if argv, ok := jsonArray(args); ok && !heredoc {
		return commandLine{exec: argv}, nil
	}
	if strings.TrimSpace(args) == "" {
		return commandLine{}, fmt.Errorf("requires a command")
	}
	return commandLine{shell: args}, nil
}

// parsePairs reads ENV's and LABEL's KEY=VALUE words, or the older form
// "KEY VALUE..." (one pair, the value is the rest of the line).
func parsePairs(args string, words []string) ([]rawPair, error) {
	if len(words) == 0 {
		return nil, fmt.Errorf("requires at least one KEY=VALUE")
	}
	if !strings.Contains(words[0], "=") {
		key, rest := cutWord(args)
		if rest == "" {
			return nil, fmt.Errorf("%q has no value (KEY=VALUE, or KEY VALUE)", key)
		}
		return []rawPair{{key, rest}}, nil
	}
	var out []rawPair
	for _, w := range words {
		k, v, ok := strings.Cut(w, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%q is not KEY=VALUE", w)
		}
		out = append(out, rawPair{k, v})
	}
	return out, nil
}

// parseHealthcheck reads HEALTHCHECK NONE or HEALTHCHECK [flags] CMD ...
func parseHealthcheck(a at, flags map[string]string, args string) (command, error) {
	c := &healthcheckCmd{at: a}
	word, rest := cutWord(args)
	switch strings.ToUpper(word) {
	case "NONE":
		if rest != "" || len(flags) > 0 {
			return nil, fmt.Errorf("NONE takes no flags or arguments")
		}
		c.none = true
		return c, nil
	case "CMD":
	default:
		return nil, fmt.Errorf("expected NONE or CMD, got %q", word)
	}
	cl, err := parseCommandLine(rest, false)
	if err != nil {
		return nil, err
	}
	c.test = cl
	for _, d := range []struct {
		name string
		to   *time.Duration
	}{{"interval", &c.interval}, {"timeout", &c.timeout}, {"start-period", &c.startPeriod}, {"start-interval", &c.startInterval}} {
		v, ok := flags[d.name]
		if !ok {
			continue
		}
		dur, err := time.ParseDuration(v)
		if err != nil {
			return nil, fmt.Errorf("--%s: %w", d.name, err)
		}
		if dur != 0 && dur < time.Millisecond {
			return nil, fmt.Errorf("--%s cannot be less than 1ms", d.name)
		}
		*d.to = dur
	}
	if v, ok := flags["retries"]; ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("--retries must be a number >= 0, got %q", v)
		}
		c.retries = n
	}
	return c, nil
}

// parseOnbuild checks ONBUILD's trigger: an instruction itself, and not
// one that cannot run later (FROM, ONBUILD, MAINTAINER).
func parseOnbuild(a at, args string, escape rune) (command, error) {
	word, _ := cutWord(args)
	switch kw := strings.ToUpper(word); {
	case kw == "":
		return nil, fmt.Errorf("requires an instruction")
	case kw == "ONBUILD" || kw == "FROM" || kw == "MAINTAINER":
		return nil, fmt.Errorf("%s is not allowed as an ONBUILD trigger", kw)
	case !isInstruction(kw):
		return nil, fmt.Errorf("unknown instruction %q", word)
	}
	if _, err := parseTrigger(args, escape); err != nil {
		return nil, err
	}
	return &onbuildCmd{a, args}, nil
}

// parseTrigger parses an ONBUILD trigger, one instruction on one line.
func parseTrigger(trigger string, escape rune) (command, error) {
	p := &parser{df: &Dockerfile{Escape: escape}, lines: []string{trigger}}
	ins, err := p.instruction()
	if err != nil {
		return nil, err
	}
	if ins == nil {
		return nil, fmt.Errorf("empty ONBUILD trigger")
	}
	c, err := parseCommandErr(ins, escape)
	if err != nil {
		return nil, fmt.Errorf("ONBUILD %s: %w", ins.Cmd, err)
	}
	return c, nil
}

// parseChmod reads --chmod's octal mode.
func parseChmod(s string) (int64, error) {
	m, err := strconv.ParseUint(s, 8, 32)
	if err != nil || m > 0o7777 {
		return 0, fmt.Errorf("--chmod=%s: not an octal mode (e.g. 755)", s)
	}
	return int64(m), nil
}
