package api

import (
	"encoding/binary"
	"fmt"
	"io"
)

// Stream numbers of the multiplexed framing (stdin is never framed).
const (
	Stdout byte = 1
	Stderr byte = 2
)

// Media types of a hijacked attach stream.
const (
	MediaRaw         = "application/vnd.docker.raw-stream"
	MediaMultiplexed = "application/vnd.docker.multiplexed-stream"
)

// WriteFrame writes p as one frame of the multiplexed stream used without
// a TTY: the stream number, three zero bytes, the length as a big-endian
// uint32, then the payload.
func WriteFrame(w io.Writer, stream byte, p []byte) error {
	var hdr [8]byte
	hdr[0] = stream
	binary.BigEndian.PutUint32(hdr[4:], uint32(len(p)))
	if _, err := w.Write(append(hdr[:], p...)); err != nil {
		return err
	}
	return nil
}

// Demux copies a multiplexed stream into stdout and stderr until EOF.
func Demux(r io.Reader, stdout, stderr io.Writer) error {
	var hdr [8]byte
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if err == io.EOF {
				return nil
			}
			return fmt.Errorf("read stream header: %w", err)
		}
		n := int64(binary.BigEndian.Uint32(hdr[4:]))
		var w io.Writer
		switch hdr[0] {
		case Stdout:
			w = stdout
		case Stderr:
			w = stderr
		default:
			return fmt.Errorf("stream header names stream %d", hdr[0])
		}
		if _, err := io.CopyN(w, r, n); err != nil {
			return fmt.Errorf("read stream frame: %w", err)
		}
	}
}
