package build

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse: a Dockerfile either is refused with an error or parses into
// instructions in line order, each a known keyword, whose commands parse
// or are refused, and whose stages plan or are refused; nothing panics.
// The seeds are the build tests' Dockerfiles.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*/Dockerfile")
	for _, p := range files {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte("# escape=`\nFROM busybox AS a\nRUN echo `\n  hi\nCOPY --from=a <<EOF /x\nhello\nEOF\n"))
	f.Add([]byte("ARG X=1\nFROM ${X:-busybox}\nONBUILD RUN true\nHEALTHCHECK --interval=1s CMD true\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		df, err := Parse(bytes.NewReader(data))
		if err != nil {
			return
		}
		last := 0
		for _, ins := range df.Instructions {
			if ins.Line <= last || ins.EndLine < ins.Line || !isInstruction(ins.Cmd) || ins.Cmd != strings.ToUpper(ins.Cmd) {
				t.Fatalf("instruction %+v after line %d", ins, last)
			}
			last = ins.EndLine
			parseCommand(ins, df.Escape)
		}
		newPlan(df)
	})
}
