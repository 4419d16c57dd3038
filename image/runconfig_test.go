package image

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// TestRunConfigSurvivesCommit: Docker's Healthcheck, OnBuild and Shell
// are kept through CreateImage and Commit; an unchanged container adds no
// layer; a scratch image has none; the build cache outlives the store.
func TestRunConfigSurvivesCommit(t *testing.T) {
	s := newStore(t)
	if _, err := s.Import(bytes.NewReader(busyboxTar(t)), "bb", nil); err != nil {
		t.Fatal(err)
	}
	rc := RunConfig{OnBuild: []string{"RUN echo hi"}, Shell: []string{"/bin/bash", "-c"},
		Healthcheck: &HealthConfig{Test: []string{"CMD-SHELL", "true"}, Interval: 5 * time.Second, Retries: 2}}
	rc.Cmd = []string{"sh"}
	withHC, err := s.CreateImage("bb", CommitOptions{RunConfig: &rc, CreatedBy: "config step"})
	if err != nil {
		t.Fatal(err)
	}
	base, _ := s.Resolve("bb")
	if !reflect.DeepEqual(withHC.DiffIDs, base.DiffIDs) {
		t.Fatalf("CreateImage changed the layers")
	}
	if h := withHC.Config.History; !h[len(h)-1].EmptyLayer || h[len(h)-1].CreatedBy != "config step" {
		t.Fatalf("history %+v", h)
	}

	// docker commit of an unchanged container keeps the Docker fields
	// and adds no layer
	if _, err := s.PrepareRootfs("ctr", withHC.ID.String()); err != nil {
		t.Fatal(err)
	}
	committed, err := s.Commit("ctr", CommitOptions{Ref: "committed"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.RunConfig("committed")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*got, rc) {
		t.Fatalf("run config after commit:\n%+v\nwant\n%+v", got, rc)
	}
	if len(committed.DiffIDs) != len(base.DiffIDs) || !committed.Config.History[len(committed.Config.History)-1].EmptyLayer {
		t.Fatalf("an unchanged container added a layer: %d -> %d", len(base.DiffIDs), len(committed.DiffIDs))
	}
	// a change is a layer
	rfs, _ := s.Rootfs("ctr")
	os.WriteFile(filepath.Join(rfs.Upper, "new"), []byte("x"), 0o644)
	changed, err := s.Commit("ctr", CommitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(changed.DiffIDs) != len(base.DiffIDs)+1 {
		t.Fatalf("a changed container gave %d layers", len(changed.DiffIDs))
	}
	if err := s.RemoveRootfs("ctr"); err != nil {
		t.Fatal(err)
	}

	// FROM scratch: no layers, and a container of it still mounts
	empty, err := s.CreateImage("", CommitOptions{CreatedBy: "scratch"})
	if err != nil || len(empty.DiffIDs) != 0 || empty.Config.OS != "linux" {
		t.Fatalf("empty image %+v, %v", empty, err)
	}
	if _, err := s.PrepareRootfs("sc", empty.ID.String()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Mount("sc"); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveRootfs("sc"); err != nil {
		t.Fatal(err)
	}

	// the build cache: found again after a reopen; gone with its image
	if err := s.SetCachedImage("k1", changed.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.SetCachedImage("k3", "sha256:0000000000000000000000000000000000000000000000000000000000000000"); err == nil {
		t.Fatal("cached an image that does not exist")
	}
	s2, err := Open(s.Root())
	if err != nil {
		t.Fatal(err)
	}
	if img, err := s2.CachedImage("k1"); err != nil || img == nil || img.ID != changed.ID {
		t.Fatalf("after reopen: %v %v", img, err)
	}
	if _, err := s2.Remove(changed.ID.String(), true); err != nil {
		t.Fatal(err)
	}
	if img, _ := s2.CachedImage("k1"); img != nil {
		t.Fatal("a removed image is still a cache hit")
	}
}
