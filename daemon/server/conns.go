package server

import (
	"crypto/tls"
	"log"
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Connections. Each open API connection costs the daemon a file
// descriptor, and an HTTP/1.1 client may keep one open between requests
// (keep-alive) for as long as it likes: left alone, some 20000 idle ones
// use up the daemon's descriptors (RLIMIT_NOFILE), and then it can
// neither answer nor open a container's files. So:
//
//   - an idle keep-alive connection is closed after --idle-timeout
//     (http.Server.IdleTimeout), and one that never finishes its request
//     headers after ReadHeaderTimeout;
//   - all listeners together hold at most --max-connections. At the
//     bound, a new connection takes the place of the one idle the
//     longest (between requests, or not yet past its first request
//     line); when every one is busy, the new one is closed.
//
// Busy connections are never cut: a request being served, a streaming
// reply (events, logs -f, wait, stats) and a hijacked attach or exec
// start have no timeout and are never chosen to make room.

// DefaultIdleTimeout is --idle-timeout's default.
const DefaultIdleTimeout = 2 * time.Minute

// connLimiter counts the open connections of every listener.
type connLimiter struct {
	max  int
	log  *log.Logger
	mu   sync.Mutex
	open map[*trackedConn]struct{}
	// when the bound was last reported in the log
	reported time.Time
}

// defaultMaxConns is a quarter of the descriptors the daemon may open
// (at least 64): the rest stays for containers, shims, logs and layers.
func defaultMaxConns() int {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil || rl.Cur == unix.RLIM_INFINITY {
		return 4096
	}
	return max(64, int(rl.Cur/4))
}

func newConnLimiter(maxConns int, logger *log.Logger) *connLimiter {
	if maxConns <= 0 {
		maxConns = defaultMaxConns()
	}
	return &connLimiter{max: maxConns, log: logger, open: map[*trackedConn]struct{}{}}
}

// trackedConn is one accepted connection, counted until it is closed.
type trackedConn struct {
	net.Conn
	lim   *connLimiter
	state http.ConnState // guarded by lim.mu
	since time.Time      // when it entered state
	once  sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.lim.mu.Lock()
		delete(c.lim.open, c)
		c.lim.mu.Unlock()
	})
	return c.Conn.Close()
}

// CloseWrite half-closes a TCP or unix connection: the end of a
// hijacked stream's output.
func (c *trackedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// listener counts the connections ln accepts.
func (l *connLimiter) listener(ln net.Listener) net.Listener { return &limitListener{ln, l} }

type limitListener struct {
	net.Listener
	lim *connLimiter
}

func (ll *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := ll.Listener.Accept()
		if err != nil {
			return nil, err
		}
		tc := &trackedConn{Conn: c, lim: ll.lim, state: http.StateNew, since: time.Now()}
		if ll.lim.admit(tc) {
			return tc, nil
		}
		c.Close()
	}
}

// admit counts c in, making room at the bound by closing the connection
// idle the longest; it is false when every connection is busy.
func (l *connLimiter) admit(c *trackedConn) bool {
	l.mu.Lock()
	var victim *trackedConn
	full := len(l.open) >= l.max
	if full {
		for o := range l.open {
			if (o.state == http.StateIdle || o.state == http.StateNew) && (victim == nil || o.since.Before(victim.since)) {
				victim = o
			}
		}
		if victim != nil {
			delete(l.open, victim)
		}
	}
	report := full && time.Since(l.reported) > time.Minute
	if report {
		l.reported = time.Now()
	}
	if victim != nil || !full {
		l.open[c] = struct{}{}
	}
	l.mu.Unlock()
	if report {
		l.log.Printf("%d API connections open, the bound (--max-connections): closing the idlest ones to make room", l.max)
	}
	if victim != nil {
		victim.Conn.Close() // its server goroutine sees the end and goes
	}
	return victim != nil || !full
}

// connState is http.Server.ConnState: it follows each connection's state,
// which says whether it may make room for another.
func (l *connLimiter) connState(c net.Conn, s http.ConnState) {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	t, ok := c.(*trackedConn)
	if !ok {
		return
	}
	l.mu.Lock()
	t.state, t.since = s, time.Now()
	l.mu.Unlock()
}

// count is the number of connections open.
func (l *connLimiter) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.open)
}
