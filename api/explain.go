package api

// Explanation is GET /containers/{id}/explain, a minidock extension: what
// the kernel built for one container, each fact read from /proc or /sys
// by the daemon, with the host's side beside it. docs/explain.md says
// where each field comes from. The field names are stable: scripts may
// rely on them (`minidock explain --format json`). The sections that only
// exist while the container runs (namespaces, cgroup, mounts, security,
// network, processes) are empty when it does not.
type Explanation struct {
	ID      string
	Name    string // without Docker's leading slash
	Image   string // as the user named it
	ImageID string
	Status  string // created, running, paused, exited, ...
	Running bool
	// Pid is the container's init as the host sees it; 0 when not running.
	Pid int
	// ExitCode, FinishedAt and Error are the last run's end, when there
	// was one ("" FinishedAt: it never ended).
	ExitCode   int
	FinishedAt string `json:",omitempty"`
	Error      string `json:",omitempty"`
	LogPath    string // the json-file log the shim writes

	Namespaces []ExplainNamespace `json:",omitempty"`
	Cgroup     *ExplainCgroup     `json:",omitempty"`
	Rootfs     ExplainRootfs
	Mounts     []ExplainMount   `json:",omitempty"`
	Security   *ExplainSecurity `json:",omitempty"`
	Network    *ExplainNetwork  `json:",omitempty"`
	Processes  []ExplainProcess `json:",omitempty"`
	// Notes are what could not be read, each naming what and why: an
	// explanation is given even when part of it is missing.
	Notes []string `json:",omitempty"`
}

// ExplainNamespace is one namespace of the init (/proc/PID/ns/TYPE)
// beside the host's (/proc/1/ns/TYPE, or the daemon's). Two processes are in the same
// namespace exactly when the inode numbers are equal.
type ExplainNamespace struct {
	Type      string // cgroup, ipc, mnt, net, pid, time, user, uts
	Inode     uint64
	HostInode uint64
	// HostPid is whose namespace HostInode is: 1, or the daemon's own pid
	// where pid 1's cannot be read (a sandbox).
	HostPid int
	Shared  bool // Inode == HostInode: the container did not get its own
}

// ExplainCgroup is the init's cgroup (/proc/PID/cgroup) and what its
// files say.
type ExplainCgroup struct {
	Mode string // unified (v2), hybrid or legacy (v1), as cgroup.DetectMode tells
	Path string // the cgroup, relative to the hierarchy's root: /minidock/<id>
	// Dirs are the cgroup's directories: one on v2, one per controller
	// hierarchy on v1 ("memory: /sys/fs/cgroup/memory/minidock/<id>").
	Dirs  []ExplainCgroupDir
	Files []ExplainCgroupFile // limits and usage, as read
}

// ExplainCgroupDir is the cgroup's directory in one hierarchy.
type ExplainCgroupDir struct {
	Hierarchy string // "" for v2's unified hierarchy; "memory", "cpu,cpuacct", ... on v1
	Dir       string
}

// ExplainCgroupFile is one file of the cgroup, read.
type ExplainCgroupFile struct {
	File  string // relative to Dirs' root: memory.max, memory/memory.limit_in_bytes
	Value string // as read, trimmed
	// Meaning says it in words: "limit 64.0MiB", "no limit", "usage 1.2MiB".
	Meaning string
}

// ExplainRootfs is the container's overlay root filesystem: what is still
// there when it does not run (the layers, the upper and work dirs), and
// whether and how it is mounted.
type ExplainRootfs struct {
	Mounted bool   // the overlay is the root of the init's mount namespace
	Merged  string // the overlay's mount point in the daemon's namespace
	Upper   string // upperdir: every change the container made
	Work    string // workdir: overlayfs's scratch space
	// Lower are the lowerdirs, top-most first, as the overlay was
	// mounted (as the store would mount them when it is not).
	Lower []ExplainLayer
	// MountOptions are the overlay's superblock options, as the kernel
	// shows them in mountinfo; "" when not mounted.
	MountOptions string `json:",omitempty"`
}

// ExplainLayer is one lowerdir, mapped back to the image.
type ExplainLayer struct {
	Dir  string // the lowerdir: a short link, overlay/l/<id>
	Path string // where that leads: overlay/<chain-id>/diff
	// Kind is "init" (the container's init layer: mount points for
	// /etc/hosts, /etc/hostname, /etc/resolv.conf) or "image".
	Kind    string
	DiffID  string `json:",omitempty"` // the digest of the layer's uncompressed tar (the image config's rootfs.diff_ids)
	ChainID string `json:",omitempty"` // the identity of the stack up to and including it
	Digest  string `json:",omitempty"` // the layer blob's digest in the manifest
	// CreatedBy is the instruction that made the layer (the image
	// config's history, created_by).
	CreatedBy string `json:",omitempty"`
	Size      int64  `json:",omitempty"` // bytes of file content
}

// ExplainMount is one line of /proc/PID/mountinfo: a mount as the
// container sees it.
type ExplainMount struct {
	Point   string // in the container
	FSType  string
	Source  string
	Root    string // the directory of the source mounted (bind mounts)
	Options string // per-mount options
}

// ExplainSecurity is the init's privileges, from /proc/PID/status.
type ExplainSecurity struct {
	Effective   []string // CapEff: what the process can do now
	Permitted   []string // CapPrm
	Inheritable []string // CapInh
	Bounding    []string // CapBnd: the most it or its children can ever get
	Ambient     []string // CapAmb
	// Dropped are the capabilities the host's init has in its bounding set
	// and the container's does not.
	Dropped []string
	// Seccomp is the Seccomp: line: 0 disabled, 1 strict, 2 filter;
	// SeccompMode names it; SeccompFilters is how many filters are loaded.
	Seccomp        int
	SeccompMode    string
	SeccompFilters int
	NoNewPrivs     bool
	// UIDMap and GIDMap are /proc/PID/uid_map and gid_map, one line each
	// ("0 0 4294967295": no user namespace of its own).
	UIDMap []string
	GIDMap []string
}

// ExplainNetwork is the container's path to the world.
type ExplainNetwork struct {
	Mode string // a network's name (bridge), host, none, container:<id>
	// Interfaces are the links of the container's network namespace, with
	// each veth's peer on the host and the bridge that peer is enslaved to.
	Interfaces []ExplainInterface
	Ports      []ExplainPort
	// Table is the nftables table (family inet) of the daemon; Rules its
	// rules that name the container's addresses (DNAT of its published
	// ports) or its bridges (masquerade), as the kernel lists them.
	Table string `json:",omitempty"`
	Rules []string
}

// ExplainInterface is one link inside the container, and its way out.
type ExplainInterface struct {
	Name      string // eth0
	Index     int
	MAC       string   `json:",omitempty"`
	Addresses []string // CIDR
	// HostVeth is the veth's other end in the host's namespace (found by
	// its ifindex, IFLA_LINK), HostIndex its index; Bridge the bridge it
	// is a port of (IFLA_MASTER) and BridgeAddresses the bridge's
	// addresses (the container's gateway). Empty for lo.
	HostVeth        string   `json:",omitempty"`
	HostIndex       int      `json:",omitempty"`
	Bridge          string   `json:",omitempty"`
	BridgeAddresses []string `json:",omitempty"`
}

// ExplainPort is one published port.
type ExplainPort struct {
	Proto         string
	HostIP        string `json:",omitempty"`
	HostPort      uint16
	ContainerPort uint16
}

// ExplainProcess is one process of the tree from the shim down, in
// depth-first order.
type ExplainProcess struct {
	Pid  int // as the host sees it
	PPid int
	// NSPid is its pid in the container's pid namespace (the last of
	// /proc/PID/status NSpid:); 0 for the shim, which is outside it.
	NSPid   int
	Depth   int    // 0 for the shim
	Role    string // shim, init, or ""
	Command string
}
