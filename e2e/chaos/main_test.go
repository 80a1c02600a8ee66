package chaos

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

const raftlookupdPkg = "github.com/raftlookupd/raftlookupd/cmd/raftlookupd"

var bin struct {
	dir  string
	once sync.Once
	path string
	err  error
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "raftlookupd-chaos-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos: temp dir for the binary:", err)
		os.Exit(1)
	}
	bin.dir = dir
	// An interrupted run must not leave namespaces or processes behind.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		s := <-sigs
		fmt.Fprintf(os.Stderr, "chaos: %v: removing namespaces and nodes\n", s)
		cleanupAll()
		os.RemoveAll(dir)
		os.Exit(1)
	}()
	code := m.Run()
	cleanupAll()
	os.RemoveAll(dir)
	os.Exit(code)
}

// raftlookupdBinary builds the daemon once per test binary (or takes
// E2E_RAFTLOOKUPD_BIN, like the e2e package).
func raftlookupdBinary(t testing.TB) string {
	t.Helper()
	bin.once.Do(func() {
		if p := os.Getenv("E2E_RAFTLOOKUPD_BIN"); p != "" {
			bin.path = p
			_, bin.err = os.Stat(p)
			return
		}
		root, err := filepath.Abs("../..")
		if err != nil {
			bin.err = err
			return
		}
		out := filepath.Join(bin.dir, "raftlookupd")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", "build", "-o", out, raftlookupdPkg)
		cmd.Dir = root
		if b, err := cmd.CombinedOutput(); err != nil {
			bin.err = fmt.Errorf("go build: %w\n%s", err, b)
			return
		}
		bin.path = out
	})
	if bin.err != nil {
		t.Fatalf("raftlookupd binary unavailable: %v", bin.err)
	}
	return bin.path
}
