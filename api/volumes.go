package api

// AnonymousVolumeLabel is the label the engine puts on a volume it named
// itself (an image's VOLUME, `-v /path`, `--mount type=volume` without a
// source): `rm -v` and AutoRemove remove those, never named ones, and
// `volume prune` (API 1.42 and later) removes only those unless asked
// for all.
const AnonymousVolumeLabel = "com.docker.volume.anonymous"

// Volume is GET /volumes/{name} and one entry of GET /volumes.
type Volume struct {
	Name       string            `json:"Name"`
	Driver     string            `json:"Driver"`
	Mountpoint string            `json:"Mountpoint"` // the host directory a container's mount binds
	CreatedAt  string            `json:"CreatedAt,omitempty"`
	Labels     map[string]string `json:"Labels"`
	Scope      string            `json:"Scope"`
	// Options are the driver options it was created with (-o).
	Options   map[string]string `json:"Options"`
	UsageData *VolumeUsageData  `json:"UsageData,omitempty"`
}

// VolumeUsageData says how many containers use a volume and how big its
// data is (-1: not measured).
type VolumeUsageData struct {
	RefCount int64 `json:"RefCount"`
	Size     int64 `json:"Size"`
}

// VolumeCreateOptions is the body of POST /volumes/create. An empty Name
// makes the engine choose one.
type VolumeCreateOptions struct {
	Name       string            `json:"Name,omitempty"`
	Driver     string            `json:"Driver,omitempty"`
	DriverOpts map[string]string `json:"DriverOpts,omitempty"`
	Labels     map[string]string `json:"Labels,omitempty"`
}

// VolumeListResponse is GET /volumes.
type VolumeListResponse struct {
	Volumes  []Volume `json:"Volumes"`
	Warnings []string `json:"Warnings"`
}

// VolumesPruneReport is the reply of POST /volumes/prune.
type VolumesPruneReport struct {
	VolumesDeleted []string `json:"VolumesDeleted"`
	SpaceReclaimed uint64   `json:"SpaceReclaimed"`
}
