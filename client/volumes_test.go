package client

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"testing"

	"minidock/api"
)

// TestVolumeCalls: each volume method sends Docker's method, path, query
// and body, and decodes the reply; a 409 comes back as an *Error.
func TestVolumeCalls(t *testing.T) {
	type call struct{ method, path, query, body string }
	var got []call
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		var body json.RawMessage
		json.NewDecoder(r.Body).Decode(&body)
		got = append(got, call{r.Method, r.URL.Path, r.URL.RawQuery, string(body)})
		switch r.URL.Path {
		case "/v" + api.Version + "/volumes/create", "/v" + api.Version + "/volumes/data":
			json.NewEncoder(w).Encode(api.Volume{Name: "data", Driver: "local"})
		case "/v" + api.Version + "/volumes":
			json.NewEncoder(w).Encode(api.VolumeListResponse{Volumes: []api.Volume{{Name: "data"}}, Warnings: []string{}})
		case "/v" + api.Version + "/volumes/prune":
			json.NewEncoder(w).Encode(api.VolumesPruneReport{VolumesDeleted: []string{"x"}, SpaceReclaimed: 42})
		case "/v" + api.Version + "/volumes/busy":
			w.WriteHeader(http.StatusConflict)
			json.NewEncoder(w).Encode(api.ErrorResponse{Message: "remove busy: volume is in use - [abc]"})
		}
	})
	sock := filepath.Join(t.TempDir(), "d.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(mux)
	srv.Listener = l
	srv.Start()
	defer srv.Close()
	c, err := New(Config{Host: "unix://" + sock})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	v, err := c.VolumeCreate(ctx, api.VolumeCreateOptions{Name: "data", DriverOpts: map[string]string{"type": "tmpfs"}})
	if err != nil || v.Name != "data" {
		t.Errorf("VolumeCreate: %+v %v", v, err)
	}
	list, err := c.VolumeList(ctx, Filters{"dangling": {"true"}})
	if err != nil || len(list.Volumes) != 1 {
		t.Errorf("VolumeList: %+v %v", list, err)
	}
	if raw, err := c.VolumeInspectRaw(ctx, "data"); err != nil || len(raw) == 0 {
		t.Errorf("VolumeInspectRaw: %s %v", raw, err)
	}
	if err := c.VolumeRemove(ctx, "data", true); err != nil {
		t.Error(err)
	}
	var e *Error
	if err := c.VolumeRemove(ctx, "busy", false); !errors.As(err, &e) || e.Status != 409 || e.Message != "remove busy: volume is in use - [abc]" {
		t.Errorf("VolumeRemove of a volume in use: %v", err)
	}
	rep, err := c.VolumesPrune(ctx, Filters{"all": {"true"}})
	if err != nil || rep.SpaceReclaimed != 42 {
		t.Errorf("VolumesPrune: %+v %v", rep, err)
	}
	v1 := "/v" + api.Version
	want := []call{
		{"POST", v1 + "/volumes/create", "", `{"Name":"data","DriverOpts":{"type":"tmpfs"}}`},
		{"GET", v1 + "/volumes", "filters=%7B%22dangling%22%3A%5B%22true%22%5D%7D", ""},
		{"GET", v1 + "/volumes/data", "", ""},
		{"DELETE", v1 + "/volumes/data", "force=1", ""},
		{"DELETE", v1 + "/volumes/busy", "", ""},
		{"POST", v1 + "/volumes/prune", "filters=%7B%22all%22%3A%5B%22true%22%5D%7D", ""},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("calls:\n got %q\nwant %q", got, want)
	}
}
