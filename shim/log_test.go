package shim

import (
	"bytes"
	"encoding/json"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"minidock/api"
)

// appendJSONString must write what encoding/json writes, byte for byte.
func TestAppendJSONString(t *testing.T) {
	cases := []string{"", "hello\n", `quote " backslash \ slash /`, "<a href=\"x\">&amp;</a>",
		"\x00\x01\x07\b\f\n\r\t\x1b\x1f\x7f", "héllo wörld ✓ 😀", "bad \xff\xfe utf8 \xe2\x82", "\u2028\u2029",
		strings.Repeat("x", 20000)}
	rnd := rand.New(rand.NewSource(1))
	for i := 0; i < 2000; i++ {
		b := make([]byte, rnd.Intn(40))
		rnd.Read(b)
		cases = append(cases, string(b))
	}
	for _, c := range cases {
		want, _ := json.Marshal(c)
		if got := appendJSONString([]byte("prefix"), []byte(c)); string(got) != "prefix"+string(want) {
			t.Fatalf("appendJSONString(%q) = %s, want %s", c, got[6:], want)
		}
	}
}

// The log is json.Marshal(LogEntry) per line; lines are cut at 16 KiB and
// the unfinished last line waits for the next read (or the flush).
func TestLogLines(t *testing.T) {
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "log"))
	if err != nil {
		t.Fatal(err)
	}
	l := &jsonLog{f: f}
	long := strings.Repeat("y", 40000)
	var in []string
	for _, chunk := range []string{"one\ntw", "o\n", "", "three", " still three\nfour <&>\n", long + "\nend"} {
		l.lines(2, []byte(chunk))
		in = append(in, chunk)
	}
	l.lines(1, []byte("out\n"))
	before := time.Now().UTC()
	l.flush()
	f.Close()
	want := []struct{ log, stream string }{{"one\n", "stderr"}, {"two\n", "stderr"}, {"three still three\n", "stderr"},
		{"four <&>\n", "stderr"}, {long[:16384], "stderr"}, {long[16384:32768], "stderr"}, {long[32768:] + "\n", "stderr"},
		{"out\n", "stdout"}, {"end", "stderr"}}
	data, _ := os.ReadFile(filepath.Join(dir, "log"))
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) != len(want) {
		t.Fatalf("%d log lines, want %d: %s", len(lines), len(want), data)
	}
	for i, l := range lines {
		var e LogEntry
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("line %d %q: %v", i, l, err)
		}
		if e.Log != want[i].log || e.Stream != want[i].stream {
			t.Errorf("line %d: %q on %s, want %q on %s", i, e.Log, e.Stream, want[i].log, want[i].stream)
		}
		if e.Time.IsZero() || e.Time.After(before.Add(time.Second)) {
			t.Errorf("line %d: time %v", i, e.Time)
		}
		again, _ := json.Marshal(e)
		if string(again) != l {
			t.Errorf("line %d: %s, json.Marshal writes %s", i, l, again)
		}
	}
}

func BenchmarkLogLines(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "log"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	l := &jsonLog{f: f}
	chunk := []byte(strings.Repeat("y\n", 16<<10))
	b.ReportAllocs()
	b.SetBytes(int64(len(chunk)))
	for i := 0; i < b.N; i++ {
		l.lines(1, chunk)
	}
}

// framer writes api.WriteFrame's bytes.
func TestWriteFrame(t *testing.T) {
	var f framer
	for _, p := range []string{"", "x", strings.Repeat("z", 70000), "after a big one"} {
		var got, want bytes.Buffer
		if err := f.write(&got, 2, []byte(p)); err != nil {
			t.Fatal(err)
		}
		api.WriteFrame(&want, 2, []byte(p))
		if !bytes.Equal(got.Bytes(), want.Bytes()) {
			t.Fatalf("frame of %d bytes differs from api.WriteFrame's", len(p))
		}
	}
}
