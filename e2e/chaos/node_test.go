package chaos

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/raftlookupd/raftlookupd/wire"
)

// Ports inside each node's namespace: every node has its own stack, so the
// nsqlookupd defaults never collide.
const (
	tcpPort  = 4160
	httpPort = 4161
	raftPort = 4162
)

// timing is the node flags that shorten the test; the defaults are in
// cluster.DefaultConfig.
type timing struct {
	LeaseTimeout  time.Duration // -lease-timeout (default 15s)
	LeaseRenew    time.Duration // -lease-renew-interval (default 2s)
	MaxStaleness  time.Duration // -max-staleness (default 3s)
	WriteTimeout  time.Duration // -write-timeout (default 5s)
	OrphanGrace   time.Duration // not a flag yet: how long an orphan may stay listed
	ClientTimeout time.Duration // the test's HTTP and TCP deadline
}

func (tm timing) flags() []string {
	return []string{
		"-lease-timeout", tm.LeaseTimeout.String(),
		"-lease-renew-interval", tm.LeaseRenew.String(),
		"-max-staleness", tm.MaxStaleness.String(),
		"-write-timeout", tm.WriteTimeout.String(),
		"-orphan-grace", tm.OrphanGrace.String(),
		// The test's clients are not on loopback: membership and
		// leadership changes need the token.
		"-admin-token", adminToken,
	}
}

// adminToken is the nodes' -admin-token; the client sends it on /cluster/*.
const adminToken = "chaos-admin-token"

// node is one raftlookupd in namespace ns, started by `ip netns exec`,
// which execs the daemon: the process we signal is the node itself.
type node struct {
	idx     int // 1-based
	id      string
	ns      string
	dataDir string
	logPath string
	bin     string
	base    []string // flags every start has
	// fresh: the next start bootstraps the static cluster (-peers); a node
	// that left and re-joins starts with -bootstrap=false instead.
	peers string
	fresh bool

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	// killing is set while the test kills the process; an exit without it
	// is a crash, recorded in crashes.
	killing bool
	crashes []string
}

func newNode(bin, dir string, idx int, ns, peers string, tm timing) *node {
	id := "n" + strconv.Itoa(idx)
	ip := nodeIP(idx)
	n := &node{
		idx: idx, id: id, ns: ns, bin: bin, peers: peers, fresh: true,
		dataDir: filepath.Join(dir, id, "data"),
		logPath: filepath.Join(dir, id+".log"),
	}
	n.base = append([]string{
		"-node-id", id,
		"-data-dir", n.dataDir,
		"-tcp-address", ip + ":" + strconv.Itoa(tcpPort),
		"-http-address", ip + ":" + strconv.Itoa(httpPort),
		"-raft-address", ip + ":" + strconv.Itoa(raftPort),
		"-broadcast-address", ip,
		"-log-level", "debug",
	}, tm.flags()...)
	return n
}

func (n *node) httpAddr() string { return nodeIP(n.idx) + ":" + strconv.Itoa(httpPort) }
func (n *node) tcpAddr() string  { return nodeIP(n.idx) + ":" + strconv.Itoa(tcpPort) }
func (n *node) raftAddr() string { return nodeIP(n.idx) + ":" + strconv.Itoa(raftPort) }

// start runs the daemon; the log file collects every start.
func (n *node) start(joining bool) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil && !closed(n.done) {
		return fmt.Errorf("%s already running", n.id)
	}
	args := append([]string(nil), n.base...)
	if joining {
		args = append(args, "-bootstrap=false")
		n.fresh = false
	} else if n.fresh {
		args = append(args, "-peers", n.peers)
	}
	if err := os.MkdirAll(filepath.Dir(n.logPath), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	fmt.Fprintf(f, "==== %s start: %s\n", time.Now().Format(time.RFC3339Nano), strings.Join(args, " "))
	cmd := exec.Command("ip", append([]string{"netns", "exec", n.ns, n.bin}, args...)...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = childEnv()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", n.id, err)
	}
	done := make(chan struct{})
	live.Lock()
	live.procs[cmd.Process] = true
	live.Unlock()
	go func() {
		err := cmd.Wait()
		live.Lock()
		delete(live.procs, cmd.Process)
		live.Unlock()
		n.mu.Lock()
		if !n.killing {
			n.crashes = append(n.crashes, fmt.Sprintf("%s exited by itself at %s: %v", n.id, time.Now().Format(time.RFC3339Nano), err))
		}
		n.killing = false
		n.mu.Unlock()
		close(done)
	}()
	n.cmd, n.done = cmd, done
	return nil
}

// childEnv drops settings from the developer's shell that change what the
// daemon does (an admin token would turn admin calls into 401s).
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "RAFTLOOKUPD_") {
			env = append(env, kv)
		}
	}
	return env
}

func closed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func (n *node) crashLog() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.crashes...)
}

func (n *node) running() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cmd != nil && !closed(n.done)
}

func (n *node) signal(sig syscall.Signal) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil || closed(n.done) {
		return fmt.Errorf("%s is not running", n.id)
	}
	return n.cmd.Process.Signal(sig)
}

// kill sends SIGKILL (which also ends a stopped process) and waits.
func (n *node) kill() error {
	n.mu.Lock()
	cmd, done := n.cmd, n.done
	if cmd == nil || closed(done) {
		n.mu.Unlock()
		return nil
	}
	n.killing = true
	n.mu.Unlock()
	_ = cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-done:
		return nil
	case <-time.After(15 * time.Second):
		return fmt.Errorf("%s (pid %d) did not exit after SIGKILL", n.id, cmd.Process.Pid)
	}
}

// wipe removes the data directory (for leave and re-join).
func (n *node) wipe() error { return os.RemoveAll(n.dataDir) }

// ---------------------------------------------------------------------------
// admin calls through the client namespace

// The admin API's documents, in the wire vocabulary.
type (
	memberStatus  = wire.MemberStatus
	clusterStatus = wire.Status
)

// client is the test's HTTP client; every connection starts in the client
// namespace. No keep-alive: a restarted node would reset idle connections
// and turn a clean answer into an ambiguous one.
type client struct {
	http *http.Client
}

func newClient(nw *network, timeout time.Duration) *client {
	return &client{http: &http.Client{
		Timeout:       timeout,
		Transport:     &http.Transport{DialContext: nw.dial, DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// do sends one request and returns the status and body.
func (c *client) do(ctx context.Context, method, url string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0, nil, err
	}
	if strings.HasPrefix(req.URL.Path, "/cluster/") {
		req.Header.Set("Authorization", "Bearer "+adminToken)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return resp.StatusCode, nil, err
	}
	return resp.StatusCode, b, nil
}

func (c *client) getJSON(ctx context.Context, addr, pathq string, v any) error {
	status, b, err := c.do(ctx, http.MethodGet, "http://"+addr+pathq, nil)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("GET %s%s: status %d: %s", addr, pathq, status, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("GET %s%s: %w: %s", addr, pathq, err, b)
	}
	return nil
}

func (c *client) post(ctx context.Context, addr, path string, body any) error {
	status, b, err := c.do(ctx, http.MethodPost, "http://"+addr+path, body)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("POST %s%s: status %d: %s", addr, path, status, b)
	}
	return nil
}

func (c *client) status(ctx context.Context, n *node) (clusterStatus, error) {
	var st clusterStatus
	err := c.getJSON(ctx, n.httpAddr(), "/cluster/status?local=true", &st)
	return st, err
}
