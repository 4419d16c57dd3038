package api

// BuildMessage is one line of POST /build's reply, a stream of JSON
// objects (Docker's jsonmessage as its classic builder writes them):
// progress text ({"stream": "Step 1/5 : FROM busybox\n"}), a base
// image's pull progress ({"status", "id"}), the image built
// ({"aux": {"ID": "sha256:..."}}) and the error that ended the build
// ({"errorDetail": {"code", "message"}, "error"}); the docker CLI exits
// with the error's code (a failed RUN's exit code), else 1.
type BuildMessage struct {
	Stream      string      `json:"stream,omitempty"`
	Status      string      `json:"status,omitempty"`
	ID          string      `json:"id,omitempty"`
	Aux         *BuildAux   `json:"aux,omitempty"`
	ErrorDetail *BuildError `json:"errorDetail,omitempty"`
	Error       string      `json:"error,omitempty"`
}

// BuildAux is the aux object of the build stream: the image's ID.
type BuildAux struct {
	ID string `json:"ID"`
}

// BuildError is the errorDetail of the build stream.
type BuildError struct {
	Code    int    `json:"code,omitempty"`
	Message string `json:"message"`
}
