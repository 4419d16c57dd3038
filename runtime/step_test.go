package runtime

import (
	"bytes"
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"minidock/kernel"
)

// terminal is what the prompter reads answers from and writes prompts to.
type terminal struct {
	io.Reader
	bytes.Buffer
}

func (t *terminal) Read(p []byte) (int, error) { return t.Reader.Read(p) }

// startConnection is a socketpair standing for the start connection: the
// init's end as the init has it (a file), Start's as Start has it.
func startConnection(t *testing.T) (initEnd, startEnd *os.File) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	initEnd, startEnd = os.NewFile(uintptr(fds[0]), "init"), os.NewFile(uintptr(fds[1]), "start")
	t.Cleanup(func() { initEnd.Close(); startEnd.Close() })
	return initEnd, startEnd
}

// TestStartAnswersStepsThenError: in step mode the init asks its pauses
// over the start connection (askStart), Start answers each with the
// prompter (answerSteps: Enter, then q), and what the init writes after
// the abort, its error, comes back as the rest.
func TestStartAnswersStepsThenError(t *testing.T) {
	initEnd, startEnd := startConnection(t)
	tty := &terminal{Reader: strings.NewReader("\nq\n")}
	p := newPrompter(tty)
	p.started(4242, "")
	rest := make(chan []byte, 1)
	go func() { rest <- p.answerSteps(startEnd) }()

	ask := &initAsker{}
	ask.askStart(initEnd)
	if err := ask.pause(kernel.Pause{Step: "execProcess", Op: "close_range", Args: "first=3, CLOSE_RANGE_CLOEXEC"}); err != nil {
		t.Fatalf("Enter: %v", err)
	}
	if err := ask.pause(kernel.Pause{Step: "execProcess", Op: "seccomp", Args: "12 instructions"}); !errors.Is(err, ErrStepAborted) {
		t.Fatalf("q: %v, want ErrStepAborted", err)
	}
	initEnd.WriteString("seccomp 12 instructions: aborted at the step prompt (q)")
	initEnd.Close()
	if got := string(<-rest); got != "seccomp 12 instructions: aborted at the step prompt (q)" {
		t.Errorf("rest %q", got)
	}
	out := tty.String()
	for _, want := range []string{"pause 1 · init · execProcess · init pid 4242", "next: close_range first=3", "pause 2 · init · execProcess", "next: seccomp 12 instructions"} {
		if !strings.Contains(out, want) {
			t.Errorf("the terminal shows no %q:\n%s", want, out)
		}
	}
}

// TestStartAnswersStepsUntilExec: the end of the connection (execve
// closes it) ends the answering with nothing left: the start worked.
func TestStartAnswersStepsUntilExec(t *testing.T) {
	initEnd, startEnd := startConnection(t)
	p := newPrompter(&terminal{Reader: strings.NewReader("\n")})
	rest := make(chan []byte, 1)
	go func() { rest <- p.answerSteps(startEnd) }()
	ask := &initAsker{}
	ask.askStart(initEnd)
	if err := ask.pause(kernel.Pause{Step: "execProcess", Op: "execve", Args: "/bin/sh"}); err != nil {
		t.Fatal(err)
	}
	initEnd.Close()
	if got := <-rest; len(got) != 0 {
		t.Errorf("rest %q, want nothing", got)
	}
}
