package build

import (
	"fmt"
	"strconv"
	"strings"
)

// stage is one FROM and the commands up to the next FROM.
type stage struct {
	index    int
	from     *fromCmd
	commands []command
}

// plan is a Dockerfile cut into stages, each instruction parsed.
type plan struct {
	escape   rune
	metaArgs []*argCmd // the ARGs before the first FROM
	stages   []*stage
}

// newPlan parses every instruction of df and groups them into stages:
// only ARG may come before the first FROM; stage names are unique.
func newPlan(df *Dockerfile) (*plan, error) {
	p := &plan{escape: df.Escape}
	names := map[string]int{}
	for _, ins := range df.Instructions {
		c, err := parseCommand(ins, df.Escape)
		if err != nil {
			return nil, err
		}
		switch c := c.(type) {
		case *fromCmd:
			if c.name != "" {
				if line, dup := names[c.name]; dup {
					return nil, lineError(ins.Line, "stage name %q is already used on line %d", c.name, line)
				}
				names[c.name] = ins.Line
			}
			p.stages = append(p.stages, &stage{index: len(p.stages), from: c})
			continue
		case *argCmd:
			if len(p.stages) == 0 {
				p.metaArgs = append(p.metaArgs, c)
				continue
			}
		}
		if len(p.stages) == 0 {
			return nil, lineError(ins.Line, "%s comes before the first FROM: only ARG may", ins.Cmd)
		}
		last := p.stages[len(p.stages)-1]
		if cp, ok := c.(*copyCmd); ok {
			if _, err := p.copyFromStage(cp.from, last.index); cp.from != "" && err != nil {
				return nil, lineError(ins.Line, "%s %v", ins.Cmd, err)
			}
		}
		last.commands = append(last.commands, c)
	}
	if len(p.stages) == 0 {
		return nil, fmt.Errorf("the Dockerfile has no FROM")
	}
	if err := p.checkArgUses(); err != nil {
		return nil, err
	}
	return p, nil
}

// target returns the stage named (or numbered) target, or the last one.
func (p *plan) target(target string) (*stage, error) {
	if target == "" {
		return p.stages[len(p.stages)-1], nil
	}
	if s := p.stageNamed(strings.ToLower(target), len(p.stages)); s != nil {
		return s, nil
	}
	return nil, fmt.Errorf("target stage %q could not be found", target)
}

// stageNamed finds a stage before index before by its AS name.
func (p *plan) stageNamed(name string, before int) *stage {
	for _, s := range p.stages[:before] {
		if s.from.name != "" && s.from.name == name {
			return s
		}
	}
	return nil
}

// copyFromStage resolves COPY --from's value in stage index: an earlier
// stage's name or number, else nil (an image).
func (p *plan) copyFromStage(ref string, index int) (*stage, error) {
	if n, err := strconv.Atoi(ref); err == nil {
		if n < 0 || n >= index {
			return nil, fmt.Errorf("--from=%d: only an earlier stage (0 to %d) can be copied from", n, index-1)
		}
		return p.stages[n], nil
	}
	return p.stageNamed(ref, index), nil
}

// needed lists the stages that building target takes, in file order:
// target, the stages its FROM and its COPY --from name, and theirs.
// FROM and --from see only the ARGs before the first FROM (meta).
func (p *plan) needed(target *stage, meta *expander) ([]*stage, error) {
	mark := make([]bool, len(p.stages))
	var visit func(s *stage) error
	visit = func(s *stage) error {
		if mark[s.index] {
			return nil
		}
		mark[s.index] = true
		base, err := meta.word(s.from.image)
		if err != nil {
			return lineError(s.from.ins.Line, "FROM: %v", err)
		}
		if dep := p.stageNamed(base, s.index); dep != nil {
			if err := visit(dep); err != nil {
				return err
			}
		}
		for _, c := range s.commands {
			cp, ok := c.(*copyCmd)
			if !ok || cp.from == "" {
				continue
			}
			ref, err := meta.word(cp.from)
			if err != nil {
				return lineError(cp.ins.Line, "%s --from: %v", cp.ins.Cmd, err)
			}
			dep, err := p.copyFromStage(ref, s.index)
			if err != nil {
				return lineError(cp.ins.Line, "%s %v", cp.ins.Cmd, err)
			}
			if dep != nil {
				if err := visit(dep); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := visit(target); err != nil {
		return nil, err
	}
	var out []*stage
	for _, s := range p.stages {
		if mark[s.index] {
			out = append(out, s)
		}
	}
	return out, nil
}

// checkArgUses refuses a variable used before its ARG: a reference, in a
// stage, to a name that an ARG declares only later in that stage (it
// would silently be empty), and a FROM that uses an ARG declared inside
// a stage (FROM sees only the ARGs before the first FROM).
func (p *plan) checkArgUses() error {
	meta := map[string]bool{}
	for _, a := range p.metaArgs {
		for _, d := range a.args {
			meta[d.name] = true
		}
	}
	inStage := map[string]int{} // name -> line of its first ARG in a stage
	for _, s := range p.stages {
		for _, c := range s.commands {
			if a, ok := c.(*argCmd); ok {
				for _, d := range a.args {
					if _, seen := inStage[d.name]; !seen {
						inStage[d.name] = a.ins.Line
					}
				}
			}
		}
	}
	for _, s := range p.stages {
		for _, n := range p.references(s.from) {
			if line, ok := inStage[n]; ok && !meta[n] {
				return lineError(s.from.ins.Line, "FROM uses $%s, declared by the ARG on line %d inside a stage; FROM sees only the ARGs before the first FROM", n, line)
			}
		}
		argLine := map[string]int{} // first ARG of each name in this stage
		for _, c := range s.commands {
			if a, ok := c.(*argCmd); ok {
				for _, d := range a.args {
					if _, seen := argLine[d.name]; !seen {
						argLine[d.name] = a.ins.Line
					}
				}
			}
		}
		declared := map[string]bool{}
		for _, c := range s.commands {
			line := c.source().Line
			check := func(names []string) error {
				for _, n := range names {
					if l, ok := argLine[n]; ok && l > line && !declared[n] {
						return lineError(line, "$%s is used before its ARG (line %d) declares it", n, l)
					}
				}
				return nil
			}
			switch c := c.(type) {
			case *argCmd:
				for i, d := range c.args {
					if d.value == nil {
						declared[d.name] = true
						continue
					}
					names := p.names(*d.value)
					if err := check(names); err != nil {
						return err
					}
					for _, later := range c.args[i+1:] {
						for _, n := range names {
							if n == later.name && !declared[n] {
								return lineError(line, "$%s is used before its ARG declares it", n)
							}
						}
					}
					declared[d.name] = true
				}
				continue
			case *envCmd:
				if err := check(p.references(c)); err != nil {
					return err
				}
				for _, kv := range c.pairs {
					declared[kv.key] = true
				}
				continue
			}
			if err := check(p.references(c)); err != nil {
				return err
			}
		}
	}
	return nil
}

// names lists the variables a word substitutes.
func (p *plan) names(word string) []string {
	var out []string
	e := &expander{escape: p.escape, seen: func(n string) { out = append(out, n) }}
	e.word(word) // errors are reported when the step runs
	return out
}

// references lists the variables a command uses: those the builder
// substitutes in its words, and those a shell-form RUN line names.
func (p *plan) references(c command) []string {
	var words []string
	switch c := c.(type) {
	case *fromCmd:
		words = []string{c.image, c.platform}
	case *runCmd:
		if c.isExec() {
			return nil
		}
		out := referencedNames(c.shell, p.escape)
		for _, h := range c.ins.Heredocs {
			out = append(out, referencedNames(h.Content, p.escape)...)
		}
		return out
	case *envCmd:
		for _, kv := range c.pairs {
			words = append(words, kv.value)
		}
	case *labelCmd:
		for _, kv := range c.pairs {
			words = append(words, kv.key, kv.value)
		}
	case *exposeCmd:
		words = c.ports
	case *workdirCmd:
		words = []string{c.path}
	case *userCmd:
		words = []string{c.user}
	case *volumeCmd:
		words = c.paths
	case *stopSignalCmd:
		words = []string{c.signal}
	case *copyCmd:
		words = append(append(words, c.srcs...), c.dest, c.chown, c.chmod)
	}
	var out []string
	if cp, ok := c.(*copyCmd); ok {
		for _, h := range cp.ins.Heredocs {
			if h.Expand {
				e := &expander{escape: p.escape, seen: func(n string) { out = append(out, n) }}
				e.text(h.Content)
			}
		}
	}
	for _, w := range words {
		out = append(out, p.names(w)...)
	}
	return out
}
