package daemon

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/user"
	"sort"
	"strconv"
	"strings"
	"time"

	"minidock/api"
	"minidock/internal/errdefs"
)

// clockTicks is USER_HZ, the unit of /proc/PID/stat's times.
const clockTicks = 100

// ContainerTop is GET /containers/{id}/top: ps -ef's columns for every
// process of the container (the shim lists them from its cgroup), read
// from /proc.
func (d *Daemon) ContainerTop(ctx context.Context, name string) (*api.ContainerTopResponse, error) {
	c, err := d.lookup(name)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	running, initPid := c.State.Status == "running", c.State.Pid
	d.mu.Unlock()
	if !running {
		return nil, errdefs.Conflictf("Container %s is not running", c.ID)
	}
	pids, err := c.shim().Pids()
	if err != nil {
		return nil, fmt.Errorf("list processes of %s: %w", c.ID, err)
	}
	// the init first, then by pid
	sort.Slice(pids, func(i, j int) bool { return pids[j] != initPid && (pids[i] == initPid || pids[i] < pids[j]) })
	out := &api.ContainerTopResponse{
		Titles:    []string{"UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"},
		Processes: [][]string{},
	}
	boot := bootTime()
	for _, pid := range pids {
		if row, ok := psRow(pid, boot); ok {
			out.Processes = append(out.Processes, row)
		}
	}
	return out, nil
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
