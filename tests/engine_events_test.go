package tests

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"minidock/api"
)

// GET /events: streamed while it happens, replayed with since/until,
// filtered.
func TestEngineEvents(t *testing.T) {
	e := newEngine(t)
	e.importBusybox("busybox:latest")
	t0 := time.Now()
	filters := url.QueryEscape(`{"container":["ev"]}`)
	resp := e.request("GET", "/events?filters="+filters, nil)
	require.Equal(t, 200, resp.StatusCode)
	defer resp.Body.Close()
	dec := json.NewDecoder(bufio.NewReader(resp.Body))

	e.create("other", map[string]any{"Image": "busybox", "Cmd": []string{"true"}}) // filtered out
	id := e.create("ev", map[string]any{"Image": "busybox", "Cmd": []string{"sh", "-c", "exit 3"}, "Labels": map[string]string{"k": "v"}})
	w := e.request("POST", "/containers/ev/wait?condition=next-exit", nil)
	e.must(204, "POST", "/containers/ev/start", nil, nil)
	require.Equal(t, 3, waitCode(t, w))
	e.must(204, "DELETE", "/containers/ev", nil, nil)
	e.must(204, "DELETE", "/containers/other", nil, nil)

	var got []api.EventMessage
	for _, want := range []string{"create", "start", "die", "destroy"} {
		var m api.EventMessage
		require.NoError(t, dec.Decode(&m))
		require.Equal(t, want, m.Action)
		require.Equal(t, "container", m.Type)
		require.Equal(t, id, m.Actor.ID)
		require.Equal(t, "ev", m.Actor.Attributes["name"])
		require.Equal(t, "busybox", m.Actor.Attributes["image"])
		require.Equal(t, "v", m.Actor.Attributes["k"])
		require.Equal(t, m.TimeNano/1e9, m.Time)
		require.InDelta(t, time.Now().Unix(), m.Time, 30)
		got = append(got, m)
	}
	require.Equal(t, "3", got[2].Actor.Attributes["exitCode"])

	// a replay with until ends by itself
	until := strconv.FormatInt(time.Now().Unix()+1, 10)
	q := fmt.Sprintf("/events?since=%d.%09d&until=%s&filters=%s", t0.Unix(), t0.Nanosecond(), until,
		url.QueryEscape(`{"event":["create","destroy"]}`))
	st, body := e.do("GET", q, nil)
	require.Equal(t, 200, st)
	var actions []string
	d := json.NewDecoder(bytes.NewReader(body))
	for d.More() {
		var m api.EventMessage
		require.NoError(t, d.Decode(&m))
		actions = append(actions, m.Actor.Attributes["name"]+":"+m.Action)
	}
	require.Equal(t, []string{"other:create", "ev:create", "ev:destroy", "other:destroy"}, actions)

	// the client's verb
	cmd := exec.Command(binary, "events", "--since", strconv.FormatInt(t0.Unix(), 10), "--until", until, "-f", "container=ev", "-f", "event=die")
	cmd.Env = append(os.Environ(), "MINIDOCK_HOST=unix://"+e.sock)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), " container die "+id+" (exitCode=3, image=busybox, k=v, name=ev)\n")
	require.Equal(t, 1, strings.Count(string(out), "\n"), "%s", out)

	e.must(400, "GET", "/events?since=yesterday", nil, nil)
	e.must(400, "GET", "/events?filters="+url.QueryEscape(`{"nosuch":["x"]}`), nil, nil)
}
