package dockerignore

import "testing"

func TestIgnoreRules(t *testing.T) {
	ig, err := Parse("# comment\n" +
		"*.log\n" +
		"/build\n" +
		"docs/**/*.tmp\n" +
		"secret*\n" +
		"!secret-ok\n" +
		"vendor\n" +
		"!vendor/keep/**\n" +
		"./tmp/\n" +
		"**/node_modules\n" +
		"a?c\n")
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]bool{
		"app.log":                 true,
		"dir/app.log":             false, // * stays within one element
		"build":                   true,
		"build/out/x":             true, // a parent matches
		"src/build":               false,
		"docs/a.tmp":              true, // ** matches no element too
		"docs/x/y/a.tmp":          true,
		"docs/a.txt":              false,
		"secret.txt":              true,
		"secret-ok":               false, // the exception wins: it comes last
		"vendor/x.go":             true,
		"vendor/keep/y.go":        false,
		"vendor/keep":             true, // the exception names what is below it
		"tmp/t":                   true,
		"a/b/node_modules/m/i.js": true,
		"node_modules":            true,
		"abc":                     true,
		"abbc":                    false,
		"Dockerfile":              false,
	} {
		if got := ig.Excluded(path); got != want {
			t.Errorf("Excluded(%q) = %v, want %v", path, got, want)
		}
	}
	// the last matching rule decides
	ig, _ = Parse("!keep\n*\n")
	if !ig.Excluded("keep") {
		t.Error("an exception before * should be overridden by it")
	}
	if _, err := Parse("[\n"); err == nil {
		t.Error("bad pattern accepted")
	}
}
