package cli

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"minidock/api"
)

// configFile is a Docker-compatible client config.json: the "auths" map
// of registry -> {"auth": base64(user:password)}. Keys other than "auths"
// are kept as they are, so that a config shared with the docker CLI
// loses nothing. Credential helpers (credsStore) are not used.
type configFile struct {
	path  string
	Auths map[string]api.AuthConfig
	other map[string]json.RawMessage
}

// defaultConfigPath is $DOCKER_CONFIG/config.json, else
// ~/.docker/config.json.
func defaultConfigPath() string {
	if d := os.Getenv("DOCKER_CONFIG"); d != "" {
		return filepath.Join(d, "config.json")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		home = "/root"
	}
	return filepath.Join(home, ".docker", "config.json")
}

// loadConfigFile reads path; a missing file is an empty config.
func loadConfigFile(path string) (*configFile, error) {
	f := &configFile{path: path, Auths: map[string]api.AuthConfig{}, other: map[string]json.RawMessage{}}
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

// AuthFor returns the credentials stored for a registry (a reference's
// domain or a server address), with ServerAddress set.
func (f *configFile) AuthFor(server string) (api.AuthConfig, bool) {
	key := api.ServerKey(server)
	for k, a := range f.Auths {
		if api.ServerKey(k) == key || k == key {
			a.ServerAddress = key
			if u, p, ok := a.Credentials(); ok {
				a.Username, a.Password = u, p
			}
			return a, true
		}
	}
	return api.AuthConfig{}, false
}

// SetAuth stores a user's credentials for a registry, as docker login
// does: only "auth" (and an identity token when there is one).
func (f *configFile) SetAuth(server string, a api.AuthConfig) {
	key := api.ServerKey(server)
	user, pass, _ := a.Credentials()
	f.RemoveAuth(server)
	f.Auths[key] = api.AuthConfig{Auth: base64.StdEncoding.EncodeToString([]byte(user + ":" + pass)), IdentityToken: a.IdentityToken}
}

// RemoveAuth forgets a registry's credentials; false when there were none.
func (f *configFile) RemoveAuth(server string) bool {
	key := api.ServerKey(server)
	found := false
	for k := range f.Auths {
		if api.ServerKey(k) == key || k == key {
			delete(f.Auths, k)
			found = true
		}
	}
	return found
}

// Save writes the file atomically, readable by its owner only.
func (f *configFile) Save() error {
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
