package tests

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"minidock/api"
)

// fdCount is the number of descriptors process pid has open.
func fdCount(t *testing.T, pid int) int {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// freshGet is GET path on its own connection, closed after: what a new
// client sees.
func (e *engine) freshGet(path string) (int, string, error) {
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", e.sock)
		},
	}}
	resp, err := c.Get("http://d" + path)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// Idle connections cannot use up the daemon: with --max-connections 40,
// 300 clients that connect and go quiet (some after one keep-alive
// request, some before any) leave the daemon's descriptors bounded, a
// new client is still answered, a container's exit is still recorded,
// and the busy connections made before (an events stream, an attach, a
// wait, a logs -f) are neither cut by the bound nor by --idle-timeout.
func TestIdleConnectionsBounded(t *testing.T) {
	const bound, idle = 40, 2 * time.Second
	e := newEngineAt(t, "", "--max-connections", fmt.Sprint(bound), "--idle-timeout", idle.String())
	e.importBusybox("busybox:latest")
	id := e.create("quiet", map[string]any{"Image": "busybox", "Cmd": []string{"sh", "-c", "echo hello; sleep 6; echo bye; exit 3"}})

	// the busy ones, made first
	events := e.request("GET", "/events?filters="+`%7B%22event%22%3A%5B%22die%22%5D%7D`, nil)
	defer events.Body.Close()
	conn, br := e.attach(id, "stream=1&stdout=1&stderr=1")
	defer conn.Close()
	e.must(204, "POST", "/containers/"+id+"/start", nil, nil)
	wait := make(chan int, 1)
	go func() { wait <- waitCode(t, e.request("POST", "/containers/"+id+"/wait", nil)) }()
	follow := e.request("GET", "/containers/"+id+"/logs?stdout=1&follow=1", nil)
	defer follow.Body.Close()
	time.Sleep(300 * time.Millisecond)
	before := fdCount(t, e.cmd.Process.Pid)

	var flood []net.Conn
	defer func() {
		for _, c := range flood {
			c.Close()
		}
	}()
	for i := 0; i < 300; i++ {
		c, err := net.Dial("unix", e.sock)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		if i%2 == 0 { // one request, then keep-alive and silence
			fmt.Fprintf(c, "GET /_ping HTTP/1.1\r\nHost: d\r\n\r\n")
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err == nil {
				io.Copy(io.Discard, resp.Body)
			}
		}
		flood = append(flood, c)
	}
	if n := fdCount(t, e.cmd.Process.Pid); n > before+bound+5 {
		t.Errorf("the daemon holds %d descriptors after 300 idle connections (%d before, bound %d)", n, before, bound)
	}
	for i := 0; i < 5; i++ {
		if st, body, err := e.freshGet("/_ping"); err != nil || st != 200 || body != "OK" {
			t.Fatalf("a new client at the bound: %d %q %v\n%s", st, body, err, e.log())
		}
	}

	// past the idle timeout, the busy ones still deliver: the exit
	time.Sleep(idle + time.Second)
	select {
	case code := <-wait:
		if code != 3 {
			t.Errorf("wait answered %d, want 3", code)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("wait did not answer\n%s", e.log())
	}
	var ev api.EventMessage
	if err := json.NewDecoder(events.Body).Decode(&ev); err != nil || ev.Action != "die" {
		t.Errorf("events stream: %+v, %v", ev, err)
	}
	var out strings.Builder
	api.Demux(br, &out, io.Discard)
	if out.String() != "hello\nbye\n" {
		t.Errorf("attach gave %q", out.String())
	}
	var logs strings.Builder
	api.Demux(follow.Body, &logs, io.Discard)
	if logs.String() != "hello\nbye\n" {
		t.Errorf("logs -f gave %q", logs.String())
	}
	if st := e.inspect(id).State; st.Status != "exited" || st.ExitCode != 3 {
		t.Errorf("the exit was not recorded: %+v", st)
	}

	// an idle keep-alive connection is closed after --idle-timeout
	c, err := net.Dial("unix", e.sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /_ping HTTP/1.1\r\nHost: d\r\n\r\n")
	r := bufio.NewReader(c)
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	start := time.Now()
	c.SetReadDeadline(time.Now().Add(idle + 5*time.Second))
	if _, err := r.ReadByte(); err != io.EOF {
		t.Errorf("an idle keep-alive connection: %v after %v, want the daemon to close it after %v", err, time.Since(start), idle)
	}
}
