// Package api holds the Docker Engine API shapes that minidock's daemon
// serves and its client sends: the JSON field names are Docker's, so the
// official docker CLI and minidock's client talk to the same daemon.
// Only the fields minidock fills or reads are declared.
package api

import "encoding/json"

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
	// The cluster of overlay networks (docs/overlay-network.md), as
	// classic Docker's info had them: --cluster-store and
	// --cluster-advertise; empty when the daemon is not in a cluster.
	ClusterStore     string `json:",omitempty"`
	ClusterAdvertise string `json:",omitempty"`
	// ClusterPeers are the members of the cluster this daemon knows (its
	// own record included), by name: minidock's field.
	ClusterPeers []PeerInfo `json:",omitempty"`
	// Warnings say what does not work as configured (a cluster store
	// that does not answer).
	Warnings []string `json:",omitempty"`
}

// PeerInfo is one member of the cluster: its name (host name) and its
// address on the underlay (--cluster-advertise, its VXLAN endpoint).
type PeerInfo struct {
	Name string
	IP   string
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
	// ExposedPorts: "80/tcp" -> {}; published with -P.
	ExposedPorts map[string]struct{} `json:"ExposedPorts,omitempty"`
	// Volumes: "/path" -> {}; an anonymous volume at each (`-v /path`,
	// the image's VOLUME).
	Volumes map[string]struct{} `json:"Volumes,omitempty"`
}

// HostConfig is the host-dependent part (Docker's container.HostConfig),
// the subset minidock applies.
type HostConfig struct {
	NetworkMode     string                   `json:"NetworkMode"`
	PortBindings    map[string][]PortBinding `json:"PortBindings"`
	PublishAllPorts bool                     `json:"PublishAllPorts"`
	ExtraHosts      []string                 `json:"ExtraHosts"`
	DNS             []string                 `json:"Dns"`        // --dns: nameservers of the container's resolv.conf
	DNSOptions      []string                 `json:"DnsOptions"` // --dns-option: its options line
	DNSSearch       []string                 `json:"DnsSearch"`  // --dns-search: its search line
	AutoRemove      bool                     `json:"AutoRemove"`
	ReadonlyRootfs  bool                     `json:"ReadonlyRootfs"`
	Memory          int64                    `json:"Memory"`
	NanoCPUs        int64                    `json:"NanoCpus"`
	CPUShares       int64                    `json:"CpuShares"`
	PidsLimit       *int64                   `json:"PidsLimit"`
	RestartPolicy   RestartPolicy            `json:"RestartPolicy"`
	// Storage (api/mounts.go): `-v` entries, `--mount` entries, `--tmpfs`
	// (target -> mount options), `--volumes-from` entries.
	Binds       []string          `json:"Binds"`
	Mounts      []Mount           `json:"Mounts,omitempty"`
	Tmpfs       map[string]string `json:"Tmpfs,omitempty"`
	VolumesFrom []string          `json:"VolumesFrom"`
	// Confinement (api/confinement.go): capabilities, seccomp, devices,
	// sysctls, ulimits, namespaces shared with the host or another
	// container.
	Confinement
	// ConsoleSize is the terminal's size, [height, width], set right after
	// the start (with Tty).
	ConsoleSize [2]uint `json:"ConsoleSize"`
}

// ContainerCreateRequest is the body of POST /containers/create: a
// ContainerConfig with the HostConfig beside it.
type ContainerCreateRequest struct {
	ContainerConfig
	HostConfig       *HostConfig       `json:"HostConfig"`
	NetworkingConfig *NetworkingConfig `json:"NetworkingConfig"`
}

// PortBinding is one host side of a published port: "" HostIp = every
// address, "" or "0" HostPort = any free port.
type PortBinding struct {
	HostIP   string `json:"HostIp"`
	HostPort string `json:"HostPort"`
}

// NetworkingConfig names, at create, the networks a container joins and
// how (--ip, --network-alias).
type NetworkingConfig struct {
	EndpointsConfig map[string]*EndpointSettings `json:"EndpointsConfig"`
}

// EndpointSettings is a container's place on one network: what was asked
// (IPAMConfig, Aliases) and, while it runs, what it got.
type EndpointSettings struct {
	IPAMConfig  *EndpointIPAMConfig `json:"IPAMConfig"`
	Aliases     []string            `json:"Aliases"`
	NetworkID   string              `json:"NetworkID"`
	EndpointID  string              `json:"EndpointID"`
	Gateway     string              `json:"Gateway"`
	IPAddress   string              `json:"IPAddress"`
	IPPrefixLen int                 `json:"IPPrefixLen"`
	MacAddress  string              `json:"MacAddress"`
	DNSNames    []string            `json:"DNSNames"`
}

// EndpointIPAMConfig is the address asked for with --ip.
type EndpointIPAMConfig struct {
	IPv4Address string `json:"IPv4Address,omitempty"`
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
	Mounts          []MountPoint
}

// NetworkSettings is a container's networking in inspect: the ports
// ("80/tcp" -> bindings; null = exposed, not published) and one entry per
// network. The top-level address fields are the default bridge's.
type NetworkSettings struct {
	Bridge      string
	SandboxKey  string
	Ports       map[string][]PortBinding
	IPAddress   string
	IPPrefixLen int
	Gateway     string
	MacAddress  string
	Networks    map[string]*EndpointSettings
}

// Port is one published or exposed port in a container list.
type Port struct {
	IP          string `json:"IP,omitempty"`
	PrivatePort uint16 `json:"PrivatePort"`
	PublicPort  uint16 `json:"PublicPort,omitempty"`
	Type        string `json:"Type"`
}

// SummaryNetworkSettings is NetworkSettings in a container list.
type SummaryNetworkSettings struct {
	Networks map[string]*EndpointSettings
}

// Network is GET /networks/{id}.
type Network struct {
	Name       string                     `json:"Name"`
	ID         string                     `json:"Id"`
	Created    string                     `json:"Created"`
	Scope      string                     `json:"Scope"`
	Driver     string                     `json:"Driver"`
	EnableIPv6 bool                       `json:"EnableIPv6"`
	IPAM       IPAM                       `json:"IPAM"`
	Internal   bool                       `json:"Internal"`
	Attachable bool                       `json:"Attachable"`
	Ingress    bool                       `json:"Ingress"`
	Containers map[string]NetworkEndpoint `json:"Containers"`
	Options    map[string]string          `json:"Options"`
	Labels     map[string]string          `json:"Labels"`
	// Peers of an overlay network: the members that run one of its
	// containers.
	Peers []PeerInfo `json:"Peers,omitempty"`
}

// IPAM is a network's address configuration.
type IPAM struct {
	Driver  string            `json:"Driver"`
	Options map[string]string `json:"Options"`
	Config  []IPAMConfig      `json:"Config"`
}

// IPAMConfig is one subnet of a network.
type IPAMConfig struct {
	Subnet  string `json:"Subnet,omitempty"`
	IPRange string `json:"IPRange,omitempty"`
	Gateway string `json:"Gateway,omitempty"`
}

// NetworkEndpoint is one container in a network inspect.
type NetworkEndpoint struct {
	Name        string `json:"Name"`
	EndpointID  string `json:"EndpointID"`
	MacAddress  string `json:"MacAddress"`
	IPv4Address string `json:"IPv4Address"`
	IPv6Address string `json:"IPv6Address"`
}

// NetworkCreateRequest is the body of POST /networks/create.
type NetworkCreateRequest struct {
	Name           string            `json:"Name"`
	Driver         string            `json:"Driver"`
	Internal       bool              `json:"Internal"`
	Attachable     bool              `json:"Attachable"`
	EnableIPv6     *bool             `json:"EnableIPv6"`
	CheckDuplicate bool              `json:"CheckDuplicate"`
	IPAM           *IPAM             `json:"IPAM"`
	Options        map[string]string `json:"Options"`
	Labels         map[string]string `json:"Labels"`
}

// NetworkCreateResponse is the 201 reply of a network create.
type NetworkCreateResponse struct {
	ID      string `json:"Id"`
	Warning string `json:"Warning"`
}

// NetworkConnectRequest is the body of POST /networks/{id}/connect.
type NetworkConnectRequest struct {
	Container      string            `json:"Container"`
	EndpointConfig *EndpointSettings `json:"EndpointConfig"`
}

// NetworkDisconnectRequest is the body of POST /networks/{id}/disconnect.
type NetworkDisconnectRequest struct {
	Container string `json:"Container"`
	Force     bool   `json:"Force"`
}

// NetworksPruneReport is the reply of POST /networks/prune.
type NetworksPruneReport struct {
	NetworksDeleted []string `json:"NetworksDeleted"`
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
	Ports   []Port            `json:"Ports"`
	Labels  map[string]string `json:"Labels"`
	Mounts  []MountPoint      `json:"Mounts"`

	NetworkSettings *SummaryNetworkSettings `json:"NetworkSettings"`
	HostConfig      struct {
		NetworkMode string `json:"NetworkMode"`
	} `json:"HostConfig"`
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

// JSONMessage is one line of the progress streams (load, import, pull,
// push): a line of text (Stream), or a Status about the object ID (a
// layer) with its byte count (ProgressDetail), or an Aux value (a push's
// {"Tag","Digest","Size"}), or the error that ends the stream.
type JSONMessage struct {
	Stream         string          `json:"stream,omitempty"`
	Status         string          `json:"status,omitempty"`
	ID             string          `json:"id,omitempty"`
	ProgressDetail *JSONProgress   `json:"progressDetail,omitempty"`
	Aux            json.RawMessage `json:"aux,omitempty"`
	Error          string          `json:"error,omitempty"`
	ErrorDetail    *ErrorMessage   `json:"errorDetail,omitempty"`
}

// JSONProgress is the byte count of a transfer: Current of Total (0:
// unknown).
type JSONProgress struct {
	Current int64 `json:"current"`
	Total   int64 `json:"total,omitempty"`
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
	// ConsoleSize is the terminal's size, [height, width], set right after
	// the start (with Tty).
	ConsoleSize [2]uint `json:"ConsoleSize"`
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
