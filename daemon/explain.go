package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"minidock/api"
	"minidock/bridge"
	"minidock/explain"
	"minidock/image"
	"minidock/network"
)

// Explain is GET /containers/{id}/explain (a minidock extension): what the
// kernel built for the container, read from /proc and /sys by package
// explain, joined with what the daemon knows (the image's layers and
// history, the published ports, the nftables table). Of a container that
// does not run it tells what is still there: the layers, the upper and
// work dirs, the log and how the last run ended. What cannot be read goes
// into Notes; only an unknown container is an error (404).
func (d *Daemon) Explain(ctx context.Context, name string) (api.Explanation, error) {
	c, err := d.lookup(name)
	if err != nil {
		return api.Explanation{}, err
	}
	d.mu.Lock()
	ex := api.Explanation{ID: c.ID, Name: c.Name, Image: c.ImageRef, ImageID: c.Image, Status: c.State.status(),
		Running: c.State.Status == "running", ExitCode: c.State.ExitCode, Error: c.State.Error, LogPath: c.paths.log}
	if ex.Running {
		ex.Pid = c.State.Pid
	}
	if !c.State.FinishedAt.IsZero() {
		ex.FinishedAt = formatTime(c.State.FinishedAt)
	}
	mode := network.Mode(&c.HostConfig)
	var ports []api.ExplainPort
	for _, p := range c.Ports {
		ep := api.ExplainPort{Proto: p.Proto, HostPort: p.HostPort, ContainerPort: p.ContainerPort}
		if p.HostIP.IsValid() {
			ep.HostIP = p.HostIP.String()
		}
		ports = append(ports, ep)
	}
	d.mu.Unlock()

	note := func(err error) { ex.Notes = append(ex.Notes, err.Error()) }
	var mounted *explain.Overlay
	if ex.Running {
		pid := ex.Pid
		if ex.Namespaces, err = explain.Namespaces(pid); err != nil {
			note(err)
		}
		if ex.Cgroup, err = explain.Cgroup(pid); err != nil {
			note(err)
		}
		if ex.Mounts, mounted, err = explain.Mounts(pid); err != nil {
			note(err)
		}
		if ex.Security, err = explain.Security(pid); err != nil {
			note(err)
		}
		if ex.Network, err = d.explainNetwork(pid, mode, ports, ex.Namespaces); err != nil {
			note(err)
		}
		ex.Processes = explain.ProcessTree(pid)
	}
	if ex.Rootfs, err = d.explainRootfs(c.ID, mounted); err != nil {
		note(err)
	}
	return ex, nil
}

// explainRootfs maps the lowerdirs (as mounted, or as the store would
// mount them) back to the image: each short link overlay/l/<id> is the
// store's link to one layer stack (chain ID), whose diff ID is the
// image config's rootfs.diff_ids entry, the manifest's layer at the same
// index its blob, and the history entry that made a layer (the ones not
// marked empty_layer, in order) its instruction.
func (d *Daemon) explainRootfs(id string, mounted *explain.Overlay) (api.ExplainRootfs, error) {
	rfs, err := d.images.Rootfs(id)
	if err != nil {
		return api.ExplainRootfs{}, fmt.Errorf("root filesystem of %s: %w", id, err)
	}
	out := api.ExplainRootfs{Merged: rfs.Merged, Upper: rfs.Upper, Work: rfs.Work}
	lower := rfs.Lower
	if mounted != nil {
		out.Mounted, out.MountOptions, lower = true, mounted.Options, mounted.Lower
		out.Upper, out.Work = mounted.Upper, mounted.Work
	}
	layers := d.imageLayers(rfs)
	for _, dir := range lower {
		l, ok := layers[filepath.Base(dir)]
		if !ok {
			l = api.ExplainLayer{Kind: "unknown"}
		}
		l.Dir = dir
		if target, err := os.Readlink(dir); err == nil {
			l.Path = filepath.Clean(filepath.Join(filepath.Dir(dir), target))
		} else {
			l.Path = dir
		}
		out.Lower = append(out.Lower, l)
	}
	return out, nil
}

// imageLayers describes each of rfs's lower layers, by the base name of
// its lowerdir (a short link's name, unique in the store, or "init").
func (d *Daemon) imageLayers(rfs *image.Rootfs) map[string]api.ExplainLayer {
	out := map[string]api.ExplainLayer{}
	lower := rfs.Lower
	if len(lower) == len(rfs.ChainIDs)+1 { // the init layer, on top
		out[filepath.Base(lower[0])] = api.ExplainLayer{Kind: "init", CreatedBy: "minidock: mount points of /etc/hosts, /etc/hostname, /etc/resolv.conf"}
		lower = lower[1:]
	}
	var diffIDs, blobs []digest.Digest
	var createdBy []string
	var sizes []int64
	if img, err := d.images.Resolve(rfs.ImageID.String()); err == nil {
		diffIDs, sizes = img.DiffIDs, d.images.LayerSizes(img)
		for _, h := range img.Config.History {
			if !h.EmptyLayer {
				createdBy = append(createdBy, h.CreatedBy)
			}
		}
		var m ocispec.Manifest
		if b, err := d.images.ReadBlob(img.Manifest); err == nil && json.Unmarshal(b, &m) == nil {
			for _, l := range m.Layers {
				blobs = append(blobs, l.Digest)
			}
		}
	}
	n := len(rfs.ChainIDs)
	for i, chain := range rfs.ChainIDs { // base first; lower is top-most first
		if n-1-i >= len(lower) {
			break
		}
		l := api.ExplainLayer{Kind: "image", ChainID: chain.String()}
		if i < len(diffIDs) {
			l.DiffID = diffIDs[i].String()
		}
		if i < len(sizes) {
			l.Size = sizes[i]
		}
		if len(blobs) == n {
			l.Digest = blobs[i].String()
		}
		if len(createdBy) == n {
			l.CreatedBy = strings.TrimSpace(createdBy[i])
		}
		out[filepath.Base(lower[n-1-i])] = l
	}
	return out
}

// explainNetwork reads the container's network path: its links (in its
// network namespace) with their host veths and bridges, and the rules of
// the daemon's nftables table that name its addresses or bridges. With
// the host's network namespace there is no path to show.
func (d *Daemon) explainNetwork(pid int, mode string, ports []api.ExplainPort, nss []api.ExplainNamespace) (*api.ExplainNetwork, error) {
	out := &api.ExplainNetwork{Mode: mode, Ports: ports, Rules: []string{}}
	for _, ns := range nss {
		if ns.Type == "net" && ns.Shared {
			return out, nil
		}
	}
	var err error
	if out.Interfaces, err = explain.Interfaces(pid); err != nil {
		return out, err
	}
	var words []string
	for _, it := range out.Interfaces {
		if it.Bridge == "" {
			continue
		}
		words = append(words, it.Bridge)
		for _, a := range it.Addresses {
			addr, _, _ := strings.Cut(a, "/")
			words = append(words, addr)
		}
	}
	if len(words) == 0 {
		return out, nil
	}
	out.Table = d.cfg.Network.NftTable
	if out.Table == "" {
		out.Table = bridge.DefaultTable
	}
	out.Rules, err = explain.Rules(out.Table, words)
	return out, err
}
