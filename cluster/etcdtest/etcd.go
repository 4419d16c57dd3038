// Package etcdtest starts a real etcd for tests: Debian's etcd-server
// (3.4), one member, its data in a temporary directory, stopped by pid and
// its data removed when the test ends.
package etcdtest

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Server is one etcd process and its data directory.
type Server struct {
	t       testing.TB
	dir     string
	host    string // where clients connect
	port    int
	peer    int
	startIn func(func() error) error

	mu     sync.Mutex
	cmd    *exec.Cmd     // nil while stopped
	exited chan struct{} // closed when cmd has exited
}

// Options say where etcd listens and how its process is started.
type Options struct {
	// Host is the address clients connect to; 127.0.0.1 if empty.
	Host string
	// ClientPort and PeerPort; free ports of 127.0.0.1 if zero.
	ClientPort, PeerPort int
	// StartIn, if set, runs the function that starts the process (say, on
	// a thread inside another network namespace, whose child inherits it).
	StartIn func(start func() error) error
}

// Start starts etcd and waits until it serves clients. The test fails if
// etcd is not installed (apt-get install etcd-server).
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	if _, err := exec.LookPath("etcd"); err != nil {
		t.Fatal("etcd not found: apt-get install etcd-server (scripts/install-deps.sh)")
	}
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	if o.ClientPort == 0 {
		o.ClientPort = freePort(t)
	}
	if o.PeerPort == 0 {
		o.PeerPort = freePort(t)
	}
	if o.StartIn == nil {
		o.StartIn = func(f func() error) error { return f() }
	}
	// in memory if there is a tmpfs: etcd fsyncs every write, and a disk
	// busy with other work would make the tests' timeouts flaky
	base := ""
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		base = "/dev/shm"
	}
	dir, err := os.MkdirTemp(base, "minidock-etcd-")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{t: t, dir: dir, host: o.Host, port: o.ClientPort, peer: o.PeerPort, startIn: o.StartIn}
	t.Cleanup(s.remove)
	s.Start()
	return s
}

// Endpoint is host:port for clients.
func (s *Server) Endpoint() string { return net.JoinHostPort(s.host, fmt.Sprint(s.port)) }

// DataDir is etcd's data directory.
func (s *Server) DataDir() string { return filepath.Join(s.dir, "data") }

// Start (re)starts the process on the same data directory and waits for
// it to say it serves clients.
func (s *Server) Start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		s.t.Fatal("etcd is already running")
	}
	peer := fmt.Sprintf("http://127.0.0.1:%d", s.peer)
	client := "http://" + s.Endpoint()
	cmd := exec.Command("etcd",
		"--name", "test",
		"--data-dir", s.DataDir(),
		"--listen-client-urls", client,
		"--advertise-client-urls", client,
		"--listen-peer-urls", peer,
		"--initial-advertise-peer-urls", peer,
		"--initial-cluster", "test="+peer,
		// a quick election; the shortest lease etcd grants is 1.5 × this
		"--heartbeat-interval", "50", "--election-timeout", "500",
		"--logger", "zap", "--log-outputs", "stderr")
	logPath := filepath.Join(s.dir, "etcd.log")
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		s.t.Fatal(err)
	}
	// etcd logs to stderr; a goroutine of os/exec copies it to the log
	// file and to pr, where its readiness is read. Both stay open until
	// etcd exits: a closed one would end the copying and etcd would die
	// of SIGPIPE at its next log line.
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = log, io.MultiWriter(log, pw)
	if err := s.startIn(cmd.Start); err != nil {
		log.Close()
		s.t.Fatalf("start etcd: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); pw.Close(); log.Close(); close(exited) }()
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			// etcd 3.4 with the zap logger says this once it serves
			// clients (its capnslog said "ready to serve client requests")
			if strings.Contains(sc.Text(), "serving client traffic") {
				ready <- true
				break
			}
		}
		io.Copy(io.Discard, pr)
		close(ready)
	}()
	select {
	case ok := <-ready:
		if ok {
			s.cmd, s.exited = cmd, exited
			return
		}
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		<-exited
	}
	data, _ := os.ReadFile(logPath)
	s.t.Fatalf("etcd did not become ready:\n%s", data)
}

// Stop ends the process by its pid (SIGTERM, then SIGKILL after 10 s) and
// waits for it. Its data stays, for Start.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-s.exited
	}
	s.cmd = nil
}

// Log is what etcd has written so far.
func (s *Server) Log() string {
	data, _ := os.ReadFile(filepath.Join(s.dir, "etcd.log"))
	return string(data)
}

// remove stops etcd and deletes its data directory.
func (s *Server) remove() {
	s.Stop()
	if err := os.RemoveAll(s.dir); err != nil {
		s.t.Errorf("remove etcd data: %v", err)
	}
}

// freePort is a TCP port of 127.0.0.1 that was free a moment ago.
func freePort(t testing.TB) int {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
