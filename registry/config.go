package registry

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ConfigFile is a Docker-compatible client config.json: the "auths" map
// of registry -> {"auth": base64(user:password)}. Keys other than "auths"
// are kept as they are, so that a config shared with the docker CLI
// loses nothing. Credential helpers (credsStore) are not used.
type ConfigFile struct {
	path  string
	Auths map[string]AuthConfig
	other map[string]json.RawMessage
}

// IndexServer is the key Docker Hub's credentials are stored under.
const IndexServer = "https://index.docker.io/v1/"

// DefaultConfigPath is $DOCKER_CONFIG/config.json, else
// ~/.docker/config.json.
func DefaultConfigPath() string {
	if d := os.Getenv("DOCKER_CONFIG"); d != "" {
		return filepath.Join(d, "config.json")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		home = "/root"
	}
	return filepath.Join(home, ".docker", "config.json")
}

// LoadConfigFile reads path; a missing file is an empty config.
func LoadConfigFile(path string) (*ConfigFile, error) {
	f := &ConfigFile{path: path, Auths: map[string]AuthConfig{}, other: map[string]json.RawMessage{}}
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return f, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if err := json.Unmarshal(b, &f.other); err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	if raw, ok := f.other["auths"]; ok {
		if err := json.Unmarshal(raw, &f.Auths); err != nil {
			return nil, fmt.Errorf("parse %s: auths: %w", path, err)
		}
		delete(f.other, "auths")
	}
	return f, nil
}

// ServerKey is the key a registry's credentials are stored under:
// "localhost:5000" for a host, IndexServer for Docker Hub. A URL
// ("https://host/v2/") is reduced to its host.
func ServerKey(server string) string {
	s := server
	if i := strings.Index(s, "://"); i >= 0 {
		s = s[i+3:]
	}
	s, _, _ = strings.Cut(s, "/")
	switch s {
	case "", "docker.io", "index.docker.io", "registry-1.docker.io":
		return IndexServer
	}
	return s
}

// AuthFor returns the credentials stored for a registry (a reference's
// domain or a server address), with ServerAddress set.
func (f *ConfigFile) AuthFor(server string) (AuthConfig, bool) {
	key := ServerKey(server)
	for k, a := range f.Auths {
		if ServerKey(k) == key || k == key {
			a.ServerAddress = key
			if u, p, ok := a.credentials(); ok {
				a.Username, a.Password = u, p
			}
			return a, true
		}
	}
	return AuthConfig{}, false
}

// SetAuth stores a user's credentials for a registry, as docker login
// does: only "auth" (and an identity token when there is one).
func (f *ConfigFile) SetAuth(server string, a AuthConfig) {
	key := ServerKey(server)
	user, pass, _ := a.credentials()
	f.RemoveAuth(server)
	f.Auths[key] = AuthConfig{Auth: base64.StdEncoding.EncodeToString([]byte(user + ":" + pass)), IdentityToken: a.IdentityToken}
}

// RemoveAuth forgets a registry's credentials; false when there were none.
func (f *ConfigFile) RemoveAuth(server string) bool {
	key := ServerKey(server)
	found := false
	for k := range f.Auths {
		if ServerKey(k) == key || k == key {
			delete(f.Auths, k)
			found = true
		}
	}
	return found
}

// Save writes the file atomically, readable by its owner only.
func (f *ConfigFile) Save() error {
	all := map[string]any{}
	for k, v := range f.other {
		all[k] = v
	}
	all["auths"] = f.Auths
	b, err := json.MarshalIndent(all, "", "\t")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(f.path), 0o700); err != nil {
		return fmt.Errorf("save %s: %w", f.path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(f.path), ".config.json-")
	if err != nil {
		return fmt.Errorf("save %s: %w", f.path, err)
	}
	_, err = tmp.Write(append(b, '\n'))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), f.path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("save %s: %w", f.path, err)
	}
	return nil
}
