// Package doccheck finds the Go names the docs point at that the code does
// not have. The docs (docs/*.md, README.md) send a reader to the code by
// name, in backticks: `rootfs.PivotRoot`, `daemon.Daemon.Info`,
// `runtime.(*Container).Start`, `(*Container).Start`. A name that was
// renamed or never existed sends the reader nowhere; Check lists each one
// with its file and line, and doccheck_test.go fails on any. The same for
// the files of the repository they name (`runtime/init.go`).
//
// What counts as a name: in an inline code span (fenced blocks are shell
// sessions and are left out), pkg.Name, pkg.Type.Member, pkg.(*T).M or
// (*T).M, where pkg is the name of a package of this module and Name has a
// capital letter or is called (`pkg.name(`): `cgroup.procs`, `memory.max`
// and `kernel.unprivileged_userns_clone` are files and sysctls, not Go.
// pkg.Name may be a method of one of the package's types, as prose often
// shortens Type.Method (`daemon.Explain`).
// The code is read with go/parser, every package of the module (tests
// included, generated code too), and Go's standard library for a package
// name both have (`runtime.NumCPU`).
package doccheck

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	goruntime "runtime"
	"sort"
	"strings"
)

// Missing is a name a doc gives that the code does not have, or a file
// of the repository it names that is not there.
type Missing struct {
	File string // the doc, relative to the module's root
	Line int
	Name string // as written: pkg.Name, pkg.Type.Member, pkg.(*T).M, (*T).M
}

func (m Missing) String() string { return fmt.Sprintf("%s:%d: %s", m.File, m.Line, m.Name) }

// Check reads the docs under root (docs/*.md and README.md) and the Go
// packages of the module at root, and returns the names the docs give
// that no package declares, in the order of the files and lines.
func Check(root string) ([]Missing, error) {
	code, err := Load(root)
	if err != nil {
		return nil, err
	}
	docs, _ := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	docs = append(docs, filepath.Join(root, "README.md"))
	var missing []Missing
	for _, doc := range docs {
		data, err := os.ReadFile(doc)
		if err != nil {
			return nil, fmt.Errorf("read doc %s: %w", doc, err)
		}
		rel, _ := filepath.Rel(root, doc)
		for _, ref := range Names(string(data)) {
			if !code.Has(ref) {
				missing = append(missing, Missing{File: rel, Line: ref.Line, Name: ref.Text})
			}
		}
		for _, ref := range Files(string(data)) {
			if !fileExists(root, ref.Text) {
				missing = append(missing, Missing{File: rel, Line: ref.Line, Name: ref.Text})
			}
		}
	}
	return missing, nil
}

// Ref is one name found in a doc.
type Ref struct {
	Line int
	Text string // as written
	Pkg  string // "" for (*T).M
	Path []string
	// Path is what follows the package: [Name], [Type, Member] or, for
	// (*T).M, [T, M].
}

var (
	fence    = regexp.MustCompile("(?m)^ {0,3}(```|~~~).*$")
	codeSpan = regexp.MustCompile("`[^`]+`")
	// pkg.(*T).M | (*T).M | pkg.A | pkg.A.B, then maybe "("
	goName = regexp.MustCompile(`(?:\b([a-z][a-z0-9]*)\.)?\(\*([A-Za-z_]\w*)\)\.([A-Za-z_]\w*)|\b([a-z][a-z0-9]*)\.([A-Za-z_]\w*)(?:\.([A-Za-z_]\w*))?(\()?`)
)

// Names returns the Go names given in the inline code spans of a
// Markdown text, with their lines.
func Names(text string) []Ref {
	text = blankFences(text)
	var refs []Ref
	for _, span := range codeSpan.FindAllStringIndex(text, -1) {
		s := text[span[0]:span[1]]
		line := 1 + strings.Count(text[:span[0]], "\n")
		for _, m := range goName.FindAllStringSubmatchIndex(s, -1) {
			g := func(i int) string {
				if m[2*i] < 0 {
					return ""
				}
				return s[m[2*i]:m[2*i+1]]
			}
			if start := m[0]; start > 0 && strings.ContainsRune("/.-$", rune(s[start-1])) {
				continue // a path (rootfs/mount.go), a host (x.y.z), a variable ($x.y)
			}
			ref := Ref{Line: line + strings.Count(s[:m[0]], "\n"), Text: strings.TrimSuffix(g(0), "(")}
			if g(2) != "" { // (*T).M
				ref.Pkg, ref.Path = g(1), []string{g(2), g(3)}
			} else {
				name := g(5)
				if !hasUpper(name) && g(7) == "" {
					continue // a file or a sysctl: cgroup.procs, memory.max
				}
				ref.Pkg, ref.Path = g(4), []string{name}
				if g(6) != "" {
					ref.Path = append(ref.Path, g(6))
				}
			}
			refs = append(refs, ref)
		}
	}
	return refs
}

// filePath is a file of the repository as the docs name one: a relative
// path with at least one directory, ending in .go or .sh
// (`runtime/init.go`, `tests/vm/lib.sh`), alone in its code span or
// followed by a line number or a space (`shim/log.go` `jsonLog`).
var filePath = regexp.MustCompile("`((?:[A-Za-z0-9_.-]+/)+[A-Za-z0-9_.-]+\\.(?:go|sh))(?:[: ][^`]*)?`")

// Files returns the repository files named in the inline code spans of a
// Markdown text, with their lines (Ref.Text is the path).
func Files(text string) []Ref {
	text = blankFences(text)
	var refs []Ref
	for _, m := range filePath.FindAllStringSubmatchIndex(text, -1) {
		refs = append(refs, Ref{Line: 1 + strings.Count(text[:m[0]], "\n"), Text: text[m[2]:m[3]]})
	}
	return refs
}

// fileExists: the path from the module's root, or (../x) from docs/.
func fileExists(root, path string) bool {
	for _, p := range []string{filepath.Join(root, path), filepath.Join(root, "docs", path)} {
		if _, err := os.Stat(p); err == nil {
			return true
		}
	}
	return false
}

// blankFences replaces the lines of fenced code blocks by empty lines,
// keeping the line numbers of the rest.
func blankFences(text string) string {
	lines := strings.Split(text, "\n")
	in := false
	for i, l := range lines {
		if fence.MatchString(l) {
			in = !in
			lines[i] = ""
			continue
		}
		if in {
			lines[i] = ""
		}
	}
	return strings.Join(lines, "\n")
}

func hasUpper(s string) bool { return strings.ToLower(s) != s }

// Code is what the module's packages declare, by package name (several
// directories may share one: daemon/server and registry/server).
type Code struct {
	byName map[string][]*Package
	stdlib map[string]*Package // loaded on demand
	goroot string
}

// Package is one directory's declarations.
type Package struct {
	Dir   string
	Decls map[string]bool // top-level funcs, types, vars, consts
	// Methods: every method name of the package's types; pkg.Method is
	// how prose often names one (`daemon.Explain` for Daemon.Explain).
	Methods map[string]bool
	Types   map[string]map[string]bool // type -> its methods and struct fields
	// Embeds: types that embed another, whose members are the embedded
	// type's too; a member of such a type is not reported.
	Embeds map[string]bool
}

// Load parses every package of the module at root.
func Load(root string) (*Code, error) {
	c := &Code{byName: map[string][]*Package{}, stdlib: map[string]*Package{}, goroot: goruntime.GOROOT()}
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		if n := d.Name(); path != root && (strings.HasPrefix(n, ".") || n == "testdata" || n == "vendor") {
			return filepath.SkipDir
		}
		name, p, err := parseDir(path)
		if err != nil {
			return err
		}
		if p != nil {
			c.byName[name] = append(c.byName[name], p)
		}
		return nil
	})
	return c, err
}

// parseDir reads the Go files of one directory; a nil Package when there
// are none.
func parseDir(dir string) (string, *Package, error) {
	fset := token.NewFileSet()
	files, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	if len(files) == 0 {
		return "", nil, nil
	}
	p := &Package{Dir: dir, Decls: map[string]bool{}, Methods: map[string]bool{}, Types: map[string]map[string]bool{}, Embeds: map[string]bool{}}
	name := ""
	for _, f := range files {
		af, err := parser.ParseFile(fset, f, nil, parser.SkipObjectResolution)
		if err != nil {
			return "", nil, fmt.Errorf("parse %s: %w", f, err)
		}
		n := strings.TrimSuffix(af.Name.Name, "_test")
		if name == "" || !strings.HasSuffix(f, "_test.go") {
			name = n
		}
		p.add(af)
	}
	return name, p, nil
}

func (p *Package) members(t string) map[string]bool {
	if p.Types[t] == nil {
		p.Types[t] = map[string]bool{}
	}
	return p.Types[t]
}

func (p *Package) add(f *ast.File) {
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.FuncDecl:
			if d.Recv == nil || len(d.Recv.List) == 0 {
				p.Decls[d.Name.Name] = true
				continue
			}
			if t := recvType(d.Recv.List[0].Type); t != "" {
				p.members(t)[d.Name.Name] = true
			}
			p.Methods[d.Name.Name] = true
		case *ast.GenDecl:
			for _, s := range d.Specs {
				switch s := s.(type) {
				case *ast.TypeSpec:
					p.Decls[s.Name.Name] = true
					p.addFields(s.Name.Name, s.Type)
				case *ast.ValueSpec:
					for _, n := range s.Names {
						p.Decls[n.Name] = true
					}
				}
			}
		}
	}
}

// addFields records a struct's fields and an interface's methods as
// members of type t.
func (p *Package) addFields(t string, e ast.Expr) {
	m := p.members(t)
	switch e := e.(type) {
	case *ast.StructType:
		for _, f := range e.Fields.List {
			if len(f.Names) == 0 {
				p.Embeds[t] = true
				if n := recvType(f.Type); n != "" {
					m[n] = true
				}
			}
			for _, n := range f.Names {
				m[n.Name] = true
			}
		}
	case *ast.InterfaceType:
		for _, f := range e.Methods.List {
			if len(f.Names) == 0 {
				p.Embeds[t] = true
			}
			for _, n := range f.Names {
				m[n.Name] = true
			}
		}
	}
}

// recvType is the name of a receiver's (or an embedded field's) type:
// T, *T, T[P], pkg.T.
func recvType(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.StarExpr:
		return recvType(e.X)
	case *ast.Ident:
		return e.Name
	case *ast.IndexExpr:
		return recvType(e.X)
	case *ast.IndexListExpr:
		return recvType(e.X)
	case *ast.SelectorExpr:
		return e.Sel.Name
	}
	return ""
}

// Has reports whether a package of that name declares the name. A
// package name that is not the module's (unix.Mount, specs.Spec) is not
// the docs' to check here and counts as found.
func (c *Code) Has(r Ref) bool {
	var pkgs []*Package
	if r.Pkg == "" { // (*T).M: any package
		for _, ps := range c.byName {
			pkgs = append(pkgs, ps...)
		}
	} else {
		pkgs = c.byName[r.Pkg]
		if len(pkgs) == 0 {
			return true
		}
		if std := c.std(r.Pkg); std != nil {
			pkgs = append(pkgs, std)
		}
	}
	for _, p := range pkgs {
		if p.has(r.Path) {
			return true
		}
	}
	return false
}

func (p *Package) has(path []string) bool {
	if len(path) == 1 {
		return p.Decls[path[0]] || p.Methods[path[0]]
	}
	if !p.Decls[path[0]] {
		return false
	}
	return p.Types[path[0]][path[1]] || p.Embeds[path[0]]
}

// std is the standard library's package of that name (runtime, trace),
// or nil.
func (c *Code) std(name string) *Package {
	if p, ok := c.stdlib[name]; ok {
		return p
	}
	var found *Package
	for _, dir := range []string{name, "runtime/" + name, "os/" + name, "net/" + name, "encoding/" + name} {
		if _, p, err := parseDir(filepath.Join(c.goroot, "src", dir)); err == nil && p != nil {
			found = p
			break
		}
	}
	c.stdlib[name] = found
	return found
}

// Packages lists the package names Load found, sorted (for messages).
func (c *Code) Packages() []string {
	var names []string
	for n := range c.byName {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
