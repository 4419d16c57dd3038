package daemon

import (
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeLog writes a json-file log of lines into a new file and returns
// it open; lines[i] is the text of line i.
func writeLog(t *testing.T, lines []string, tail string) *os.File {
	t.Helper()
	var b strings.Builder
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i, l := range lines {
		stream := "stdout"
		if i%3 == 2 {
			stream = "stderr"
		}
		fmt.Fprintf(&b, `{"log":%q,"stream":%q,"time":%q}`+"\n", l, stream, t0.Add(time.Duration(i)*time.Second).Format(time.RFC3339Nano))
	}
	b.WriteString(tail)
	p := filepath.Join(t.TempDir(), "c-json.log")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// firstFrom is the log text of the line at off (and what follows).
func firstFrom(t *testing.T, f *os.File, off int64) string {
	t.Helper()
	data := make([]byte, 200)
	n, err := f.ReadAt(data, off)
	if err != nil && err != io.EOF {
		t.Fatal(err)
	}
	s := string(data[:n])
	if s == "" || s[0] != '{' {
		return s
	}
	return strings.TrimPrefix(s, `{"log":"`)
}

// tailStart finds the start of the wanted lines from the end: the last
// n, the last n of one stream, those since a time; lines longer than a
// block; an unfinished last line left out; n beyond the log's lines.
func TestTailStart(t *testing.T) {
	var lines []string
	for i := 0; i < 3000; i++ {
		lines = append(lines, fmt.Sprintf("line %d", i))
	}
	lines[2990] = "long " + strings.Repeat("x", 3*tailBlock) // spans blocks
	f := writeLog(t, lines, `{"log":"unfinished`)
	all := LogsOptions{Stdout: true, Stderr: true}
	stderr := LogsOptions{Stderr: true}
	since := LogsOptions{Stdout: true, Stderr: true, Since: time.Date(2026, 1, 1, 0, 49, 50, 0, time.UTC)} // line 2990
	for _, tc := range []struct {
		o    LogsOptions
		n    int
		want string
	}{
		{all, 1, "line 2999"},
		{all, 5, "line 2995"},
		{all, 10, "long "},
		{all, 11, "line 2989"},
		{all, 3000, "line 0"},
		{all, 999999999, "line 0"},
		{stderr, 2, "line 2996"},
		{since, math.MaxInt, "long "},
		{since, 3, "line 2997"},
		{LogsOptions{Stdout: true, Stderr: true, Since: time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)}, math.MaxInt, "unfinished"},
	} {
		off, err := tailStart(f, tc.n, tc.o.keep)
		if err != nil {
			t.Fatal(err)
		}
		if got := firstFrom(t, f, off); !strings.HasPrefix(got, tc.want) {
			t.Errorf("tail %d of %+v starts with %.40q, want %q", tc.n, tc.o, got, tc.want)
		}
	}
	// tail 0 is the end; an empty log is empty
	if off, _ := tailStart(f, 0, all.keep); firstFrom(t, f, off) != "" {
		t.Errorf("tail 0 starts at %d", off)
	}
	if off, err := tailStart(writeLog(t, nil, ""), 5, all.keep); off != 0 || err != nil {
		t.Errorf("empty log: %d, %v", off, err)
	}
}
