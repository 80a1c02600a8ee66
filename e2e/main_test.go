package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Import paths of the binaries the tests run. nsqd comes from the same
// github.com/nsqio/nsq module version go.mod pins (the `tool` directive).
const (
	raftlookupdPkg = "github.com/raftlookupd/raftlookupd/cmd/raftlookupd"
	nsqdPkg        = "github.com/nsqio/nsq/apps/nsqd"
)

// binaries are built at most once per `go test` run, on first use, into a
// directory TestMain owns. Tests that only need the in-process reference
// never pay for the build.
var bins struct {
	dir  string
	once sync.Once

	raftlookupd, nsqd       string
	raftlookupdErr, nsqdErr error
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "raftlookupd-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: temp dir for binaries:", err)
		os.Exit(1)
	}
	bins.dir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func buildBinaries() {
	bins.once.Do(func() {
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			bins.raftlookupd, bins.raftlookupdErr = buildBinary("E2E_RAFTLOOKUPD_BIN", "raftlookupd", raftlookupdPkg)
		}()
		go func() {
			defer wg.Done()
			bins.nsqd, bins.nsqdErr = buildBinary("E2E_NSQD_BIN", "nsqd", nsqdPkg)
		}()
		wg.Wait()
	})
}

// raftlookupdBinary returns the path of the raftlookupd binary. A build
// failure fails the test: a missing daemon is a failure, not a skip.
func raftlookupdBinary(t testing.TB) string {
	t.Helper()
	buildBinaries()
	if bins.raftlookupdErr != nil {
		t.Fatalf("raftlookupd binary unavailable: %v", bins.raftlookupdErr)
	}
	return bins.raftlookupd
}

// nsqdBinary returns the path of the nsqd 1.3.0 binary.
func nsqdBinary(t testing.TB) string {
	t.Helper()
	buildBinaries()
	if bins.nsqdErr != nil {
		t.Fatalf("nsqd binary unavailable: %v", bins.nsqdErr)
	}
	return bins.nsqd
}

// buildBinary runs `go build -o DIR/name pkg` from the module root, unless the
// environment variable env names a prebuilt binary. E2E_RACE_BINARIES=1 builds
// with -race.
func buildBinary(env, name, pkg string) (string, error) {
	if p := os.Getenv(env); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%s=%s: %w", env, p, err)
		}
		return p, nil
	}
	root, err := filepath.Abs("..")
	if err != nil {
		return "", err
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		if gr := os.Getenv("GOROOT"); gr != "" {
			goTool = filepath.Join(gr, "bin", "go")
		} else {
			return "", fmt.Errorf("go tool not found: %w", err)
		}
	}
	out := filepath.Join(bins.dir, name)
	args := []string{"build", "-o", out}
	if os.Getenv("E2E_RACE_BINARIES") == "1" {
		args = append(args, "-race")
	}
	args = append(args, pkg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goTool, args...)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go %v: %w\n%s", args, err, b)
	}
	return out, nil
}
