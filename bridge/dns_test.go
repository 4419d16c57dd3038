package bridge

// Tests of the embedded DNS server. They need no root: every server here,
// the fake upstreams included, listens on 127.0.0.1 with a port the kernel
// picks, and nothing is ever sent to another address.

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

var loopback0 = netip.MustParseAddrPort("127.0.0.1:0")

// testNames is the lookup of the tests: "web" has two addresses, "v6only"
// one IPv6 address, "many" n IPv4 addresses; every call is recorded.
type testNames struct {
	many  int
	mu    sync.Mutex
	calls []string // "client name"
}

func (n *testNames) lookup(client netip.Addr, name string) []netip.Addr {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.calls = append(n.calls, client.String()+" "+name)
	switch name {
	case "web":
		return []netip.Addr{netip.MustParseAddr("10.213.1.2"), netip.MustParseAddr("10.213.1.3")}
	case "v6only":
		return []netip.Addr{netip.MustParseAddr("fd00::2")}
	case "many":
		var out []netip.Addr
		for i := range n.many {
			out = append(out, netip.AddrFrom4([4]byte{10, 213, byte(i / 250), byte(1 + i%250)}))
		}
		return out
	}
	return nil
}

func (n *testNames) seen() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.calls)
}

func startTestDNS(t *testing.T, lookup DNSLookup, upstreams ...netip.AddrPort) *DNSServer {
	t.Helper()
	s, err := StartDNS(loopback0, lookup, upstreams)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// query builds a query for name and type; ednsSize > 0 adds an OPT record.
func query(t *testing.T, id uint16, name string, typ dnsmessage.Type, ednsSize int) []byte {
	t.Helper()
	m := dnsmessage.Message{
		Header:    dnsmessage.Header{ID: id, RecursionDesired: true},
		Questions: []dnsmessage.Question{{Name: dnsmessage.MustNewName(name), Type: typ, Class: dnsmessage.ClassINET}},
	}
	if ednsSize > 0 {
		var opt dnsmessage.ResourceHeader
		opt.SetEDNS0(ednsSize, dnsmessage.RCodeSuccess, false)
		m.Additionals = []dnsmessage.Resource{{Header: opt, Body: &dnsmessage.OPTResource{}}}
	}
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// exchangeRaw sends msg to server over "udp" or "tcp" and returns the
// reply whose ID is the query's (UDP replies to other queries are skipped).
func exchangeRaw(t *testing.T, network string, server netip.AddrPort, msg []byte) []byte {
	t.Helper()
	c, err := net.Dial(network, server.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if network == "tcp" {
		if err := writeTCPMsg(c, msg); err != nil {
			t.Fatal(err)
		}
		resp, err := readTCPMsg(c)
		if err != nil {
			t.Fatalf("read the answer over TCP: %v", err)
		}
		return resp
	}
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 65535)
	for {
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("read the answer over UDP: %v", err)
		}
		if n >= 2 && binary.BigEndian.Uint16(buf) == binary.BigEndian.Uint16(msg) {
			return buf[:n]
		}
		t.Errorf("an unexpected reply (ID %d) came before the answer: %x", binary.BigEndian.Uint16(buf), buf[:n])
	}
}

func unpack(t *testing.T, b []byte) dnsmessage.Message {
	t.Helper()
	var m dnsmessage.Message
	if err := m.Unpack(b); err != nil {
		t.Fatalf("unpack the answer %x: %v", b, err)
	}
	return m
}

// answersA lists the addresses of the A records of m.
func answersA(t *testing.T, m dnsmessage.Message) []netip.Addr {
	t.Helper()
	var out []netip.Addr
	for _, r := range m.Answers {
		a, ok := r.Body.(*dnsmessage.AResource)
		if !ok {
			t.Fatalf("answer %v is not an A record", r)
		}
		out = append(out, netip.AddrFrom4(a.A))
	}
	return out
}

// goResolver is Go's own DNS client sending every query to s over network
// ("udp" or "tcp"), whatever /etc/resolv.conf says.
func goResolver(s *DNSServer, network string) *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, s.Addr().String())
	}}
}

func TestDNSKnownNameGoResolver(t *testing.T) {
	names := &testNames{}
	s := startTestDNS(t, names.lookup)
	want := []netip.Addr{netip.MustParseAddr("10.213.1.2"), netip.MustParseAddr("10.213.1.3")}
	for _, network := range []string{"udp", "tcp"} {
		t.Run(network, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			got, err := goResolver(s, network).LookupNetIP(ctx, "ip4", "web.")
			if err != nil {
				t.Fatalf("look up web.: %v", err)
			}
			if !slices.Equal(got, want) {
				t.Errorf("web. = %v, want %v", got, want)
			}
			_, err = goResolver(s, network).LookupNetIP(ctx, "ip4", "nosuch.")
			var de *net.DNSError
			if !errors.As(err, &de) || !de.IsNotFound {
				t.Errorf("nosuch.: got %v, want a not-found DNSError", err)
			}
		})
	}
	if calls := names.seen(); !slices.Contains(calls, "127.0.0.1 web") {
		t.Errorf("lookup calls %q: want one for web from 127.0.0.1", calls)
	}
}

func TestDNSKnownNameRaw(t *testing.T) {
	s := startTestDNS(t, (&testNames{}).lookup)
	m := unpack(t, exchangeRaw(t, "udp", s.Addr(), query(t, 4242, "web.", dnsmessage.TypeA, 0)))
	h := m.Header
	if h.ID != 4242 || !h.Response || h.RCode != dnsmessage.RCodeSuccess || !h.RecursionAvailable ||
		!h.RecursionDesired || h.Authoritative || h.Truncated {
		t.Errorf("header %+v: want ID 4242, a response, NOERROR, RA and RD set, AA and TC clear", h)
	}
	if len(m.Questions) != 1 || m.Questions[0].Name.String() != "web." {
		t.Errorf("questions %v: want the one asked", m.Questions)
	}
	got := answersA(t, m)
	if want := []netip.Addr{netip.MustParseAddr("10.213.1.2"), netip.MustParseAddr("10.213.1.3")}; !slices.Equal(got, want) {
		t.Errorf("answers %v, want %v", got, want)
	}
	for _, r := range m.Answers {
		if r.Header.TTL != 600 || r.Header.Name.String() != "web." || r.Header.Class != dnsmessage.ClassINET {
			t.Errorf("record header %+v: want web. IN TTL 600", r.Header)
		}
	}
	if len(m.Additionals) != 0 {
		t.Errorf("additionals %v for a query without EDNS", m.Additionals)
	}
}

func TestDNSCaseInsensitive(t *testing.T) {
	names := &testNames{}
	s := startTestDNS(t, names.lookup)
	m := unpack(t, exchangeRaw(t, "udp", s.Addr(), query(t, 7, "WeB.", dnsmessage.TypeA, 0)))
	if m.RCode != dnsmessage.RCodeSuccess || len(m.Answers) != 2 {
		t.Fatalf("WeB.: %v with %d answers, want NOERROR with 2", m.RCode, len(m.Answers))
	}
	if n := m.Answers[0].Header.Name.String(); n != "WeB." {
		t.Errorf("answer name %q, want the name as asked, WeB.", n)
	}
	if calls := names.seen(); !slices.Equal(calls, []string{"127.0.0.1 web"}) {
		t.Errorf("lookup calls %q, want [127.0.0.1 web]", calls)
	}
}

func TestDNSKnownNameOtherTypes(t *testing.T) {
	s := startTestDNS(t, (&testNames{}).lookup)
	for _, c := range []struct {
		name string
		typ  dnsmessage.Type
	}{{"web.", dnsmessage.TypeAAAA}, {"web.", dnsmessage.TypeMX}, {"v6only.", dnsmessage.TypeA}} {
		m := unpack(t, exchangeRaw(t, "udp", s.Addr(), query(t, 9, c.name, c.typ, 0)))
		if m.RCode != dnsmessage.RCodeSuccess || len(m.Answers) != 0 || !m.Response {
			t.Errorf("%s %v: %v with %d answers, want NOERROR with none", c.name, c.typ, m.RCode, len(m.Answers))
		}
	}
}

func TestDNSUnknownNoUpstream(t *testing.T) {
	names := &testNames{}
	s := startTestDNS(t, names.lookup)
	for _, network := range []string{"udp", "tcp"} {
		m := unpack(t, exchangeRaw(t, network, s.Addr(), query(t, 11, "nosuch.example.", dnsmessage.TypeA, 0)))
		if m.ID != 11 || m.RCode != dnsmessage.RCodeNameError || len(m.Answers) != 0 {
			t.Errorf("%s: ID %d %v with %d answers, want ID 11 NXDOMAIN with none", network, m.ID, m.RCode, len(m.Answers))
		}
	}
	if calls := names.seen(); len(calls) != 2 || calls[0] != "127.0.0.1 nosuch.example" {
		t.Errorf("lookup calls %q, want two for nosuch.example from 127.0.0.1", calls)
	}
}

// fakeUpstream is a DNS server on 127.0.0.1, UDP and TCP on one port, that
// answers every query with rcode and, if that is NOERROR, A 192.0.2.7; it
// records the queries it gets.
type fakeUpstream struct {
	addr    netip.AddrPort
	answers int
	rcode   dnsmessage.RCode
	mu      sync.Mutex
	queries []string // "udp name" or "tcp name"
	ids     []uint16
}

// startFakeUpstream runs one; answers > 1 makes it answer with that many
// records, so that the answer can be too big for UDP.
func startFakeUpstream(t *testing.T, answers int, rcode dnsmessage.RCode) *fakeUpstream {
	t.Helper()
	udp, tcp, err := listenDNS(loopback0)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeUpstream{addr: udp.LocalAddr().(*net.UDPAddr).AddrPort(), answers: answers, rcode: rcode}
	var wg sync.WaitGroup
	t.Cleanup(func() { udp.Close(); tcp.Close(); wg.Wait() })
	wg.Add(2)
	go func() {
		defer wg.Done()
		buf := make([]byte, 65535)
		for {
			n, from, err := udp.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			if resp := f.answer(t, "udp", buf[:n]); resp != nil {
				udp.WriteToUDPAddrPort(resp, from)
			}
		}
	}()
	go func() {
		defer wg.Done()
		for {
			c, err := tcp.Accept()
			if err != nil {
				return
			}
			c.SetDeadline(time.Now().Add(10 * time.Second))
			if msg, err := readTCPMsg(c); err == nil {
				if resp := f.answer(t, "tcp", msg); resp != nil {
					writeTCPMsg(c, resp)
				}
			}
			c.Close()
		}
	}()
	return f
}

func (f *fakeUpstream) answer(t *testing.T, network string, msg []byte) []byte {
	var m dnsmessage.Message
	if err := m.Unpack(msg); err != nil || len(m.Questions) != 1 {
		t.Errorf("fake upstream got a bad query %x: %v", msg, err)
		return nil
	}
	f.mu.Lock()
	f.queries = append(f.queries, network+" "+m.Questions[0].Name.String())
	f.ids = append(f.ids, m.ID)
	f.mu.Unlock()
	m.Response, m.RecursionAvailable, m.RCode, m.Additionals = true, true, f.rcode, nil
	for range f.answers {
		m.Answers = append(m.Answers, dnsmessage.Resource{
			Header: dnsmessage.ResourceHeader{Name: m.Questions[0].Name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET, TTL: 30},
			Body:   &dnsmessage.AResource{A: [4]byte{192, 0, 2, 7}},
		})
	}
	b, err := m.Pack()
	if err != nil {
		t.Errorf("fake upstream: %v", err)
	}
	return b
}

func (f *fakeUpstream) seen() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.queries)
}

// deadPort is a 127.0.0.1 UDP and TCP port where nothing listens: a query
// sent there is refused at once (ICMP port unreachable, or RST).
func deadPort(t *testing.T) netip.AddrPort {
	t.Helper()
	udp, tcp, err := listenDNS(loopback0)
	if err != nil {
		t.Fatal(err)
	}
	a := udp.LocalAddr().(*net.UDPAddr).AddrPort()
	udp.Close()
	tcp.Close()
	return a
}

func TestDNSForward(t *testing.T) {
	up := startFakeUpstream(t, 1, dnsmessage.RCodeSuccess)
	names := &testNames{}
	s := startTestDNS(t, names.lookup, up.addr)
	for i, network := range []string{"udp", "tcp"} {
		id := uint16(1000 + i)
		m := unpack(t, exchangeRaw(t, network, s.Addr(), query(t, id, "Example.org.", dnsmessage.TypeA, 0)))
		if m.ID != id || m.RCode != dnsmessage.RCodeSuccess {
			t.Errorf("%s: ID %d %v, want the client's ID %d and NOERROR", network, m.ID, m.RCode, id)
		}
		if got := answersA(t, m); !slices.Equal(got, []netip.Addr{netip.MustParseAddr("192.0.2.7")}) || m.Answers[0].Header.TTL != 30 {
			t.Errorf("%s: relayed answers %v, want the upstream's 192.0.2.7 TTL 30", network, m.Answers)
		}
	}
	// The known name is answered here and never reaches the upstream.
	if m := unpack(t, exchangeRaw(t, "udp", s.Addr(), query(t, 3, "web.", dnsmessage.TypeA, 0))); len(m.Answers) != 2 {
		t.Errorf("web. with an upstream: %d answers, want our 2", len(m.Answers))
	}
	if got := up.seen(); !slices.Equal(got, []string{"udp Example.org.", "tcp Example.org."}) {
		t.Errorf("upstream got %q, want the name as asked once over UDP, once over TCP", got)
	}
}

func TestDNSForwardSkipsDeadUpstream(t *testing.T) {
	up := startFakeUpstream(t, 1, dnsmessage.RCodeSuccess)
	s := startTestDNS(t, (&testNames{}).lookup, deadPort(t), up.addr)
	for _, network := range []string{"udp", "tcp"} {
		m := unpack(t, exchangeRaw(t, network, s.Addr(), query(t, 77, "example.org.", dnsmessage.TypeA, 0)))
		if m.RCode != dnsmessage.RCodeSuccess || len(m.Answers) != 1 {
			t.Errorf("%s: %v with %d answers, want the second upstream's answer", network, m.RCode, len(m.Answers))
		}
	}
}

// An upstream that answers SERVFAIL or REFUSED is passed over, as Docker
// does; NXDOMAIN is an answer and is relayed.
func TestDNSForwardSkipsFailingUpstream(t *testing.T) {
	servfail := startFakeUpstream(t, 0, dnsmessage.RCodeServerFailure)
	refused := startFakeUpstream(t, 0, dnsmessage.RCodeRefused)
	nxdomain := startFakeUpstream(t, 0, dnsmessage.RCodeNameError)
	good := startFakeUpstream(t, 1, dnsmessage.RCodeSuccess)
	s := startTestDNS(t, (&testNames{}).lookup, servfail.addr, refused.addr, good.addr)
	m := unpack(t, exchangeRaw(t, "udp", s.Addr(), query(t, 80, "example.org.", dnsmessage.TypeA, 0)))
	if m.RCode != dnsmessage.RCodeSuccess || len(m.Answers) != 1 {
		t.Errorf("%v with %d answers, want the third upstream's answer", m.RCode, len(m.Answers))
	}
	for _, up := range []*fakeUpstream{servfail, refused, good} {
		if got := up.seen(); len(got) != 1 {
			t.Errorf("upstream %v got %q, want the query once", up.addr, got)
		}
	}
	s2 := startTestDNS(t, (&testNames{}).lookup, nxdomain.addr, good.addr)
	if m := unpack(t, exchangeRaw(t, "udp", s2.Addr(), query(t, 81, "example.org.", dnsmessage.TypeA, 0))); m.RCode != dnsmessage.RCodeNameError {
		t.Errorf("first upstream says NXDOMAIN: got %v, want NXDOMAIN relayed", m.RCode)
	}
}

func TestDNSDeadUpstreamServfail(t *testing.T) {
	s := startTestDNS(t, (&testNames{}).lookup, deadPort(t), deadPort(t))
	for _, network := range []string{"udp", "tcp"} {
		m := unpack(t, exchangeRaw(t, network, s.Addr(), query(t, 78, "example.org.", dnsmessage.TypeA, 0)))
		if m.ID != 78 || m.RCode != dnsmessage.RCodeServerFailure {
			t.Errorf("%s: ID %d %v, want ID 78 SERVFAIL", network, m.ID, m.RCode)
		}
	}
}

// An upstream that never answers: SERVFAIL after its timeout (2 s).
func TestDNSSilentUpstreamServfail(t *testing.T) {
	silent, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(loopback0))
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	s := startTestDNS(t, (&testNames{}).lookup, silent.LocalAddr().(*net.UDPAddr).AddrPort())
	m := unpack(t, exchangeRaw(t, "udp", s.Addr(), query(t, 79, "example.org.", dnsmessage.TypeA, 0)))
	if m.RCode != dnsmessage.RCodeServerFailure {
		t.Errorf("%v, want SERVFAIL", m.RCode)
	}
}

func TestDNSTruncation(t *testing.T) {
	names := &testNames{many: 100} // 100 A records: about 1.6 kB
	s := startTestDNS(t, names.lookup)
	for _, c := range []struct {
		network     string
		edns        int
		wantAnswers int
		wantTC      bool
	}{
		{"udp", 0, 0, true},    // 512 bytes
		{"udp", 4096, 0, true}, // we send at most 1232 bytes over UDP
		{"tcp", 0, 100, false}, // no limit but the framing's
		{"tcp", 4096, 100, false},
	} {
		b := exchangeRaw(t, c.network, s.Addr(), query(t, 5, "many.", dnsmessage.TypeA, c.edns))
		m := unpack(t, b)
		if len(m.Answers) != c.wantAnswers || m.Truncated != c.wantTC || m.RCode != dnsmessage.RCodeSuccess {
			t.Errorf("%s edns %d: %d answers TC=%v %v, want %d answers TC=%v NOERROR",
				c.network, c.edns, len(m.Answers), m.Truncated, m.RCode, c.wantAnswers, c.wantTC)
		}
		if c.network == "udp" && len(b) > max(512, min(c.edns, 1232)) {
			t.Errorf("udp edns %d: a %d-byte answer", c.edns, len(b))
		}
		if hasOPT := len(m.Additionals) == 1 && m.Additionals[0].Header.Type == dnsmessage.TypeOPT; hasOPT != (c.edns > 0) {
			t.Errorf("%s edns %d: additionals %v, want an OPT record only when the query had one", c.network, c.edns, m.Additionals)
		}
	}
	// 60 records (about 1 kB) fit in an EDNS answer but not in 512 bytes.
	names.mu.Lock()
	names.many = 60
	names.mu.Unlock()
	if m := unpack(t, exchangeRaw(t, "udp", s.Addr(), query(t, 6, "many.", dnsmessage.TypeA, 1232))); len(m.Answers) != 60 || m.Truncated {
		t.Errorf("udp edns 1232: %d answers TC=%v, want 60 and no TC", len(m.Answers), m.Truncated)
	}
}

// An upstream's answer too big for the client's UDP size is cut to TC.
func TestDNSForwardTruncates(t *testing.T) {
	up := startFakeUpstream(t, 60, dnsmessage.RCodeSuccess)
	s := startTestDNS(t, (&testNames{}).lookup, up.addr)
	m := unpack(t, exchangeRaw(t, "udp", s.Addr(), query(t, 12, "big.example.", dnsmessage.TypeA, 0)))
	if m.ID != 12 || !m.Truncated || len(m.Answers) != 0 || len(m.Questions) != 1 {
		t.Errorf("ID %d TC=%v, %d answers, %d questions: want ID 12, TC, no answers, the question", m.ID, m.Truncated, len(m.Answers), len(m.Questions))
	}
	if m := unpack(t, exchangeRaw(t, "tcp", s.Addr(), query(t, 13, "big.example.", dnsmessage.TypeA, 0))); len(m.Answers) != 60 {
		t.Errorf("over TCP: %d answers, want 60", len(m.Answers))
	}
}

func TestDNSMalformed(t *testing.T) {
	s := startTestDNS(t, (&testNames{}).lookup)
	c, err := net.Dial("udp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// Too short for a header, and a response rather than a query: no answer.
	response := query(t, 31, "web.", dnsmessage.TypeA, 0)
	response[2] |= 0x80 // QR
	for _, p := range [][]byte{{}, {1, 2, 3}, response} {
		if _, err := c.Write(p); err != nil {
			t.Fatal(err)
		}
	}
	// A header that says one question, and no question: FORMERR.
	formerr := []byte{0, 32, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0}
	twoQuestions := query(t, 33, "web.", dnsmessage.TypeA, 0)
	twoQuestions[5] = 2 // QDCOUNT 2, with one question after it
	for _, p := range [][]byte{formerr, twoQuestions} {
		m := unpack(t, exchangeRaw(t, "udp", s.Addr(), p))
		if m.ID != binary.BigEndian.Uint16(p) || m.RCode != dnsmessage.RCodeFormatError || !m.Response {
			t.Errorf("%x: ID %d %v, want ID %d FORMERR", p, m.ID, m.RCode, binary.BigEndian.Uint16(p))
		}
	}
	// An opcode other than QUERY: NOTIMP.
	notify := query(t, 34, "web.", dnsmessage.TypeA, 0)
	notify[2] |= 4 << 3
	if m := unpack(t, exchangeRaw(t, "udp", s.Addr(), notify)); m.RCode != dnsmessage.RCodeNotImplemented {
		t.Errorf("opcode 4: %v, want NOTIMP", m.RCode)
	}
	// Garbage over TCP: a length of 5, then 5 bytes of nothing DNS.
	tc, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	tc.Write([]byte{0, 5, 0xff, 0xff, 0xff, 0xff, 0xff})
	tc.Close()
	// Still alive, on both transports.
	for _, network := range []string{"udp", "tcp"} {
		if m := unpack(t, exchangeRaw(t, network, s.Addr(), query(t, 35, "web.", dnsmessage.TypeA, 0))); len(m.Answers) != 2 {
			t.Errorf("%s after garbage: %d answers, want 2", network, len(m.Answers))
		}
	}
	// By now the dropped packets would have had their answers, if any.
	c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if n, err := c.Read(make([]byte, 512)); err == nil {
		t.Errorf("a %d-byte reply to a packet that should be dropped", n)
	}
}

func TestDNSCloseReleasesPort(t *testing.T) {
	s, err := StartDNS(loopback0, (&testNames{}).lookup, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr := s.Addr()
	if addr.Port() == 0 || addr.Addr() != netip.MustParseAddr("127.0.0.1") {
		t.Fatalf("Addr() = %v, want 127.0.0.1 with the port chosen", addr)
	}
	// An idle TCP client must not keep Close waiting.
	idle, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	done := make(chan error, 1)
	go func() { done <- s.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return within 10 s with an idle TCP client")
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	s2, err := StartDNS(addr, (&testNames{}).lookup, nil)
	if err != nil {
		t.Fatalf("listen again on %s after Close: %v", addr, err)
	}
	defer s2.Close()
	if s2.Addr() != addr {
		t.Errorf("second server on %v, want %v", s2.Addr(), addr)
	}
	if m := unpack(t, exchangeRaw(t, "tcp", addr, query(t, 1, "web.", dnsmessage.TypeA, 0))); len(m.Answers) != 2 {
		t.Errorf("second server: %d answers, want 2", len(m.Answers))
	}
	// The port is taken while s2 runs: a clear error, not a second server.
	if s3, err := StartDNS(addr, (&testNames{}).lookup, nil); err == nil {
		s3.Close()
		t.Errorf("StartDNS on %s in use: no error", addr)
	}
}
