// Package api holds the Docker Engine API shapes that minidock's daemon
// serves and its client sends: the JSON field names are Docker's, so the
// official docker CLI and minidock's client talk to the same daemon.
// Only the fields minidock fills or reads are declared.
package api

// Version is the Engine API version the daemon reports. The docker 28 CLI
// uses min(its own, this) for its /v<version>/ paths.
const Version = "1.47"

// MinVersion is the oldest API version the daemon accepts in a path.
const MinVersion = "1.24"

// ErrorResponse is the body of every error reply.
type ErrorResponse struct {
	Message string `json:"message"`
}

// VersionResponse is GET /version.
type VersionResponse struct {
	Platform      struct{ Name string } `json:"Platform"`
	Version       string
	APIVersion    string `json:"ApiVersion"`
	MinAPIVersion string `json:"MinAPIVersion"`
	GitCommit     string
	GoVersion     string
	Os            string
	Arch          string
	KernelVersion string
	BuildTime     string
}

// Info is GET /info.
type Info struct {
	ID                string
	Containers        int
	ContainersRunning int
	ContainersPaused  int
	ContainersStopped int
	Images            int
	Driver            string
	DockerRootDir     string
	CgroupDriver      string
	CgroupVersion     string
	KernelVersion     string
	OperatingSystem   string
	OSType            string
	Architecture      string
	NCPU              int
	MemTotal          int64
	Name              string
	ServerVersion     string
	DefaultRuntime    string
	Swarm             SwarmInfo
}

// SwarmInfo tells the CLI there is no swarm.
type SwarmInfo struct {
	LocalNodeState string
}

// ImageSummary is one entry of GET /images/json.
type ImageSummary struct {
	ID          string            `json:"Id"`
	ParentID    string            `json:"ParentId"`
	RepoTags    []string          `json:"RepoTags"`
	RepoDigests []string          `json:"RepoDigests"`
	Created     int64             `json:"Created"`
	Size        int64             `json:"Size"`
	SharedSize  int64             `json:"SharedSize"`
	Labels      map[string]string `json:"Labels"`
	Containers  int64             `json:"Containers"`
}

// ImageInspect is GET /images/{name}/json.
type ImageInspect struct {
	ID           string `json:"Id"`
	RepoTags     []string
	RepoDigests  []string
	Parent       string
	Comment      string
	Created      string
	Author       string
	Config       *ContainerConfig
	Architecture string
	Os           string
	Size         int64
	RootFS       RootFS
}

// RootFS lists an image's layers by diff ID.
type RootFS struct {
	Type   string
	Layers []string
}

// ImageDeleteItem is one line of DELETE /images/{name}.
type ImageDeleteItem struct {
	Untagged string `json:",omitempty"`
	Deleted  string `json:",omitempty"`
}

// ContainerConfig is the portable part of a container's configuration
// (Docker's container.Config).
type ContainerConfig struct {
	Hostname     string            `json:"Hostname"`
	Domainname   string            `json:"Domainname"`
	User         string            `json:"User"`
	AttachStdin  bool              `json:"AttachStdin"`
	AttachStdout bool              `json:"AttachStdout"`
	AttachStderr bool              `json:"AttachStderr"`
	Tty          bool              `json:"Tty"`
	OpenStdin    bool              `json:"OpenStdin"`
	StdinOnce    bool              `json:"StdinOnce"`
	Env          []string          `json:"Env"`
	Cmd          []string          `json:"Cmd"`
	Image        string            `json:"Image"`
	WorkingDir   string            `json:"WorkingDir"`
	Entrypoint   []string          `json:"Entrypoint"`
	Labels       map[string]string `json:"Labels"`
	StopSignal   string            `json:"StopSignal,omitempty"`
}

// HostConfig is the host-dependent part (Docker's container.HostConfig),
// the subset minidock applies.
type HostConfig struct {
	NetworkMode    string `json:"NetworkMode"`
	AutoRemove     bool   `json:"AutoRemove"`
	ReadonlyRootfs bool   `json:"ReadonlyRootfs"`
	Memory         int64  `json:"Memory"`
	NanoCPUs       int64  `json:"NanoCpus"`
	CPUShares      int64  `json:"CpuShares"`
	PidsLimit      *int64 `json:"PidsLimit"`
}

// ContainerCreateRequest is the body of POST /containers/create: a
// ContainerConfig with the HostConfig beside it.
type ContainerCreateRequest struct {
	ContainerConfig
	HostConfig *HostConfig `json:"HostConfig"`
}

// CreateResponse is the 201 reply of a create.
type CreateResponse struct {
	ID       string   `json:"Id"`
	Warnings []string `json:"Warnings"`
}

// ContainerState is State in a container inspect.
type ContainerState struct {
	Status     string // created, running, paused, restarting, removing, exited, dead
	Running    bool
	Paused     bool
	Restarting bool
	OOMKilled  bool
	Dead       bool
	Pid        int
	ExitCode   int
	Error      string
	StartedAt  string
	FinishedAt string
}

// ContainerJSON is GET /containers/{id}/json.
type ContainerJSON struct {
	ID              string `json:"Id"`
	Created         string
	Path            string
	Args            []string
	State           *ContainerState
	Image           string
	ResolvConfPath  string
	HostnamePath    string
	HostsPath       string
	LogPath         string
	Name            string
	RestartCount    int
	Driver          string
	Platform        string
	Config          *ContainerConfig
	HostConfig      *HostConfig
	NetworkSettings *NetworkSettings
	Mounts          []any
}

// NetworkSettings is empty until networking exists (issue 6).
type NetworkSettings struct {
	Networks map[string]any
	Ports    map[string]any
}

// ContainerSummary is one entry of GET /containers/json.
type ContainerSummary struct {
	ID      string            `json:"Id"`
	Names   []string          `json:"Names"`
	Image   string            `json:"Image"`
	ImageID string            `json:"ImageID"`
	Command string            `json:"Command"`
	Created int64             `json:"Created"`
	State   string            `json:"State"`
	Status  string            `json:"Status"`
	Ports   []any             `json:"Ports"`
	Labels  map[string]string `json:"Labels"`
	Mounts  []any             `json:"Mounts"`
}

// WaitResponse is the body of POST /containers/{id}/wait.
type WaitResponse struct {
	StatusCode int        `json:"StatusCode"`
	Error      *WaitError `json:"Error"`
}

// WaitError says why waiting failed.
type WaitError struct {
	Message string `json:"Message"`
}

// JSONMessage is one line of the progress streams (load, import, pull).
type JSONMessage struct {
	Stream      string        `json:"stream,omitempty"`
	Status      string        `json:"status,omitempty"`
	ID          string        `json:"id,omitempty"`
	Error       string        `json:"error,omitempty"`
	ErrorDetail *ErrorMessage `json:"errorDetail,omitempty"`
}

// ErrorMessage is the errorDetail of a JSONMessage.
type ErrorMessage struct {
	Message string `json:"message"`
}

// ExecConfig is the body of POST /containers/{id}/exec.
type ExecConfig struct {
	User         string   `json:"User"`
	Privileged   bool     `json:"Privileged"`
	Tty          bool     `json:"Tty"`
	AttachStdin  bool     `json:"AttachStdin"`
	AttachStdout bool     `json:"AttachStdout"`
	AttachStderr bool     `json:"AttachStderr"`
	Detach       bool     `json:"Detach"`
	Env          []string `json:"Env"`
	WorkingDir   string   `json:"WorkingDir"`
	Cmd          []string `json:"Cmd"`
}

// ExecInspect is GET /exec/{id}/json; ExitCode is null while it runs.
type ExecInspect struct {
	ID            string `json:"ID"`
	ContainerID   string
	Running       bool
	ExitCode      *int
	Pid           int
	OpenStdin     bool
	OpenStdout    bool
	OpenStderr    bool
	ProcessConfig ExecProcessConfig
}

// ExecProcessConfig describes an exec's process.
type ExecProcessConfig struct {
	Tty        bool     `json:"tty"`
	Entrypoint string   `json:"entrypoint"`
	Arguments  []string `json:"arguments"`
	User       string   `json:"user,omitempty"`
}

// ContainerTopResponse is GET /containers/{id}/top: ps's columns and one
// row per process.
type ContainerTopResponse struct {
	Titles    []string   `json:"Titles"`
	Processes [][]string `json:"Processes"`
}

// StatsJSON is one sample of GET /containers/{id}/stats; PreCPUStats is
// the previous sample's, for the CPU percentage.
type StatsJSON struct {
	Name        string      `json:"name"`
	ID          string      `json:"id"`
	Read        string      `json:"read"`
	PreRead     string      `json:"preread"`
	PidsStats   PidsStats   `json:"pids_stats"`
	CPUStats    CPUStats    `json:"cpu_stats"`
	PreCPUStats CPUStats    `json:"precpu_stats"`
	MemoryStats MemoryStats `json:"memory_stats"`
}

// PidsStats counts a container's tasks.
type PidsStats struct {
	Current uint64 `json:"current,omitempty"`
	Limit   uint64 `json:"limit,omitempty"`
}

// CPUStats is a container's CPU time and the host's, in nanoseconds.
type CPUStats struct {
	CPUUsage       CPUUsage       `json:"cpu_usage"`
	SystemUsage    uint64         `json:"system_cpu_usage,omitempty"`
	OnlineCPUs     uint32         `json:"online_cpus,omitempty"`
	ThrottlingData ThrottlingData `json:"throttling_data"`
}

// CPUUsage is the container's CPU time.
type CPUUsage struct {
	TotalUsage        uint64   `json:"total_usage"`
	PercpuUsage       []uint64 `json:"percpu_usage,omitempty"`
	UsageInKernelmode uint64   `json:"usage_in_kernelmode"`
	UsageInUsermode   uint64   `json:"usage_in_usermode"`
}

// ThrottlingData counts CFS periods throttled by the CPU quota.
type ThrottlingData struct {
	Periods          uint64 `json:"periods"`
	ThrottledPeriods uint64 `json:"throttled_periods"`
	ThrottledTime    uint64 `json:"throttled_time"`
}

// MemoryStats is the container's memory use; Limit is the host's memory
// when the container has no limit.
type MemoryStats struct {
	Usage    uint64            `json:"usage,omitempty"`
	MaxUsage uint64            `json:"max_usage,omitempty"`
	Stats    map[string]uint64 `json:"stats,omitempty"`
	Limit    uint64            `json:"limit,omitempty"`
}

// EventMessage is one line of GET /events.
type EventMessage struct {
	Status   string     `json:"status,omitempty"`
	ID       string     `json:"id,omitempty"`
	From     string     `json:"from,omitempty"`
	Type     string     `json:"Type"`
	Action   string     `json:"Action"`
	Actor    EventActor `json:"Actor"`
	Scope    string     `json:"scope"`
	Time     int64      `json:"time"`
	TimeNano int64      `json:"timeNano"`
}

// EventActor is what an event is about.
type EventActor struct {
	ID         string            `json:"ID"`
	Attributes map[string]string `json:"Attributes"`
}
