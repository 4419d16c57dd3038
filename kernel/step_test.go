package kernel

import (
	"errors"
	"reflect"
	"testing"

	"golang.org/x/sys/unix"
)

// TestStepperPausesBeforeEachCall: the pause sees each call, with its step
// and its arguments as the trace spells them, before the call is made; a
// pause that says no stops the call, which returns an *Error naming it.
func TestStepperPausesBeforeEachCall(t *testing.T) {
	rec := NewRecorder()
	var paused []string
	stop := errors.New("stopped")
	s := NewStepper(rec, func(p Pause) error {
		paused = append(paused, p.Step+": "+p.Op+" "+p.Args)
		// the call is not made before its pause
		if n := len(rec.Calls()); rec.Calls()[n-1].Op == p.Op {
			t.Errorf("%s made before its pause", p.Op)
		}
		if p.Op == "pivot_root" {
			return stop
		}
		return nil
	})
	k := s.Begin("enterRootfs")
	if err := k.Mount("", "/", "", unix.MS_REC|unix.MS_SLAVE, ""); err != nil {
		t.Fatal(err)
	}
	if err := PauseBefore(k, "clone", "flags=CLONE_NEWNS"); err != nil {
		t.Fatal(err)
	}
	err := k.PivotRoot(".", ".")
	var ke *Error
	if !errors.As(err, &ke) || ke.Op != "pivot_root" || !errors.Is(err, stop) {
		t.Fatalf("stopped pivot_root returned %v, want an *Error of pivot_root wrapping the pause's error", err)
	}
	k.Note("read", "a note", nil) // no pause: made already
	want := []string{
		"enterRootfs: mount dst=/, flags=MS_REC|MS_SLAVE",
		"enterRootfs: clone flags=CLONE_NEWNS",
		"enterRootfs: pivot_root ., .",
	}
	if !reflect.DeepEqual(paused, want) {
		t.Errorf("pauses %q, want %q", paused, want)
	}
	var ops []string
	for _, c := range rec.Calls() {
		ops = append(ops, c.Op)
	}
	if want := []string{"begin", "mount", "read"}; !reflect.DeepEqual(ops, want) {
		t.Errorf("calls made %q, want %q (no pivot_root: its pause stopped it)", ops, want)
	}
	if PauseBefore(rec, "clone", "") != nil {
		t.Error("PauseBefore of calls that do not step")
	}
}
