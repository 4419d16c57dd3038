package daemon

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"minidock/api"
)

// ServerVersion is what /version reports as the engine's version.
const ServerVersion = "0.1.0"

// maxJSONBody bounds request bodies decoded as JSON.
const maxJSONBody = 1 << 20

var versionPrefix = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^/v([0-9]+\.[0-9]+)(/.*)$`) })

// Handler is the Engine API: the version prefix is checked and stripped,
// Docker's headers are set on every reply, then the routes below.
func (d *Daemon) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /_ping", ping)
	mux.HandleFunc("HEAD /_ping", ping)
	mux.HandleFunc("GET /version", d.version)
	mux.HandleFunc("GET /info", d.info)
	mux.HandleFunc("GET /events", d.systemEvents)

	mux.HandleFunc("/images/", d.imagesRoute)

	mux.HandleFunc("POST /containers/create", d.containerCreate)
	mux.HandleFunc("GET /containers/json", d.containerList)
	mux.HandleFunc("GET /containers/{id}/json", d.containerInspect)
	mux.HandleFunc("POST /containers/{id}/start", d.containerStart)
	mux.HandleFunc("POST /containers/{id}/stop", d.containerStop)
	mux.HandleFunc("POST /containers/{id}/kill", d.containerKill)
	mux.HandleFunc("POST /containers/{id}/restart", d.containerRestart)
	mux.HandleFunc("POST /containers/{id}/wait", d.containerWait)
	mux.HandleFunc("DELETE /containers/{id}", d.containerRemove)
	mux.HandleFunc("GET /containers/{id}/logs", d.containerLogs)
	mux.HandleFunc("POST /containers/{id}/attach", d.containerAttach)
	mux.HandleFunc("POST /containers/{id}/resize", d.containerResize)
	mux.HandleFunc("POST /containers/{id}/pause", d.containerPause)
	mux.HandleFunc("POST /containers/{id}/unpause", d.containerUnpause)
	mux.HandleFunc("GET /containers/{id}/top", d.containerTop)
	mux.HandleFunc("GET /containers/{id}/stats", d.containerStats)
	mux.HandleFunc("POST /containers/{id}/rename", d.containerRename)
	mux.HandleFunc("POST /containers/{id}/exec", d.execCreate)
	mux.HandleFunc("POST /exec/{id}/start", d.execStart)
	mux.HandleFunc("POST /exec/{id}/resize", d.execResize)
	mux.HandleFunc("GET /exec/{id}/json", d.execInspect)
	mux.HandleFunc("GET /containers/{id}/export", d.containerExport)
	mux.HandleFunc("GET /containers/{id}/changes", d.containerChanges)
	mux.HandleFunc("HEAD /containers/{id}/archive", d.containerArchive)
	mux.HandleFunc("GET /containers/{id}/archive", d.containerArchive)
	mux.HandleFunc("PUT /containers/{id}/archive", d.containerExtract)
	mux.HandleFunc("POST /containers/prune", d.containersPrune)
	mux.HandleFunc("POST /commit", d.commit)
	mux.HandleFunc("GET /networks", d.networkList)
	mux.HandleFunc("GET /networks/{id}", d.networkInspect)
	mux.HandleFunc("POST /networks/create", d.networkCreate)
	mux.HandleFunc("DELETE /networks/{id}", d.networkRemove)
	mux.HandleFunc("POST /networks/{id}/connect", d.networkConnect)
	mux.HandleFunc("POST /networks/{id}/disconnect", d.networkDisconnect)
	mux.HandleFunc("POST /networks/prune", d.networkPrune)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, notFound("page not found: %s %s", r.Method, r.URL.Path))
	})

	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Api-Version", api.Version)
		h.Set("Ostype", "linux")
		h.Set("Docker-Experimental", "false")
		h.Set("Server", "Minidock/"+ServerVersion+" ("+runtime.GOOS+")")
		if m := versionPrefix().FindStringSubmatch(r.URL.Path); m != nil {
			if versionLess(api.Version, m[1]) {
				writeError(w, badRequest("client version %s is too new. Maximum supported API version is %s", m[1], api.Version))
				return
			}
			if versionLess(m[1], api.MinVersion) {
				writeError(w, badRequest("client version %s is too old. Minimum supported API version is %s, please upgrade your client to a newer version", m[1], api.MinVersion))
				return
			}
			r.URL.Path = m[2]
			r.URL.RawPath = ""
		}
		mux.ServeHTTP(w, r)
	})
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

func ping(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-cache, no-store, must-revalidate")
	w.Header().Set("Pragma", "no-cache")
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if r.Method == http.MethodHead {
		w.Header().Set("Content-Length", "0")
		return
	}
	io.WriteString(w, "OK")
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

// decodeJSON reads a JSON body of at most maxJSONBody bytes into v.
func decodeJSON(w http.ResponseWriter, r *http.Request, v any) error {
	body := http.MaxBytesReader(w, r.Body, maxJSONBody)
	dec := json.NewDecoder(body)
	if err := dec.Decode(v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &statusError{http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is larger than %d bytes", maxJSONBody)}
		}
		if errors.Is(err, io.EOF) {
			return badRequest("request body is empty; a JSON object is required")
		}
		return badRequest("invalid JSON in request body: %v", err)
	}
	return nil
}

func boolParam(r *http.Request, name string) bool {
	v := r.URL.Query().Get(name)
	return v != "" && v != "0" && !strings.EqualFold(v, "false")
}

func (d *Daemon) version(w http.ResponseWriter, r *http.Request) {
	v := api.VersionResponse{
		Version: ServerVersion, APIVersion: api.Version, MinAPIVersion: api.MinVersion,
		GoVersion: runtime.Version(), Os: runtime.GOOS, Arch: runtime.GOARCH, KernelVersion: kernelVersion(),
	}
	v.Platform.Name = "minidock"
	writeJSON(w, http.StatusOK, v)
}

func kernelVersion() string {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
}

func (d *Daemon) info(w http.ResponseWriter, r *http.Request) {
	in := api.Info{
		ID: "minidock", Driver: "overlay2", DockerRootDir: d.cfg.DataRoot, CgroupDriver: "cgroupfs",
		CgroupVersion: "1", KernelVersion: kernelVersion(), OSType: "linux", Architecture: runtime.GOARCH,
		NCPU: runtime.NumCPU(), ServerVersion: ServerVersion, DefaultRuntime: "minidock",
		Swarm: api.SwarmInfo{LocalNodeState: "inactive"}, OperatingSystem: osName(),
	}
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		in.CgroupVersion = "2"
	}
	if d.cfg.Runtime != "" {
		in.DefaultRuntime = d.cfg.Runtime
	}
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) == nil {
		in.MemTotal = int64(si.Totalram) * int64(si.Unit)
	}
	in.Name, _ = os.Hostname()
	in.Images = len(d.images.List())
	d.mu.Lock()
	for _, c := range d.containers {
		in.Containers++
		switch c.State.status() {
		case "running":
			in.ContainersRunning++
		case "paused":
			in.ContainersPaused++
		default:
			in.ContainersStopped++
		}
	}
	d.mu.Unlock()
	writeJSON(w, http.StatusOK, in)
}

func osName() string {
	data, _ := os.ReadFile("/etc/os-release")
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "PRETTY_NAME="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return "Linux"
}
