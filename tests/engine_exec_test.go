package tests

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"minidock/api"
)

// execStart hijacks POST /exec/{id}/start and returns all it gets.
func (e *engine) execStart(id string, stdin string, media string) []byte {
	e.t.Helper()
	conn, err := net.Dial("unix", e.sock)
	require.NoError(e.t, err)
	defer conn.Close()
	body := `{"Detach":false,"Tty":false}`
	fmt.Fprintf(conn, "POST /v1.41/exec/%s/start HTTP/1.1\r\nHost: d\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", id, len(body), body)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	require.NoError(e.t, err)
	require.Equal(e.t, http.StatusSwitchingProtocols, resp.StatusCode)
	require.Equal(e.t, media, resp.Header.Get("Content-Type"))
	if stdin != "" {
		_, err := conn.Write([]byte(stdin))
		require.NoError(e.t, err)
		conn.(*net.UnixConn).CloseWrite()
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	out, _ := io.ReadAll(br)
	return out
}

func TestEngineExec(t *testing.T) {
	e := newEngine(t)
	e.importBusybox("busybox:latest")
	id := e.create("box", map[string]any{"Image": "busybox", "Cmd": []string{"sleep", "300"}, "Env": []string{"FROM=image"}})
	var cr api.CreateResponse
	e.must(409, "POST", "/containers/box/exec", map[string]any{"Cmd": []string{"true"}}, nil)
	e.must(204, "POST", "/containers/box/start", nil, nil)

	e.must(201, "POST", "/containers/box/exec", map[string]any{"Cmd": []string{"sh", "-c", "echo $FROM $X $(id -u) $(pwd); echo err >&2; exit 5"},
		"AttachStdout": true, "AttachStderr": true, "Env": []string{"X=y"}, "User": "65534", "WorkingDir": "/tmp"}, &cr)
	var ins api.ExecInspect
	e.must(200, "GET", "/exec/"+cr.ID+"/json", nil, &ins)
	require.False(t, ins.Running)
	require.Nil(t, ins.ExitCode)
	var out, errs bytes.Buffer
	require.NoError(t, api.Demux(bytes.NewReader(e.execStart(cr.ID, "", api.MediaMultiplexed)), &out, &errs))
	require.Equal(t, "image y 65534 /tmp\n", out.String())
	require.Equal(t, "err\n", errs.String())
	e.must(200, "GET", "/exec/"+cr.ID+"/json", nil, &ins)
	require.NotNil(t, ins.ExitCode)
	require.Equal(t, 5, *ins.ExitCode)
	require.Equal(t, id, ins.ContainerID)
	e.must(409, "POST", "/exec/"+cr.ID+"/start", map[string]any{}, nil)

	// stdin, closed by the client's half-close
	e.must(201, "POST", "/containers/box/exec", map[string]any{"Cmd": []string{"cat"}, "AttachStdin": true, "AttachStdout": true}, &cr)
	out.Reset()
	require.NoError(t, api.Demux(bytes.NewReader(e.execStart(cr.ID, "piped\n", api.MediaMultiplexed)), &out, &errs))
	require.Equal(t, "piped\n", out.String())

	// a program that does not exist: 127
	e.must(201, "POST", "/containers/box/exec", map[string]any{"Cmd": []string{"nosuchprogram"}, "AttachStdout": true, "AttachStderr": true}, &cr)
	out.Reset()
	errs.Reset()
	require.NoError(t, api.Demux(bytes.NewReader(e.execStart(cr.ID, "", api.MediaMultiplexed)), &out, &errs))
	require.Contains(t, errs.String(), "executable file not found")
	e.must(200, "GET", "/exec/"+cr.ID+"/json", nil, &ins)
	require.Equal(t, 127, *ins.ExitCode)
	e.must(404, "GET", "/exec/nosuch/json", nil, nil)

	// with a TTY: the runtime's exec --tty --detach --console-socket
	e.must(201, "POST", "/containers/box/exec", map[string]any{"Cmd": []string{"sh", "-c", "tty; exit 3"}, "Tty": true, "AttachStdout": true}, &cr)
	raw := e.execStart(cr.ID, "", api.MediaRaw)
	require.Contains(t, string(raw), "/dev/pts/")
	e.must(200, "GET", "/exec/"+cr.ID+"/json", nil, &ins)
	require.Equal(t, 3, *ins.ExitCode)
}

// Execs run under the container's shim, so they outlive a daemon killed
// while they run: the next daemon lists them, and records their exit.
func TestEngineExecSurvivesRestart(t *testing.T) {
	e := newEngine(t)
	e.importBusybox("busybox:latest")
	e.create("box", map[string]any{"Image": "busybox", "Cmd": []string{"sleep", "300"}})
	e.must(204, "POST", "/containers/box/start", nil, nil)

	// an attached exec, and a detached one
	var attached, detached api.CreateResponse
	e.must(201, "POST", "/containers/box/exec", map[string]any{"Cmd": []string{"sh", "-c", "echo started; sleep 2; exit 7"},
		"AttachStdout": true, "AttachStderr": true}, &attached)
	e.must(201, "POST", "/containers/box/exec", map[string]any{"Cmd": []string{"sh", "-c", "sleep 2; echo late > /late"}}, &detached)
	conn, err := net.Dial("unix", e.sock)
	require.NoError(t, err)
	defer conn.Close()
	body := `{"Detach":false,"Tty":false}`
	fmt.Fprintf(conn, "POST /v1.41/exec/%s/start HTTP/1.1\r\nHost: d\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", attached.ID, len(body), body)
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
	var hdr [8]byte
	_, err = io.ReadFull(br, hdr[:]) // its first output: it runs
	require.NoError(t, err)
	e.must(200, "POST", "/exec/"+detached.ID+"/start", map[string]any{"Detach": true}, nil)
	var ins api.ExecInspect
	e.must(200, "GET", "/exec/"+attached.ID+"/json", nil, &ins)
	require.True(t, ins.Running)
	pid := ins.Pid

	e.killDaemon()
	require.False(t, processGone(pid), "the exec died with the daemon")
	e.start()

	for _, id := range []string{attached.ID, detached.ID} {
		e.must(200, "GET", "/exec/"+id+"/json", nil, &ins)
		require.True(t, ins.Running, "exec %s after the restart", id)
	}
	e.must(200, "GET", "/exec/"+attached.ID+"/json", nil, &ins)
	require.Equal(t, pid, ins.Pid)
	require.Eventually(t, func() bool {
		e.must(200, "GET", "/exec/"+attached.ID+"/json", nil, &ins)
		return ins.ExitCode != nil
	}, 10*time.Second, 50*time.Millisecond)
	require.Equal(t, 7, *ins.ExitCode)
	require.False(t, ins.Running)
	require.Eventually(t, func() bool {
		e.must(200, "GET", "/exec/"+detached.ID+"/json", nil, &ins)
		return ins.ExitCode != nil
	}, 10*time.Second, 50*time.Millisecond)
	require.Equal(t, 0, *ins.ExitCode)
	late, err := os.ReadFile(fmt.Sprintf("/proc/%d/root/late", e.inspect("box").State.Pid))
	require.NoError(t, err)
	require.Equal(t, "late\n", string(late))
	e.must(204, "DELETE", "/containers/box?force=1", nil, nil)
}
