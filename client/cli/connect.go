package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"

	"minidock/client"
)

// connection is how the command line reaches its daemon: the global
// flags -H, --tlsverify, --tlscacert, --tlscert and --tlskey, over the
// environment, with docker's conventions:
//
//	-H                   MINIDOCK_HOST, else DOCKER_HOST, else unix:///run/minidock/minidock.sock
//	--tlsverify          DOCKER_TLS_VERIFY (any value but "")
//	--tlscacert ...      DOCKER_CERT_PATH/{ca,cert,key}.pem, else ~/.docker/{ca,cert,key}.pem
//
// MINIDOCK_HOST comes before DOCKER_HOST so that a shell set up for a
// docker daemon can point minidock elsewhere; a flag always wins.
type connection struct {
	host      string
	tlsVerify bool
	files     client.TLSFiles
	flags     *pflag.FlagSet // what the command line gave (Changed)
}

// addFlags declares the connection flags, their defaults from the
// environment.
func (cn *connection) addFlags(fs *pflag.FlagSet) {
	cn.flags = fs
	host := os.Getenv("MINIDOCK_HOST")
	if host == "" {
		host = os.Getenv("DOCKER_HOST")
	}
	if host == "" {
		host = client.DefaultHost
	}
	certDir := os.Getenv("DOCKER_CERT_PATH")
	if certDir == "" {
		if home, err := os.UserHomeDir(); err == nil {
			certDir = filepath.Join(home, ".docker")
		}
	}
	fs.StringVarP(&cn.host, "host", "H", host, "Daemon socket to connect to: unix:///path or tcp://host:port (also MINIDOCK_HOST, DOCKER_HOST)")
	fs.BoolVar(&cn.tlsVerify, "tlsverify", os.Getenv("DOCKER_TLS_VERIFY") != "", "Use TLS and verify the daemon (mutual TLS; also DOCKER_TLS_VERIFY)")
	fs.StringVar(&cn.files.CACert, "tlscacert", filepath.Join(certDir, "ca.pem"), "Trust certs signed only by this CA (also DOCKER_CERT_PATH)")
	fs.StringVar(&cn.files.Cert, "tlscert", filepath.Join(certDir, "cert.pem"), "Path to TLS certificate file")
	fs.StringVar(&cn.files.Key, "tlskey", filepath.Join(certDir, "key.pem"), "Path to TLS key file")
}

// config is the client configuration the flags and environment ask for.
// TLS asked for on the command line with a unix socket, or certificate
// files given without --tlsverify, are errors rather than ignored;
// DOCKER_TLS_VERIFY only applies to tcp:// hosts.
func (cn *connection) config() (client.Config, error) {
	cfg := client.Config{Host: cn.host}
	changed := func(name string) bool { return cn.flags != nil && cn.flags.Changed(name) }
	tcp := strings.HasPrefix(cn.host, "tcp://")
	if !cn.tlsVerify {
		for _, f := range []string{"tlscacert", "tlscert", "tlskey"} {
			if changed(f) {
				return cfg, fmt.Errorf("--%s needs --tlsverify", f)
			}
		}
		return cfg, nil
	}
	if !tcp {
		if changed("tlsverify") {
			return cfg, errors.New("--tlsverify needs a tcp:// host (-H tcp://HOST:PORT)")
		}
		return cfg, nil // DOCKER_TLS_VERIFY from the environment: a unix socket has no TLS
	}
	tc, err := cn.files.Config()
	if err != nil {
		return cfg, err
	}
	cfg.TLS = tc
	return cfg, nil
}
