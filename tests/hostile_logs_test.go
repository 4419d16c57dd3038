package tests

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"minidock/api"
)

// procField reads a number from a /proc/<pid> file: "rchar" of io,
// "VmHWM" of status (kB).
func procField(t *testing.T, pid int, file, field string) int64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, file))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && k == field {
			n, err := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no %s in /proc/%d/%s", field, pid, file)
	return 0
}

// A big log read with tail: the daemon reads only its end for tail=5
// (counted in bytes read, /proc/<pid>/io), holds none of it for
// tail=999999999 (its peak memory, VmHWM, barely moves while 1.2 million
// lines go by), and since= far in the future is nothing, not everything.
func TestLogsTailOfABigLog(t *testing.T) {
	e := newEngine(t)
	e.importBusybox("busybox:latest")
	id := e.runToEnd("chatty", "echo", "first")

	// 1.2 million lines (some 130 MB) appended as the shim writes them
	const n = 1200000
	logPath := filepath.Join(e.dataRoot, "containers", id, id+"-json.log")
	f, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriterSize(f, 1<<20)
	t0 := time.Now().UTC()
	for i := 0; i < n; i++ {
		stream := "stdout"
		if i%2 == 1 {
			stream = "stderr"
		}
		fmt.Fprintf(w, `{"log":"line %07d of a long log\n","stream":"%s","time":"%s"}`+"\n", i, stream, t0.Add(time.Duration(i)*time.Microsecond).Format(time.RFC3339Nano))
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	pid := e.cmd.Process.Pid

	read0 := procField(t, pid, "io", "rchar")
	out, errOut := e.logs(id, "&tail=5")
	read := procField(t, pid, "io", "rchar") - read0
	if out != fmt.Sprintf("line %07d of a long log\nline %07d of a long log\n", n-4, n-2) ||
		errOut != fmt.Sprintf("line %07d of a long log\nline %07d of a long log\nline %07d of a long log\n", n-5, n-3, n-1) {
		t.Errorf("tail=5 gave stdout %q, stderr %q", out, errOut)
	}
	if read > 1<<20 {
		t.Errorf("tail=5 of a %d-line log read %d bytes of it", n, read)
	}

	hwm0 := procField(t, pid, "status", "VmHWM")
	resp := e.request("GET", "/containers/"+id+"/logs?stdout=1&stderr=1&tail=999999999", nil)
	var lines lineCounter
	if err := api.Demux(bufio.NewReader(resp.Body), &lines, &lines); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if grew := procField(t, pid, "status", "VmHWM") - hwm0; grew > 64<<10 {
		t.Errorf("tail=999999999 grew the daemon's peak memory by %d MB", grew>>10)
	}
	if lines != n+1 {
		t.Errorf("tail=999999999 sent %d lines, want %d", lines, n+1)
	}

	for _, since := range []string{"99999999999", "9223372036854775807", "99999999999.5"} {
		if out, errOut := e.logs(id, "&since="+since); out != "" || errOut != "" {
			t.Errorf("since=%s (the far future) gave %d bytes", since, len(out)+len(errOut))
		}
	}
	e.must(400, "GET", "/containers/"+id+"/logs?stdout=1&since=tomorrow", nil, nil)
}

// lineCounter counts the lines written to it.
type lineCounter int

func (c *lineCounter) Write(p []byte) (int, error) {
	*c += lineCounter(bytes.Count(p, []byte{'\n'}))
	return len(p), nil
}
