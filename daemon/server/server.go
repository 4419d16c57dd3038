// Package server is the Engine API over HTTP: `minidock daemon` (Main)
// listens on its sockets and each handler decodes a request, calls one
// method of the engine (package daemon) and encodes the answer, in
// Docker's shapes (package api) and with Docker's status codes for the
// engine's error kinds (package errdefs). It holds no engine logic: moby's
// router over its backend is the model.
package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"minidock/api"
	"minidock/bridge"
	"minidock/daemon"
	"minidock/internal/errdefs"
)

type listFlag []string

func (h *listFlag) String() string     { return strings.Join(*h, ",") }
func (h *listFlag) Set(v string) error { *h = append(*h, v); return nil }

// Main runs `minidock daemon ARGS...` (or `minidockd ARGS...`). It takes
// its sockets before it makes any directory, so that a daemon that cannot
// listen fails without leaving anything behind.
func Main(args []string) int {
	var cfg daemon.Config
	var lo ListenOptions
	var maxConns int
	var idle time.Duration
	var hosts, pools, dns, insecure, clusterOpts listFlag
	fs := flag.NewFlagSet("minidock daemon", flag.ContinueOnError)
	fs.StringVar(&cfg.DataRoot, "data-root", "/var/lib/minidock", "root of persistent state")
	fs.StringVar(&cfg.ExecRoot, "exec-root", "/run/minidock", "root of runtime state and sockets")
	fs.Var(&hosts, "H", "socket to listen on, unix:///path or tcp://ADDR:PORT (repeatable)")
	fs.Var(&hosts, "host", "same as -H")
	fs.BoolVar(&lo.TLSVerify, "tlsverify", false, "tcp:// hosts speak TLS and require a client certificate signed by --tlscacert")
	fs.StringVar(&lo.TLSCACert, "tlscacert", "", "CA certificate (PEM) that signs the clients' certificates")
	fs.StringVar(&lo.TLSCert, "tlscert", "", "the daemon's TLS certificate (PEM)")
	fs.StringVar(&lo.TLSKey, "tlskey", "", "the daemon's TLS private key (PEM)")
	fs.BoolVar(&lo.InsecureTCPLoopback, "insecure-tcp-loopback", false, "allow a tcp:// host on a loopback address without TLS (any local user becomes root)")
	fs.IntVar(&maxConns, "max-connections", 0, "bound on open API connections, all sockets together (default: a quarter of RLIMIT_NOFILE)")
	fs.DurationVar(&idle, "idle-timeout", DefaultIdleTimeout, "close a keep-alive connection idle this long")
	fs.Func("max-unpack-size", "the most one layer, and one load or import in all, may expand to, such as 64g (default 64g; the free space is watched too)", func(v string) (err error) {
		cfg.MaxUnpackSize, err = api.ParseBytes(v)
		return err
	})
	fs.StringVar(&cfg.Runtime, "runtime", "", "OCI runtime binary (default: minidock's own runtime, in the shim's process)")
	fs.StringVar(&cfg.CgroupParent, "cgroup-parent", "/minidock", "parent cgroup of the containers")
	fs.BoolVar(&cfg.Trace, "trace", false, "trace every container into its trace file, GET /containers/{id}/trace (also MINIDOCK_TRACE=1; never into its logs)")
	fs.StringVar(&cfg.Network.Bridge, "bridge", "minidock0", "Linux bridge of the default network")
	fs.StringVar(&cfg.Network.BIP, "bip", "", "address and prefix of the default bridge, such as 172.30.0.1/16 (default: a free subnet of the pools)")
	fs.Var(&pools, "default-address-pool", "subnets for networks: base=CIDR,size=N (repeatable)")
	fs.StringVar(&cfg.Network.NftTable, "nft-table", bridge.DefaultTable, "nftables table (family inet) of minidock's rules")
	fs.StringVar(&cfg.UsernsRemap, "userns-remap", "", "user namespace of containers: \"default\" (user dockremap) or USER[:GROUP], whose /etc/subuid and /etc/subgid ranges the containers' ids become")
	fs.Var(&dns, "dns", "upstream resolver of the embedded DNS server, IP[:PORT] (repeatable; \"none\": answer only container names; default: the host's)")
	fs.Var(&insecure, "insecure-registry", "registry reached over plain HTTP or unverified HTTPS: host[:port] or CIDR (repeatable; loopback always is)")
	fs.StringVar(&cfg.Registry.CertsDir, "registry-certs-dir", "/etc/docker/certs.d", "per-registry CAs and client certificates, <host:port>/ca.crt")
	fs.StringVar(&cfg.Network.ClusterStore, "cluster-store", "", "the cluster store of overlay networks: etcd://HOST:PORT[,HOST:PORT...]")
	fs.StringVar(&cfg.Network.ClusterAdvertise, "cluster-advertise", "", "this host's address (or interface) that the other members of the cluster reach")
	fs.Var(&clusterOpts, "cluster-store-opt", "cluster option KEY=VALUE: discovery.ttl=SECONDS (the member's lease, 15), kv.path=/PREFIX/ (repeatable)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg.Registry.Insecure = insecure
	if v := os.Getenv("MINIDOCK_TRACE"); v != "" && v != "0" && v != "false" {
		cfg.Trace = true
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "minidock daemon: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	cfg.Network.AddressPools, cfg.Network.DNS, cfg.Network.ClusterOpts = pools, dns, clusterOpts
	if len(hosts) == 0 {
		hosts = []string{"unix://" + filepath.Join(cfg.ExecRoot, "minidock.sock")}
	}
	logger := log.New(os.Stderr, "minidock daemon: ", log.LstdFlags)
	cfg.Log = logger
	lo.Hosts = hosts
	lim := newConnLimiter(maxConns, logger)
	lns, err := listen(&lo, lim)
	if err != nil {
		logger.Print(err)
		return 1
	}
	d, err := daemon.New(cfg)
	if err != nil {
		closeAll(lns)
		logger.Print(err)
		return 1
	}
	logger.Printf("listening on %s; %s", lo.describe(), d.Describe())
	ctx, stop := signal.NotifyContext(context.Background(), unix.SIGINT, unix.SIGTERM)
	defer stop()
	err = serve(ctx, d, lns, lim, idle)
	logger.Printf("stopping (%v)", context.Cause(ctx))
	d.Close()
	if err != nil {
		logger.Print(err)
		return 1
	}
	return 0
}

// serve answers on listeners whose connections lim counts: an idle
// keep-alive connection is closed after idle, a request whose headers do
// not come in 30 s too; nothing else has a timeout (streams and hijacked
// connections last as long as they need).
func serve(ctx context.Context, d *daemon.Daemon, lns []net.Listener, lim *connLimiter, idle time.Duration) error {
	if idle <= 0 {
		idle = DefaultIdleTimeout
	}
	srv := &http.Server{Handler: Handler(d), ReadHeaderTimeout: 30 * time.Second, IdleTimeout: idle, ConnState: lim.connState, ErrorLog: lim.log}
	errc := make(chan error, len(lns))
	for _, ln := range lns {
		go func(ln net.Listener) { errc <- srv.Serve(ln) }(ln)
	}
	select {
	case <-ctx.Done():
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			srv.Close()
			return err
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	srv.Shutdown(sctx)
	srv.Close() // hijacked and streaming connections end here
	return nil
}

// router is the handlers over one engine.
type router struct{ d *daemon.Daemon }

var versionPrefix = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^/v([0-9]+\.[0-9]+)(/.*)$`) })

// Handler is the Engine API: the version prefix is checked and stripped,
// Docker's headers are set on every reply, then the routes.
func Handler(d *daemon.Daemon) http.Handler {
	r := router{d}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /_ping", ping)
	mux.HandleFunc("HEAD /_ping", ping)
	mux.HandleFunc("GET /version", r.version)
	mux.HandleFunc("GET /info", r.info)
	mux.HandleFunc("GET /events", r.events)

	mux.HandleFunc("/images/", r.images)
	mux.HandleFunc("POST /auth", r.auth)

	mux.HandleFunc("POST /containers/create", r.containerCreate)
	mux.HandleFunc("GET /containers/json", r.containerList)
	mux.HandleFunc("GET /containers/{id}/json", r.containerInspect)
	mux.HandleFunc("POST /containers/{id}/start", r.containerStart)
	mux.HandleFunc("POST /containers/{id}/stop", r.containerStop)
	mux.HandleFunc("POST /containers/{id}/kill", r.containerKill)
	mux.HandleFunc("POST /containers/{id}/restart", r.containerRestart)
	mux.HandleFunc("POST /containers/{id}/wait", r.containerWait)
	mux.HandleFunc("DELETE /containers/{id}", r.containerRemove)
	mux.HandleFunc("GET /containers/{id}/logs", r.containerLogs)
	mux.HandleFunc("GET /containers/{id}/trace", r.containerTrace)
	mux.HandleFunc("POST /containers/{id}/attach", r.containerAttach)
	mux.HandleFunc("POST /containers/{id}/resize", r.containerResize)
	mux.HandleFunc("POST /containers/{id}/step", r.containerStep)
	mux.HandleFunc("POST /containers/{id}/pause", r.containerPause)
	mux.HandleFunc("POST /containers/{id}/unpause", r.containerUnpause)
	mux.HandleFunc("GET /containers/{id}/top", r.containerTop)
	mux.HandleFunc("GET /containers/{id}/stats", r.containerStats)
	mux.HandleFunc("GET /containers/{id}/explain", r.containerExplain) // minidock's own
	mux.HandleFunc("POST /containers/{id}/rename", r.containerRename)
	mux.HandleFunc("GET /containers/{id}/export", r.containerExport)
	mux.HandleFunc("GET /containers/{id}/changes", r.containerChanges)
	mux.HandleFunc("HEAD /containers/{id}/archive", r.containerStatPath)
	mux.HandleFunc("GET /containers/{id}/archive", r.containerArchive)
	mux.HandleFunc("PUT /containers/{id}/archive", r.containerExtract)
	mux.HandleFunc("POST /containers/prune", r.containersPrune)
	mux.HandleFunc("POST /commit", r.commit)
	mux.HandleFunc("POST /build", r.build)

	mux.HandleFunc("POST /containers/{id}/exec", r.execCreate)
	mux.HandleFunc("POST /exec/{id}/start", r.execStart)
	mux.HandleFunc("POST /exec/{id}/resize", r.execResize)
	mux.HandleFunc("GET /exec/{id}/json", r.execInspect)

	mux.HandleFunc("GET /networks", r.networkList)
	mux.HandleFunc("GET /networks/{id}", r.networkInspect)
	mux.HandleFunc("POST /networks/create", r.networkCreate)
	mux.HandleFunc("DELETE /networks/{id}", r.networkRemove)
	mux.HandleFunc("POST /networks/{id}/connect", r.networkConnect)
	mux.HandleFunc("POST /networks/{id}/disconnect", r.networkDisconnect)
	mux.HandleFunc("POST /networks/prune", r.networksPrune)

	mux.HandleFunc("GET /volumes", r.volumeList)
	mux.HandleFunc("GET /volumes/{name}", r.volumeInspect)
	mux.HandleFunc("POST /volumes/create", r.volumeCreate)
	mux.HandleFunc("DELETE /volumes/{name}", r.volumeRemove)
	mux.HandleFunc("POST /volumes/prune", r.volumesPrune)
	mux.HandleFunc("/", func(w http.ResponseWriter, req *http.Request) {
		writeError(w, errdefs.NotFoundf("page not found: %s %s", req.Method, req.URL.Path))
	})

	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		h := w.Header()
		h.Set("Api-Version", api.Version)
		h.Set("Ostype", "linux")
		h.Set("Docker-Experimental", "false")
		h.Set("Server", "Minidock/"+daemon.ServerVersion+" ("+runtime.GOOS+")")
		if m := versionPrefix().FindStringSubmatch(req.URL.Path); m != nil {
			if versionLess(api.Version, m[1]) {
				writeError(w, errdefs.Invalidf("client version %s is too new. Maximum supported API version is %s", m[1], api.Version))
				return
			}
			if versionLess(m[1], api.MinVersion) {
				writeError(w, errdefs.Invalidf("client version %s is too old. Minimum supported API version is %s, please upgrade your client to a newer version", m[1], api.MinVersion))
				return
			}
			req.URL.Path = m[2]
			req.URL.RawPath = ""
			req = req.WithContext(context.WithValue(req.Context(), versionKey{}, m[1]))
		}
		mux.ServeHTTP(w, req)
	})
}

// versionKey is the request context's key of the API version the client
// asked for in its path.
type versionKey struct{}

// apiVersion is the API version of a request: its /vX.Y/ prefix, or the
// daemon's own without one.
func apiVersion(r *http.Request) string {
	if v, ok := r.Context().Value(versionKey{}).(string); ok {
		return v
	}
	return api.Version
}

// versionLess compares "major.minor" versions.
func versionLess(a, b string) bool {
	am, an, _ := strings.Cut(a, ".")
	bm, bn, _ := strings.Cut(b, ".")
	x, _ := strconv.Atoi(am)
	y, _ := strconv.Atoi(bm)
	if x != y {
		return x < y
	}
	x, _ = strconv.Atoi(an)
	y, _ = strconv.Atoi(bn)
	return x < y
}

// maxJSONBody bounds request bodies decoded as JSON.
const maxJSONBody = 1 << 20

// statusOf is the HTTP status Docker answers an error of each kind with.
func statusOf(err error) int {
	switch errdefs.KindOf(err) {
	case errdefs.NotFound:
		return http.StatusNotFound
	case errdefs.Conflict:
		return http.StatusConflict
	case errdefs.InvalidParameter:
		return http.StatusBadRequest
	case errdefs.Forbidden:
		return http.StatusForbidden
	case errdefs.NotModified:
		return http.StatusNotModified
	case errdefs.NotImplemented:
		return http.StatusNotImplemented
	case errdefs.TooLarge:
		return http.StatusRequestEntityTooLarge
	case errdefs.Unauthorized:
		return http.StatusUnauthorized
	case errdefs.Unavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		writeError(w, fmt.Errorf("encode reply: %w", err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// writeError sends {"message": ...} with the error's status.
func writeError(w http.ResponseWriter, err error) {
	status := statusOf(err)
	if status == http.StatusNotModified {
		w.WriteHeader(status)
		return
	}
	writeJSON(w, status, api.ErrorResponse{Message: err.Error()})
}

// reply writes the engine's answer: the error's status, or status with v
// (nil: no body).
func reply(w http.ResponseWriter, status int, v any, err error) {
	switch {
	case err != nil:
		writeError(w, err)
	case v == nil:
		w.WriteHeader(status)
	default:
		writeJSON(w, status, v)
	}
}

// decodeJSON reads a JSON body of at most maxJSONBody bytes into v.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	body := http.MaxBytesReader(w, r.Body, maxJSONBody)
	if err := json.NewDecoder(body).Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &errdefs.Error{Kind: errdefs.TooLarge, Err: fmt.Errorf("request body is larger than %d bytes", maxJSONBody)}
		}
		if errors.Is(err, io.EOF) {
			return errdefs.Invalidf("request body is empty; a JSON object is required")
		}
		return errdefs.Invalidf("invalid JSON in request body: %v", err)
	}
	return nil
}

func boolParam(r *http.Request, name string) bool {
	v := r.URL.Query().Get(name)
	return v != "" && v != "0" && !strings.EqualFold(v, "false")
}

// filters reads the filters= parameter.
func filters(r *http.Request) (api.Filters, error) {
	f, err := api.ParseFilters(r.URL.Query().Get("filters"))
	if err != nil {
		return nil, errdefs.Wrap(errdefs.InvalidParameter, err)
	}
	return f, nil
}

func ping(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-cache, no-store, must-revalidate")
	w.Header().Set("Pragma", "no-cache")
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	// The classic builder (POST /build), not BuildKit's: a docker CLI
	// told "2" would try BuildKit's session protocol.
	w.Header().Set("Builder-Version", "1")
	if r.Method == http.MethodHead {
		w.Header().Set("Content-Length", "0")
		return
	}
	io.WriteString(w, "OK")
}
