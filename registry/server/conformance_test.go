package server

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"minidock/internal/peers"
)

// conformanceBin is the OCI distribution-spec conformance program, built
// by `make registry-conformance`; without it these tests are skipped.
func conformanceBin(t *testing.T) string {
	p := os.Getenv("MINIDOCK_CONFORMANCE")
	if p == "" {
		t.Skip("MINIDOCK_CONFORMANCE not set (make registry-conformance builds and runs it)")
	}
	return p
}

// conformanceCounts runs the program against a registry (1.1 profile)
// and counts the results of its summary: one line per API and data type,
// each Pass, FAIL, Skip or Disabled.
func conformanceCounts(t *testing.T, bin, addr string) (map[string]int, string, error) {
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), "OCI_REGISTRY="+addr, "OCI_TLS=disabled", "OCI_VERSION=1.1",
		"OCI_REPO1=conformance/repo1", "OCI_REPO2=conformance/repo2", "OCI_RESULTS_DIR="+t.TempDir())
	out, err := cmd.CombinedOutput()
	counts := map[string]int{}
	in := false
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		l := sc.Text()
		switch {
		case l == "API conformance:" || l == "Data conformance:":
			in = true
		case in && strings.HasPrefix(l, "  ") && strings.Contains(l, ":"):
			counts[strings.TrimSpace(l[strings.LastIndex(l, ":")+1:])]++
		default:
			in = false
		}
	}
	return counts, string(out), err
}

func countLine(c map[string]int) string {
	return fmt.Sprintf("%d Pass, %d FAIL, %d Skip, %d Disabled", c["Pass"], c["FAIL"], c["Skip"], c["Disabled"])
}

// TestConformance runs the distribution-spec conformance program against
// minidock's server: no FAIL in the 1.1 profile, referrers included.
func TestConformance(t *testing.T) {
	bin := conformanceBin(t)
	srv, err := New(Options{Root: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	start := time.Now()
	counts, out, err := conformanceCounts(t, bin, strings.TrimPrefix(ts.URL, "http://"))
	fmt.Printf("conformance 1.1, minidock registry: %s (%.1fs)\n", countLine(counts), time.Since(start).Seconds())
	if err != nil || counts["FAIL"] > 0 || counts["Pass"] == 0 {
		t.Errorf("conformance: %v\n%s", err, out)
	}
	if counts["Pass"] < 45 {
		t.Errorf("only %d API and data types pass", counts["Pass"])
	}
}

// TestConformanceDockerRegistry runs the same program against Debian's
// docker-registry 2.8, for comparison (it is expected to fail some).
func TestConformanceDockerRegistry(t *testing.T) {
	bin := conformanceBin(t)
	reg := peers.StartDockerRegistry(t)
	start := time.Now()
	counts, out, _ := conformanceCounts(t, bin, reg.Addr)
	fmt.Printf("conformance 1.1, docker-registry 2.8: %s (%.1fs)\n", countLine(counts), time.Since(start).Seconds())
	if counts["Pass"] == 0 {
		t.Errorf("no result read from the conformance output:\n%s", out)
	}
}
