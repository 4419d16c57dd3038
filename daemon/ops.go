package daemon

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/user"
	"strconv"
	"strings"
	"time"

	"minidock/api"
	"minidock/cgroup"
)

// status is the Status Docker shows: a running container that is frozen
// is "paused"; one waiting for its restart policy is "restarting".
func (s State) status() string {
	if s.Status == "running" && s.Paused {
		return "paused"
	}
	if s.Restarting {
		return "restarting"
	}
	return s.Status
}

// containerPause is POST /containers/{id}/pause: the runtime freezes the
// container's cgroup; 409 unless it is running and not paused.
func (d *Daemon) containerPause(w http.ResponseWriter, r *http.Request) {
	d.pauseOrResume(w, r, true)
}

// containerUnpause is POST /containers/{id}/unpause; 409 unless paused.
func (d *Daemon) containerUnpause(w http.ResponseWriter, r *http.Request) {
	d.pauseOrResume(w, r, false)
}

func (d *Daemon) pauseOrResume(w http.ResponseWriter, r *http.Request, pause bool) {
	c, err := d.lookup(r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	c.op.Lock()
	defer c.op.Unlock()
	d.mu.Lock()
	running, paused := c.State.Status == "running", c.State.Paused
	d.mu.Unlock()
	switch {
	case pause && !running:
		writeError(w, conflict("Container %s is not running", c.ID))
		return
	case pause && paused:
		writeError(w, conflict("Container %s is already paused", c.ID))
		return
	case !pause && !paused:
		writeError(w, conflict("Container %s is not paused", c.ID))
		return
	}
	verb := "pause"
	if !pause {
		verb = "resume"
	}
	if out, err := d.runtimeCmd(verb, c.ID).CombinedOutput(); err != nil {
		writeError(w, fmt.Errorf("%s container %s: %v: %s", verb, c.ID, err, strings.TrimSpace(string(out))))
		return
	}
	d.mu.Lock()
	if c.State.Status == "running" {
		c.State.Paused = pause
		d.save(c)
		c.notify()
		d.emit(c, map[bool]string{true: "pause", false: "unpause"}[pause], nil)
	}
	d.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

// thawForSignal resumes a paused container after a signal was sent to it,
// as Docker does, so that the signal is delivered.
func (d *Daemon) thawForSignal(c *Container) {
	d.mu.Lock()
	paused := c.State.Status == "running" && c.State.Paused
	d.mu.Unlock()
	if !paused {
		return
	}
	d.runtimeCmd("resume", c.ID).Run()
	d.mu.Lock()
	c.State.Paused = false
	d.save(c)
	c.notify()
	d.mu.Unlock()
}

// containerPids lists the host pids of a running container's processes,
// from the runtime's `ps --format json`.
func (d *Daemon) containerPids(c *Container) ([]int, error) {
	d.mu.Lock()
	running := c.State.Status == "running"
	d.mu.Unlock()
	if !running {
		return nil, conflict("Container %s is not running", c.ID)
	}
	out, err := d.runtimeCmd("ps", "--format", "json", c.ID).Output()
	if err != nil {
		return nil, fmt.Errorf("list processes of %s: %v", c.ID, err)
	}
	var pids []int
	if err := json.Unmarshal(out, &pids); err != nil {
		return nil, fmt.Errorf("list processes of %s: bad runtime output %q", c.ID, out)
	}
	return pids, nil
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat's times.
const clockTicks = 100

// containerTop is GET /containers/{id}/top: ps -ef's columns for every
// process of the container, from /proc.
func (d *Daemon) containerTop(w http.ResponseWriter, r *http.Request) {
	c, err := d.lookup(r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	pids, err := d.containerPids(c)
	if err != nil {
		writeError(w, err)
		return
	}
	out := api.ContainerTopResponse{
		Titles:    []string{"UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"},
		Processes: [][]string{},
	}
	boot := bootTime()
	for _, pid := range pids {
		if row, ok := psRow(pid, boot); ok {
			out.Processes = append(out.Processes, row)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// psRow is one line of ps -ef for pid; false when it has gone.
func psRow(pid int, boot time.Time) ([]string, bool) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, false
	}
	// comm may hold spaces and parentheses: fields follow the last ')'
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	j := strings.IndexByte(s, '(')
	if i < 0 || j < 0 {
		return nil, false
	}
	comm := s[j+1 : i]
	f := strings.Fields(s[i+1:]) // f[0] is field 3 (state)
	if len(f) < 20 {
		return nil, false
	}
	num := func(k int) uint64 { n, _ := strconv.ParseUint(f[k-3], 10, 64); return n }
	ppid, ttyNr := num(4), num(7)
	cpu := (num(14) + num(15)) / clockTicks
	start := boot.Add(time.Duration(num(22)) * time.Second / clockTicks)

	uid := "?"
	if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
		for _, l := range strings.Split(string(st), "\n") {
			if v, ok := strings.CutPrefix(l, "Uid:"); ok {
				if fs := strings.Fields(v); len(fs) > 0 {
					uid = fs[0]
					if u, err := user.LookupId(uid); err == nil {
						uid = u.Username
					}
				}
			}
		}
	}
	c := "0"
	if el := time.Since(start).Seconds(); el > 0 {
		c = strconv.Itoa(int(float64(cpu) * 100 / el))
	}
	stime := start.Format("15:04")
	if time.Since(start) > 24*time.Hour {
		stime = start.Format("Jan02")
	}
	tty := "?"
	if ttyNr != 0 {
		major, minor := (ttyNr>>8)&0xfff, (ttyNr&0xff)|((ttyNr>>12)&0xfff00)
		switch {
		case major >= 136 && major <= 143:
			tty = fmt.Sprintf("pts/%d", minor+(major-136)*256)
		case major == 4:
			tty = fmt.Sprintf("tty%d", minor)
		default:
			tty = fmt.Sprintf("%d:%d", major, minor)
		}
	}
	cmd := "[" + comm + "]"
	if cl, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil && len(cl) > 0 {
		cmd = strings.TrimSpace(string(bytes.ReplaceAll(bytes.TrimRight(cl, "\x00"), []byte{0}, []byte{' '})))
	}
	t := fmt.Sprintf("%02d:%02d:%02d", cpu/3600%24, cpu/60%60, cpu%60)
	if cpu >= 86400 {
		t = fmt.Sprintf("%d-%s", cpu/86400, t)
	}
	return []string{uid, strconv.Itoa(pid), strconv.FormatUint(ppid, 10), c, stime, tty, t, cmd}, true
}

// bootTime is when the host booted, from /proc/stat's btime.
func bootTime() time.Time {
	data, _ := os.ReadFile("/proc/stat")
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "btime "); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return time.Unix(n, 0)
		}
	}
	return time.Now()
}

// systemCPUUsage is the host's total CPU time in nanoseconds, from the
// first line of /proc/stat, and the number of CPUs online.
func systemCPUUsage() (uint64, uint32) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	var total uint64
	var cpus uint32
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) == 0 {
			continue
		}
		switch {
		case fs[0] == "cpu":
			for _, v := range fs[1:] {
				n, _ := strconv.ParseUint(v, 10, 64)
				total += n
			}
		case strings.HasPrefix(fs[0], "cpu"):
			cpus++
		}
	}
	return total * (1e9 / clockTicks), cpus
}

// runtimeEvent is one line of the runtime's `events --stats`.
type runtimeEvent struct {
	Type string       `json:"type"`
	Data cgroup.Stats `json:"data"`
}

// sample reads the container's cgroup stats through the runtime, in
// Docker's shape; the zero stats when it is not running.
func (d *Daemon) sample(c *Container, memTotal uint64) api.StatsJSON {
	d.mu.Lock()
	s := api.StatsJSON{Name: "/" + c.Name, ID: c.ID, Read: zeroTime, PreRead: zeroTime}
	running := c.State.Status == "running"
	d.mu.Unlock()
	if !running {
		return s
	}
	out, err := d.runtimeCmd("events", "--stats", c.ID).Output()
	var ev runtimeEvent
	if err != nil || json.Unmarshal(out, &ev) != nil || ev.Type != "stats" {
		return s
	}
	s.Read = time.Now().UTC().Format(time.RFC3339Nano)
	cu := &s.CPUStats.CPUUsage
	cu.TotalUsage = ev.Data.CPU.Usage.Total
	cu.UsageInKernelmode = ev.Data.CPU.Usage.Kernel
	cu.UsageInUsermode = ev.Data.CPU.Usage.User
	if cu.TotalUsage == 0 {
		cu.TotalUsage = cu.UsageInKernelmode + cu.UsageInUsermode
	}
	cu.PercpuUsage = ev.Data.CPU.Usage.Percpu
	s.CPUStats.SystemUsage, s.CPUStats.OnlineCPUs = systemCPUUsage()
	s.CPUStats.ThrottlingData.Periods = ev.Data.CPU.Throttling.Periods
	s.CPUStats.ThrottlingData.ThrottledPeriods = ev.Data.CPU.Throttling.ThrottledPeriods
	s.CPUStats.ThrottlingData.ThrottledTime = ev.Data.CPU.Throttling.ThrottledTime
	s.MemoryStats.Usage = ev.Data.Memory.Usage.Usage
	s.MemoryStats.MaxUsage = ev.Data.Memory.Usage.Max
	s.MemoryStats.Limit = ev.Data.Memory.Usage.Limit
	if s.MemoryStats.Limit == 0 || s.MemoryStats.Limit > memTotal {
		s.MemoryStats.Limit = memTotal
	}
	s.MemoryStats.Stats = ev.Data.Memory.Raw
	if s.MemoryStats.Stats == nil {
		s.MemoryStats.Stats = map[string]uint64{}
	}
	s.PidsStats.Current = ev.Data.Pids.Current
	s.PidsStats.Limit = ev.Data.Pids.Limit
	return s
}

// containerStats is GET /containers/{id}/stats?stream=&one-shot=: one
// sample, or one a second until the client hangs up or the container
// stops.
func (d *Daemon) containerStats(w http.ResponseWriter, r *http.Request) {
	c, err := d.lookup(r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	stream := true
	if v := r.URL.Query().Get("stream"); v != "" {
		stream = boolParam(r, "stream")
	}
	memTotal := uint64(0)
	if in, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, l := range strings.Split(string(in), "\n") {
			if v, ok := strings.CutPrefix(l, "MemTotal:"); ok {
				fs := strings.Fields(v)
				if len(fs) > 0 {
					n, _ := strconv.ParseUint(fs[0], 10, 64)
					memTotal = n * 1024
				}
			}
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	var prev api.StatsJSON
	prev.Read = zeroTime
	for {
		s := d.sample(c, memTotal)
		s.PreRead, s.PreCPUStats = prev.Read, prev.CPUStats
		if err := enc.Encode(s); err != nil || !stream {
			return
		}
		w.(http.Flusher).Flush()
		d.mu.Lock()
		running := c.State.Status == "running"
		d.mu.Unlock()
		if !running {
			return
		}
		prev = s
		select {
		case <-r.Context().Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// containerRename is POST /containers/{id}/rename?name=.
func (d *Daemon) containerRename(w http.ResponseWriter, r *http.Request) {
	c, err := d.lookup(r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	name := strings.TrimPrefix(r.URL.Query().Get("name"), "/")
	if name == "" || !nameRE().MatchString(name) {
		writeError(w, badRequest("Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", name))
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if c.removed {
		writeError(w, notFound("No such container: %s", r.PathValue("id")))
		return
	}
	if name == c.Name {
		writeError(w, conflict("Renaming a container with the same name as its current name"))
		return
	}
	if id, used := d.names[name]; used {
		writeError(w, conflict(`Conflict. The container name "/%s" is already in use by container "%s". You have to remove (or rename) that container to be able to reuse that name.`, name, id))
		return
	}
	old := c.Name
	c.Name = name
	if err := d.save(c); err != nil {
		c.Name = old
		writeError(w, err)
		return
	}
	delete(d.names, old)
	d.names[name] = c.ID
	c.notify()
	d.emit(c, "rename", map[string]string{"oldName": "/" + old})
	w.WriteHeader(http.StatusNoContent)
}
