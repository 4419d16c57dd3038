package server

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// Main is `minidock registry serve --addr HOST:PORT --root DIR
// [--htpasswd FILE] [--tls-cert FILE --tls-key FILE] [--chunk-min N]`:
// it serves until SIGINT or SIGTERM, then lets requests in flight finish.
func Main(args []string) int {
	if len(args) == 0 || args[0] != "serve" {
		fmt.Fprintln(os.Stderr, "usage: minidock registry serve --addr 127.0.0.1:5000 --root DIR [--htpasswd FILE] [--tls-cert FILE --tls-key FILE]")
		return 2
	}
	fs := flag.NewFlagSet("registry serve", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:5000", "address to listen on")
	root := fs.String("root", "/var/lib/minidock-registry", "storage directory")
	htpasswd := fs.String("htpasswd", "", "htpasswd file of bcrypt users: require HTTP basic auth")
	cert := fs.String("tls-cert", "", "TLS certificate (PEM): serve HTTPS")
	key := fs.String("tls-key", "", "TLS private key (PEM)")
	chunkMin := fs.Int64("chunk-min", 0, "ask clients for upload chunks of at least this many bytes (OCI-Chunk-Min-Length)")
	quiet := fs.Bool("quiet", false, "do not log requests")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "registry serve: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	if (*cert == "") != (*key == "") {
		fmt.Fprintln(os.Stderr, "registry serve: --tls-cert and --tls-key go together")
		return 2
	}
	opts := Options{Root: *root, ChunkMinLength: *chunkMin}
	logger := log.New(os.Stderr, "registry: ", log.LstdFlags)
	if !*quiet {
		opts.Log = logger
	}
	if *htpasswd != "" {
		users, err := LoadHtpasswd(*htpasswd)
		if err != nil {
			fmt.Fprintln(os.Stderr, "registry serve:", err)
			return 1
		}
		opts.Users = users
	}
	if err := serve(*addr, opts, *cert, *key, logger); err != nil {
		fmt.Fprintln(os.Stderr, "registry serve:", err)
		return 1
	}
	return 0
}

// serve listens on addr and serves until a signal.
func serve(addr string, opts Options, cert, key string, logger *log.Logger) error {
	srv, err := New(opts)
	if err != nil {
		return err
	}
	srv.store.removeStaleUploads(24 * time.Hour)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	hs := &http.Server{
		Handler:           srv,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	scheme := "http"
	if cert != "" {
		scheme = "https"
	}
	logger.Printf("serving %s://%s from %s", scheme, ln.Addr(), opts.Root)
	errc := make(chan error, 1)
	go func() {
		if cert != "" {
			errc <- hs.ServeTLS(ln, cert, key)
		} else {
			errc <- hs.Serve(ln)
		}
	}()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	select {
	case err := <-errc:
		return err
	case <-sig:
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := hs.Shutdown(ctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
