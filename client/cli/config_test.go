package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"minidock/api"
)

// TestConfigFile keeps credentials as docker login does: "auths" with a
// base64 user:password, other keys untouched, the file 0600, and never
// shows the password when printed.
func TestConfigFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "docker", "config.json")
	os.MkdirAll(filepath.Dir(p), 0o700)
	os.WriteFile(p, []byte(`{"auths":{"https://index.docker.io/v1/":{"auth":"dTpw"}},"psFormat":"table {{.ID}}"}`), 0o600)
	f, err := loadConfigFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if a, ok := f.AuthFor("docker.io"); !ok || a.Username != "u" || a.Password != "p" {
		t.Errorf("docker.io credentials: %+v %v", a, ok)
	}
	f.SetAuth("http://localhost:5000/v2/", api.AuthConfig{Username: "alice", Password: "s3cret"})
	if err := f.Save(); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	var raw map[string]json.RawMessage
	json.Unmarshal(b, &raw)
	var auths map[string]map[string]string
	json.Unmarshal(raw["auths"], &auths)
	if string(raw["psFormat"]) != `"table {{.ID}}"` || auths["localhost:5000"]["auth"] != "YWxpY2U6czNjcmV0" || len(auths["localhost:5000"]) != 1 {
		t.Errorf("saved:\n%s", b)
	}
	if st, _ := os.Stat(p); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
	f2, _ := loadConfigFile(p)
	a, ok := f2.AuthFor("localhost:5000")
	if !ok || a.Username != "alice" || a.Password != "s3cret" {
		t.Errorf("reloaded: %+v", a)
	}
	if s := fmt.Sprint(a) + fmt.Sprintf("%v", a); strings.Contains(s, "s3cret") {
		t.Errorf("printing credentials shows the password: %s", s)
	}
	if !f2.RemoveAuth("localhost:5000") || f2.RemoveAuth("localhost:5000") {
		t.Error("RemoveAuth")
	}
	if _, err := loadConfigFile(filepath.Join(t.TempDir(), "none.json")); err != nil {
		t.Errorf("missing file: %v", err)
	}
}
