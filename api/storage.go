package api

// RestartPolicy is HostConfig.RestartPolicy: Name is "" or "no" (never),
// "on-failure" (on a non-zero exit, at most MaximumRetryCount times when
// that is set), "always", or "unless-stopped" (always, unless the user
// stopped it).
type RestartPolicy struct {
	Name              string `json:"Name"`
	MaximumRetryCount int    `json:"MaximumRetryCount"`
}

// ContainerChange is one entry of GET /containers/{id}/changes: Kind is 0
// modified, 1 added, 2 deleted.
type ContainerChange struct {
	Path string `json:"Path"`
	Kind int    `json:"Kind"`
}

// ImageHistoryItem is one entry of GET /images/{name}/history, newest
// first; Id is "<missing>" for the entries below the image itself.
type ImageHistoryItem struct {
	ID        string   `json:"Id"`
	Created   int64    `json:"Created"`
	CreatedBy string   `json:"CreatedBy"`
	Tags      []string `json:"Tags"`
	Size      int64    `json:"Size"`
	Comment   string   `json:"Comment"`
}

// IDResponse is the 201 reply of POST /commit.
type IDResponse struct {
	ID string `json:"Id"`
}

// ImagesPruneReport is the reply of POST /images/prune.
type ImagesPruneReport struct {
	ImagesDeleted  []ImageDeleteItem `json:"ImagesDeleted"`
	SpaceReclaimed int64             `json:"SpaceReclaimed"`
}

// ContainersPruneReport is the reply of POST /containers/prune.
type ContainersPruneReport struct {
	ContainersDeleted []string `json:"ContainersDeleted"`
	SpaceReclaimed    int64    `json:"SpaceReclaimed"`
}

// PathStat is what HEAD and GET /containers/{id}/archive put, as base64
// JSON, in the X-Docker-Container-Path-Stat header. Mode is Go's
// os.FileMode bits; LinkTarget is the resolved path, in the container,
// when the path is a symlink.
type PathStat struct {
	Name       string `json:"name"`
	Size       int64  `json:"size"`
	Mode       uint32 `json:"mode"`
	Mtime      string `json:"mtime"`
	LinkTarget string `json:"linkTarget"`
}

// PathStatHeader is the header that carries a PathStat.
const PathStatHeader = "X-Docker-Container-Path-Stat"
