package trace

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"sort"
)

// ReadEvents reads a trace file's JSON lines. A line that is not an event
// (a write cut short by a crash) is an error naming its number.
func ReadEvents(r io.Reader) ([]Event, error) {
	var out []Event
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	for n := 1; sc.Scan(); n++ {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var e Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return out, fmt.Errorf("trace line %d: %w", n, err)
		}
		out = append(out, e)
	}
	return out, sc.Err()
}

// Timeline writes events as one timeline: ordered by time (events of the
// same instant keep their order), each line led by the milliseconds since
// start (ns since the epoch; 0: the first event's time), as in
// "+   12.345ms [daemon 4711]    rootfs  overlay.MountOverlay  mount src=overlay, ... = ok  # ..."
// (docs/trace.md).
func Timeline(w io.Writer, events []Event, start int64) error {
	sort.SliceStable(events, func(i, j int) bool { return events[i].Time < events[j].Time })
	if start == 0 && len(events) > 0 {
		start = events[0].Time
	}
	bw := bufio.NewWriter(w)
	for _, e := range events {
		fmt.Fprintln(bw, e.Text(Since(e.Time, start)))
	}
	return bw.Flush()
}

// Since spells the time t as milliseconds after start: "+   12.345ms".
func Since(t, start int64) string {
	return fmt.Sprintf("+%9.3fms", float64(t-start)/1e6)
}
