package cgroup

// Stats is a snapshot of a cgroup's usage and limits. Its JSON form uses
// the field names of runc's `events --stats` (runc types/events.go), so the
// runtime can put it in an event's "data" as it is. Times are nanoseconds,
// sizes bytes; a limit of math.MaxUint64 means "max" (no limit).
type Stats struct {
	CPU    CPUStats    `json:"cpu"`
	Memory MemoryStats `json:"memory"`
	Pids   PidsStats   `json:"pids"`
	Blkio  BlkioStats  `json:"blkio"`
}

// CPUStats is CPU time used and time spent throttled by the quota.
type CPUStats struct {
	Usage      CPUUsage   `json:"usage"`
	Throttling Throttling `json:"throttling"`
}

// CPUUsage is CPU time consumed, in nanoseconds. Percpu is only known on v1
// (cpuacct.usage_percpu).
type CPUUsage struct {
	Total  uint64   `json:"total,omitempty"`
	Percpu []uint64 `json:"percpu,omitempty"`
	Kernel uint64   `json:"kernel"`
	User   uint64   `json:"user"`
}

// Throttling counts CFS periods, and those in which the quota ran out.
type Throttling struct {
	Periods          uint64 `json:"periods,omitempty"`
	ThrottledPeriods uint64 `json:"throttledPeriods,omitempty"`
	ThrottledTime    uint64 `json:"throttledTime,omitempty"`
}

// MemoryEntry is one memory counter: current usage, peak, limit and how
// often the limit was hit.
type MemoryEntry struct {
	Limit   uint64 `json:"limit"`
	Usage   uint64 `json:"usage,omitempty"`
	Max     uint64 `json:"max,omitempty"`
	Failcnt uint64 `json:"failcnt"`
}

// MemoryStats follows v1's shape: Swap is memory+swap (memsw) on both
// versions, as runc reports it; Raw is memory.stat as read.
type MemoryStats struct {
	Cache  uint64            `json:"cache,omitempty"`
	Usage  MemoryEntry       `json:"usage"`
	Swap   MemoryEntry       `json:"swap"`
	Kernel MemoryEntry       `json:"kernel"`
	Raw    map[string]uint64 `json:"raw,omitempty"`
}

// PidsStats is the number of tasks and the pids limit (0 when "max").
type PidsStats struct {
	Current uint64 `json:"current,omitempty"`
	Limit   uint64 `json:"limit,omitempty"`
}

// BlkioEntry is one device's counter for one operation ("Read", "Write").
type BlkioEntry struct {
	Major uint64 `json:"major,omitempty"`
	Minor uint64 `json:"minor,omitempty"`
	Op    string `json:"op,omitempty"`
	Value uint64 `json:"value,omitempty"`
}

// BlkioStats holds bytes and operations per device, counted for the cgroup
// and its descendants.
type BlkioStats struct {
	IoServiceBytesRecursive []BlkioEntry `json:"ioServiceBytesRecursive,omitempty"`
	IoServicedRecursive     []BlkioEntry `json:"ioServicedRecursive,omitempty"`
}
