package bridge

// The embedded DNS server of user-defined networks: containers find each
// other by name. One server per network listens on the network's gateway
// address, port 53, UDP and TCP, in the host's network namespace; each
// container's resolv.conf names that address. A query is answered from
// DNSLookup, which the daemon gives and which sees who asks (so one network's
// names are not visible from another); any other name goes to the upstream
// resolvers, or gets NXDOMAIN when there are none. Wire format: RFC 1035
// (messages, TCP framing), RFC 6891 (EDNS(0) UDP sizes), parsed and built
// with golang.org/x/net/dns/dnsmessage. See docs/networking.md.

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// DNSLookup returns the addresses of name (lower-case, no trailing dot) as
// seen by the container at client; nil = unknown. A non-nil empty list is a
// known name with no address to give (NOERROR, no answer).
type DNSLookup func(client netip.Addr, name string) []netip.Addr

const (
	dnsTTL          = 600              // seconds a container may cache an answer (Docker's value)
	upstreamTimeout = 2 * time.Second  // per upstream, per query
	tcpIdleTimeout  = 10 * time.Second // a TCP client that sends nothing for this long is closed
	minUDPSize      = 512              // the UDP answer size every client takes (RFC 1035 4.2.1)
	maxUDPSize      = 1232             // the most we send over UDP even if EDNS allows more (DNS flag day 2020)
	maxInflightUDP  = 256              // UDP queries handled at once; more are dropped (the client retries)
	maxTCPConns     = 64               // TCP clients served at once; more are closed
)

// DNSServer is one running embedded DNS server. Close stops it.
type DNSServer struct {
	udp       *net.UDPConn
	tcp       *net.TCPListener
	lookup    DNSLookup
	upstreams []netip.AddrPort

	ctx    context.Context // cancelled by Close: ends forwards under way
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine of the server
	udpSem chan struct{}  // a slot per UDP query being answered
	tcpSem chan struct{}  // a slot per open TCP client

	mu     sync.Mutex
	conns  map[net.Conn]struct{} // open TCP clients, closed by Close
	closed bool
	err    error // what the first Close returned
}

// StartDNS listens on addr (UDP and TCP; port 0 = any free port, the same
// for both) and answers until Close. Unknown names go to upstreams, tried in
// order; with none, unknown names get NXDOMAIN at once.
func StartDNS(addr netip.AddrPort, lookup DNSLookup, upstreams []netip.AddrPort) (*DNSServer, error) {
	if lookup == nil {
		return nil, errors.New("dns server: lookup is nil")
	}
	udp, tcp, err := listenDNS(addr)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &DNSServer{
		udp: udp, tcp: tcp, lookup: lookup,
		upstreams: append([]netip.AddrPort(nil), upstreams...),
		ctx:       ctx, cancel: cancel,
		udpSem: make(chan struct{}, maxInflightUDP),
		tcpSem: make(chan struct{}, maxTCPConns),
		conns:  map[net.Conn]struct{}{},
	}
	s.wg.Add(2)
	go s.serveUDP()
	go s.serveTCP()
	return s, nil
}

// listenDNS binds a UDP socket and a TCP listener to the same address. With
// port 0 the kernel picks the UDP port, which may be taken for TCP by
// someone else: then both are closed and it tries again.
func listenDNS(addr netip.AddrPort) (*net.UDPConn, *net.TCPListener, error) {
	udpNet, tcpNet := "udp4", "tcp4"
	if addr.Addr().Is6() {
		udpNet, tcpNet = "udp6", "tcp6"
	}
	for try := 0; ; try++ {
		udp, err := net.ListenUDP(udpNet, net.UDPAddrFromAddrPort(addr))
		if err != nil {
			return nil, nil, fmt.Errorf("dns server: listen on %s/udp: %w", addr, err)
		}
		bound := udp.LocalAddr().(*net.UDPAddr).AddrPort()
		tcp, err := net.ListenTCP(tcpNet, net.TCPAddrFromAddrPort(netip.AddrPortFrom(addr.Addr(), bound.Port())))
		if err == nil {
			return udp, tcp, nil
		}
		udp.Close()
		if addr.Port() != 0 || !errors.Is(err, syscall.EADDRINUSE) || try == 20 {
			return nil, nil, fmt.Errorf("dns server: listen on %s/tcp: %w", bound, err)
		}
	}
}

// Addr is the address actually bound (the port chosen when 0 was asked).
func (s *DNSServer) Addr() netip.AddrPort {
	a := s.udp.LocalAddr().(*net.UDPAddr).AddrPort()
	return netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
}

// Close stops the server: it closes both sockets and every TCP client,
// cancels forwards under way and waits for all its goroutines. The port is
// free when Close returns. Closing twice is not an error.
func (s *DNSServer) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return s.err
	}
	s.closed = true
	s.cancel()
	s.err = errors.Join(s.udp.Close(), s.tcp.Close())
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return s.err
}

// serveUDP reads one datagram at a time and answers each in its own
// goroutine, so that a slow upstream does not hold up the others.
func (s *DNSServer) serveUDP() {
	defer s.wg.Done()
	buf := make([]byte, 65535)
	for {
		n, from, err := s.udp.ReadFromUDPAddrPort(buf)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			continue // a passing error on one datagram; the socket still works
		}
		select {
		case s.udpSem <- struct{}{}:
		default:
			continue // too busy: drop, the client asks again
		}
		msg := append([]byte(nil), buf[:n]...)
		s.wg.Add(1)
		go func() {
			defer func() { <-s.udpSem; s.wg.Done() }()
			if resp := s.answer(msg, from.Addr().Unmap(), false); resp != nil {
				s.udp.WriteToUDPAddrPort(resp, from)
			}
		}()
	}
}

// serveTCP accepts TCP clients, each served by serveConn.
func (s *DNSServer) serveTCP() {
	defer s.wg.Done()
	for {
		c, err := s.tcp.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			continue
		}
		select {
		case s.tcpSem <- struct{}{}:
		default:
			c.Close() // too many clients at once
			continue
		}
		if !s.track(c) {
			c.Close()
			<-s.tcpSem
			return
		}
		s.wg.Add(1)
		go func() {
			defer func() { s.untrack(c); c.Close(); <-s.tcpSem; s.wg.Done() }()
			s.serveConn(c)
		}()
	}
}

// track records an open TCP client for Close; false if Close already ran.
func (s *DNSServer) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *DNSServer) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// serveConn answers the queries of one TCP client, one after the other,
// until it closes, stays idle too long, or sends something not worth an
// answer.
func (s *DNSServer) serveConn(c net.Conn) {
	client := c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap()
	for {
		c.SetReadDeadline(time.Now().Add(tcpIdleTimeout))
		msg, err := readTCPMsg(c)
		if err != nil {
			return
		}
		resp := s.answer(msg, client, true)
		if resp == nil {
			return
		}
		c.SetWriteDeadline(time.Now().Add(tcpIdleTimeout))
		if err := writeTCPMsg(c, resp); err != nil {
			return
		}
	}
}

// readTCPMsg reads one DNS message framed for TCP: a 2-byte big-endian
// length, then the message (RFC 1035 4.2.2).
func readTCPMsg(r io.Reader) ([]byte, error) {
	var n [2]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return nil, err
	}
	msg := make([]byte, binary.BigEndian.Uint16(n[:]))
	if _, err := io.ReadFull(r, msg); err != nil {
		return nil, err
	}
	return msg, nil
}

// writeTCPMsg writes msg with its 2-byte length in front, in one write.
func writeTCPMsg(w io.Writer, msg []byte) error {
	if len(msg) > 65535 {
		return fmt.Errorf("dns message of %d bytes does not fit TCP framing", len(msg))
	}
	b := make([]byte, 2, 2+len(msg))
	binary.BigEndian.PutUint16(b, uint16(len(msg)))
	_, err := w.Write(append(b, msg...))
	return err
}

// dnsQuery is what answer needs to know of a query.
type dnsQuery struct {
	hdr     dnsmessage.Header
	q       dnsmessage.Question
	edns    bool // the query had an OPT record
	maxSize int  // the largest answer the client takes on this transport
}

// answer is the reply to msg from client, or nil to send nothing: a packet
// without even a header, or a response rather than a query (answering those
// could make two servers talk to each other forever).
func (s *DNSServer) answer(msg []byte, client netip.Addr, overTCP bool) []byte {
	var p dnsmessage.Parser
	hdr, err := p.Start(msg)
	if err != nil || hdr.Response {
		return nil
	}
	q, err := parseQuery(&p, hdr, overTCP)
	if err != nil {
		return reply(dnsQuery{hdr: hdr, maxSize: minUDPSize}, dnsmessage.RCodeFormatError, nil, false)
	}
	if hdr.OpCode != 0 { // only standard queries; no NOTIFY, UPDATE, ...
		return reply(q, dnsmessage.RCodeNotImplemented, nil, true)
	}
	if name := dnsName(q.q.Name); q.q.Class == dnsmessage.ClassINET && name != "" {
		if addrs := s.lookup(client, name); addrs != nil {
			return reply(q, dnsmessage.RCodeSuccess, addrs, true)
		}
	}
	if len(s.upstreams) == 0 {
		return reply(q, dnsmessage.RCodeNameError, nil, true)
	}
	resp := s.forward(msg, overTCP)
	if resp == nil {
		return reply(q, dnsmessage.RCodeServerFailure, nil, true)
	}
	binary.BigEndian.PutUint16(resp, hdr.ID) // the client's ID, not the one we used upstream
	if len(resp) > q.maxSize {
		return truncate(q, resp)
	}
	return resp
}

// parseQuery reads the question and the EDNS OPT record of a query whose
// header p has just read. A query asks exactly one question.
func parseQuery(p *dnsmessage.Parser, hdr dnsmessage.Header, overTCP bool) (dnsQuery, error) {
	q := dnsQuery{hdr: hdr, maxSize: minUDPSize}
	if overTCP {
		q.maxSize = 65535
	}
	qs, err := p.AllQuestions()
	if err != nil {
		return q, err
	}
	if len(qs) != 1 {
		return q, fmt.Errorf("%d questions, want 1", len(qs))
	}
	q.q = qs[0]
	if err := p.SkipAllAnswers(); err != nil {
		return q, err
	}
	if err := p.SkipAllAuthorities(); err != nil {
		return q, err
	}
	for {
		rh, err := p.AdditionalHeader()
		if err == dnsmessage.ErrSectionDone {
			return q, nil
		}
		if err != nil {
			return q, err
		}
		if rh.Type == dnsmessage.TypeOPT {
			q.edns = true
			// The OPT record's class is the UDP size the client takes.
			if size := int(rh.Class); !overTCP && size > q.maxSize {
				q.maxSize = min(size, maxUDPSize)
			}
		}
		if err := p.SkipAdditional(); err != nil {
			return q, err
		}
	}
}

// dnsName is the name as DNSLookup wants it: ASCII lower-case (DNS names
// compare case-insensitively, RFC 4343), without the trailing dot.
func dnsName(n dnsmessage.Name) string {
	b := []byte(n.String())
	if len(b) > 0 && b[len(b)-1] == '.' {
		b = b[:len(b)-1]
	}
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// reply builds our own answer to q: rcode, and for an A question one A
// record per IPv4 address of addrs. It looks like Docker's: recursion
// available, not authoritative. withQuestion is false for FORMERR, whose
// question could not be read. An answer too big for the client is sent
// without records and with TC set: the client asks again over TCP.
func reply(q dnsQuery, rcode dnsmessage.RCode, addrs []netip.Addr, withQuestion bool) []byte {
	m := dnsmessage.Message{Header: dnsmessage.Header{
		ID:                 q.hdr.ID,
		Response:           true,
		OpCode:             q.hdr.OpCode,
		RecursionDesired:   q.hdr.RecursionDesired,
		RecursionAvailable: true,
		RCode:              rcode,
	}}
	if withQuestion {
		m.Questions = []dnsmessage.Question{q.q}
	}
	if q.q.Type == dnsmessage.TypeA && q.q.Class == dnsmessage.ClassINET {
		for _, a := range addrs {
			if a.Is4() {
				m.Answers = append(m.Answers, dnsmessage.Resource{
					Header: dnsmessage.ResourceHeader{Name: q.q.Name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET, TTL: dnsTTL},
					Body:   &dnsmessage.AResource{A: a.As4()},
				})
			}
		}
	}
	if q.edns {
		// Tell an EDNS client how big an answer we send it (RFC 6891 7).
		var opt dnsmessage.ResourceHeader
		opt.SetEDNS0(maxUDPSize, rcode, false)
		m.Additionals = []dnsmessage.Resource{{Header: opt, Body: &dnsmessage.OPTResource{}}}
	}
	b, err := m.Pack()
	if err == nil && len(b) > q.maxSize {
		m.Header.Truncated, m.Answers = true, nil
		b, err = m.Pack()
	}
	if err != nil { // a question name that cannot be written back
		m = dnsmessage.Message{Header: m.Header}
		m.Header.RCode = dnsmessage.RCodeServerFailure
		b, _ = m.Pack()
	}
	return b
}

// truncate makes an upstream's answer that is too big for the client's UDP
// size into its header and question with TC set, and no records: the client
// asks again over TCP.
func truncate(q dnsQuery, resp []byte) []byte {
	var p dnsmessage.Parser
	hdr, err := p.Start(resp)
	if err != nil {
		return reply(q, dnsmessage.RCodeServerFailure, nil, true)
	}
	hdr.Truncated = true
	m := dnsmessage.Message{Header: hdr, Questions: []dnsmessage.Question{q.q}}
	b, err := m.Pack()
	if err != nil {
		return reply(q, dnsmessage.RCodeServerFailure, nil, true)
	}
	return b
}

// forward sends msg to the upstreams in order and returns the first real
// answer, or nil if none answered. An upstream that times out, refuses,
// sends garbage, or answers SERVFAIL or REFUSED is skipped, as Docker does.
// A query that came over TCP goes over TCP.
func (s *DNSServer) forward(msg []byte, overTCP bool) []byte {
	// A fresh random ID upstream, with a fresh socket and port per query,
	// makes a forged answer hard to slip in; answer puts the client's back.
	out := append([]byte(nil), msg...)
	rand.Read(out[:2])
	id := binary.BigEndian.Uint16(out)
	for _, up := range s.upstreams {
		ctx, cancel := context.WithTimeout(s.ctx, upstreamTimeout)
		resp, err := exchange(ctx, up, out, overTCP)
		cancel()
		if s.ctx.Err() != nil {
			return nil // closing
		}
		if err != nil {
			continue
		}
		var p dnsmessage.Parser
		hdr, err := p.Start(resp)
		if err != nil || !hdr.Response || hdr.ID != id ||
			hdr.RCode == dnsmessage.RCodeServerFailure || hdr.RCode == dnsmessage.RCodeRefused {
			continue
		}
		return resp
	}
	return nil
}

// exchange sends one query to server over UDP or TCP and reads one answer,
// within ctx's deadline. Over UDP it skips datagrams that are not the answer
// to this ID (a late answer to an earlier try, say).
func exchange(ctx context.Context, server netip.AddrPort, msg []byte, overTCP bool) ([]byte, error) {
	network := "udp"
	if overTCP {
		network = "tcp"
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, network, server.String())
	if err != nil {
		return nil, err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	if overTCP {
		if err := writeTCPMsg(c, msg); err != nil {
			return nil, err
		}
		return readTCPMsg(c)
	}
	if _, err := c.Write(msg); err != nil {
		return nil, err
	}
	buf := make([]byte, 65535)
	for {
		n, err := c.Read(buf) // a connected socket: only the upstream's datagrams
		if err != nil {
			return nil, err
		}
		if n >= 2 && binary.BigEndian.Uint16(buf) == binary.BigEndian.Uint16(msg) {
			return buf[:n], nil
		}
	}
}
