package e2e

// raftlookupd processes: single nodes and static clusters.

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/raftlookupd/raftlookupd/wire"
)

// ---------------------------------------------------------------------------
// raftlookupd nodes

// Node is one raftlookupd process with fixed addresses and data directory.
// All its methods may be called from the test goroutine only.
type Node struct {
	t       testing.TB
	ID      string
	DataDir string
	LogPath string

	bin                         string
	args                        []string
	tcpAddr, httpAddr, raftAddr string

	// adminToken is the -admin-token the node runs with, if any; the
	// harness's own status and readiness checks send it.
	adminToken string

	mu   sync.Mutex
	proc *process
}

func (n *Node) TCPAddr() string  { return n.tcpAddr }
func (n *Node) HTTPAddr() string { return n.httpAddr }
func (n *Node) RaftAddr() string { return n.raftAddr }
func (n *Node) String() string   { return "raftlookupd " + n.ID + " (http " + n.httpAddr + ")" }

// Args returns the command line the node runs with.
func (n *Node) Args() []string { return append([]string(nil), n.args...) }

// newNode prepares (does not start) a node. Its cleanup kills the process
// and, if the test failed, prints the node's log.
func newNode(t testing.TB, bin, id string, tcpPort, httpPort, raftPort int, dir string, extra []string) *Node {
	n := &Node{
		t:        t,
		ID:       id,
		DataDir:  filepath.Join(dir, "data"),
		LogPath:  filepath.Join(dir, id+".log"),
		bin:      bin,
		tcpAddr:  hostPort(tcpPort),
		httpAddr: hostPort(httpPort),
		raftAddr: hostPort(raftPort),
	}
	for i, a := range extra {
		if a == "-admin-token" && i+1 < len(extra) {
			n.adminToken = extra[i+1]
		}
	}
	logLevel := os.Getenv("E2E_LOG_LEVEL")
	if logLevel == "" {
		logLevel = "debug"
	}
	n.args = append([]string{
		"-node-id", id,
		"-data-dir", n.DataDir,
		"-tcp-address", n.tcpAddr,
		"-http-address", n.httpAddr,
		"-raft-address", n.raftAddr,
		"-broadcast-address", "127.0.0.1",
		"-log-level", logLevel,
	}, extra...)
	t.Cleanup(func() {
		if err := n.stopQuietly(); err != nil {
			t.Errorf("%s: %v", n, err)
		}
		if t.Failed() {
			dumpLog(t, n.String(), n.LogPath)
		}
	})
	return n
}

func (n *Node) start() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.proc != nil && !n.proc.exited() {
		return fmt.Errorf("%s is already running", n)
	}
	p, err := startProcess(n.bin, n.args, n.LogPath)
	if err != nil {
		return fmt.Errorf("start %s: %w", n, err)
	}
	n.proc = p
	return nil
}

func (n *Node) current() *process {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.proc
}

func (n *Node) stopQuietly() error {
	if p := n.current(); p != nil {
		return p.kill()
	}
	return nil
}

// Running reports whether the process is started and has not exited.
func (n *Node) Running() bool {
	p := n.current()
	return p != nil && !p.exited()
}

// exitError returns an error when the process has exited (nil while it runs).
func (n *Node) exitError() error {
	p := n.current()
	if p == nil {
		return fmt.Errorf("%s was never started", n)
	}
	if p.exited() {
		return fmt.Errorf("%s exited: %v", n, p.err)
	}
	return nil
}

// Kill sends SIGKILL and waits for the process to end.
func (n *Node) Kill() {
	n.t.Helper()
	if err := n.stopQuietly(); err != nil {
		n.t.Fatal(err)
	}
}

// Term sends SIGTERM and waits for a clean exit (exit status 0). A node that
// needs longer than processExitTimeout is killed and the test fails.
func (n *Node) Term() {
	n.t.Helper()
	p := n.current()
	if p == nil || p.exited() {
		n.t.Fatalf("Term: %s is not running", n)
	}
	_ = p.signal(syscall.SIGTERM)
	if !p.waitExit(processExitTimeout) {
		_ = p.kill()
		n.t.Fatalf("%s did not exit within %v of SIGTERM", n, processExitTimeout)
	}
	if p.err != nil {
		n.t.Errorf("%s: exit after SIGTERM: %v (want status 0)", n, p.err)
	}
}

// Stop freezes the process (SIGSTOP): sockets stay open, nothing answers.
// It returns once every thread of the process is stopped: kill(2) only
// queues the signal, and a thread running on another core goes on for a
// moment (long enough to answer a heartbeat).
func (n *Node) Stop() {
	n.t.Helper()
	p := n.current()
	if p == nil || p.signal(syscall.SIGSTOP) != nil {
		n.t.Fatalf("SIGSTOP %s failed", n)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !allThreadsStopped(p.cmd.Process.Pid) {
		if time.Now().After(deadline) {
			n.t.Fatalf("%s: threads still running 5s after SIGSTOP", n)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// allThreadsStopped reports whether every thread of pid is in the stopped
// state (T in /proc/PID/task/TID/stat).
func allThreadsStopped(pid int) bool {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	tasks, err := os.ReadDir(dir)
	if err != nil || len(tasks) == 0 {
		return false
	}
	for _, task := range tasks {
		b, err := os.ReadFile(filepath.Join(dir, task.Name(), "stat"))
		if err != nil {
			continue // the thread ended
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 || i+2 >= len(s) || (s[i+2] != 'T' && s[i+2] != 't') {
			return false
		}
	}
	return true
}

// Cont resumes a stopped process (SIGCONT).
func (n *Node) Cont() {
	n.t.Helper()
	if p := n.current(); p == nil || p.signal(syscall.SIGCONT) != nil {
		n.t.Fatalf("SIGCONT %s failed", n)
	}
}

// Restart starts the node again with the same flags and data directory. It
// does not wait; use WaitReady (a lone node of a cluster cannot get ready).
func (n *Node) Restart() {
	n.t.Helper()
	if err := n.start(); err != nil {
		n.t.Fatal(err)
	}
}

// WaitReady waits until the node answers GET /cluster/ready with 200 and its
// status names a leader.
func (n *Node) WaitReady(timeout time.Duration) {
	n.t.Helper()
	waitFor(n.t, timeout, n.checkReady)
}

func (n *Node) checkReady() error {
	if err := n.exitError(); err != nil {
		return err
	}
	res, err := httpDo("GET", "http://"+n.httpAddr+"/cluster/ready", nil, n.adminHeader())
	if err != nil {
		return err
	}
	if res.Status != http.StatusOK {
		return fmt.Errorf("%s: GET /cluster/ready: %d %s", n, res.Status, res.Body)
	}
	st, err := n.Status()
	if err != nil {
		return err
	}
	if st.LeaderID == "" {
		return fmt.Errorf("%s: no leader in /cluster/status", n)
	}
	return nil
}

// clusterStatus is GET /cluster/status, in the wire vocabulary the CLI uses
// too (a leaf package: the tests stay black-box).
type clusterStatus = wire.Status

// Status fetches GET /cluster/status.
func (n *Node) Status() (clusterStatus, error) {
	var st clusterStatus
	res, err := httpDo("GET", "http://"+n.httpAddr+"/cluster/status", nil, n.adminHeader())
	if err != nil {
		return st, err
	}
	if res.Status != http.StatusOK {
		return st, fmt.Errorf("%s: GET /cluster/status: %d %s", n, res.Status, res.Body)
	}
	err = json.Unmarshal(res.Body, &st)
	return st, err
}

// adminHeader authorizes the harness's admin requests when the node runs
// with -admin-token.
func (n *Node) adminHeader() http.Header {
	if n.adminToken == "" {
		return nil
	}
	return http.Header{"Authorization": {"Bearer " + n.adminToken}}
}

func (n *Node) isLeader() bool {
	st, err := n.Status()
	return err == nil && strings.EqualFold(st.State, "leader") && st.LeaderID == n.ID
}

// ---------------------------------------------------------------------------
// clusters

// Cluster is a set of raftlookupd nodes started together.
type Cluster struct {
	t     testing.TB
	Nodes []*Node
}

// StartNode starts a single-node raftlookupd (no -peers: it bootstraps
// itself) and waits until it is ready.
func StartNode(t testing.TB, extra ...string) *Node {
	t.Helper()
	return StartCluster(t, 1, extra...).Nodes[0]
}

// StartCluster starts size nodes n1..nSIZE. With size > 1 every node gets the
// same static -peers list of raft addresses. It waits (with a deadline) until
// every node is ready and all agree on the leader. A start that lost a port
// race is retried with new ports and fresh data directories.
func StartCluster(t testing.TB, size int, extra ...string) *Cluster {
	t.Helper()
	bin := raftlookupdBinary(t)
	for attempt := 1; ; attempt++ {
		ports := freePorts(t, 3*size)
		base := t.TempDir()
		c := &Cluster{t: t}
		var peers []string
		for i := range size {
			peers = append(peers, fmt.Sprintf("n%d=%s", i+1, hostPort(ports[3*i+2])))
		}
		for i := range size {
			id := fmt.Sprintf("n%d", i+1)
			dir := filepath.Join(base, id)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			args := append([]string(nil), extra...)
			if size > 1 {
				args = append(args, "-peers", strings.Join(peers, ","))
			}
			c.Nodes = append(c.Nodes, newNode(t, bin, id, ports[3*i], ports[3*i+1], ports[3*i+2], dir, args))
		}
		for _, n := range c.Nodes {
			if err := n.start(); err != nil {
				t.Fatal(err)
			}
		}
		err := eventually(clusterReadyTimeout, func() error {
			return c.checkReady(c.Nodes)
		})
		if err == nil {
			return c
		}
		bindFailure := false
		for _, n := range c.Nodes {
			if !n.Running() && logShowsBindFailure(n.LogPath) {
				bindFailure = true
			}
		}
		if bindFailure && attempt < maxStartAttempts {
			t.Logf("cluster start attempt %d lost a port race, retrying: %v", attempt, err)
			for _, n := range c.Nodes {
				_ = n.stopQuietly()
			}
			continue
		}
		t.Fatalf("%d-node cluster not ready within %v: %v", size, clusterReadyTimeout, err)
	}
}

// checkReady: every given node is running, ready, and all name the same leader.
func (c *Cluster) checkReady(nodes []*Node) error {
	leader := ""
	for _, n := range nodes {
		if err := n.checkReady(); err != nil {
			return err
		}
		st, err := n.Status()
		if err != nil {
			return err
		}
		if leader == "" {
			leader = st.LeaderID
		} else if st.LeaderID != leader {
			return fmt.Errorf("nodes disagree on the leader: %q vs %q", leader, st.LeaderID)
		}
	}
	return nil
}

// WaitReady waits until the given nodes (default: every running node) are
// ready and agree on a leader.
func (c *Cluster) WaitReady(timeout time.Duration, nodes ...*Node) {
	c.t.Helper()
	if len(nodes) == 0 {
		nodes = c.Running()
	}
	waitFor(c.t, timeout, func() error { return c.checkReady(nodes) })
}

// Running returns the nodes whose process runs.
func (c *Cluster) Running() []*Node {
	var out []*Node
	for _, n := range c.Nodes {
		if n.Running() {
			out = append(out, n)
		}
	}
	return out
}

// Node returns the node with the given id.
func (c *Cluster) Node(id string) *Node {
	for _, n := range c.Nodes {
		if n.ID == id {
			return n
		}
	}
	c.t.Fatalf("no node %q", id)
	return nil
}

// Leader waits until one running node reports itself leader and every other
// running node agrees, and returns it.
func (c *Cluster) Leader(timeout time.Duration) *Node {
	c.t.Helper()
	var leader *Node
	waitFor(c.t, timeout, func() error {
		leader = nil
		running := c.Running()
		if err := c.checkReady(running); err != nil {
			return err
		}
		for _, n := range running {
			if n.isLeader() {
				leader = n
				return nil
			}
		}
		return errors.New("no running node reports state Leader")
	})
	return leader
}

// Followers returns the running nodes other than the current leader.
func (c *Cluster) Followers(timeout time.Duration) []*Node {
	c.t.Helper()
	leader := c.Leader(timeout)
	var out []*Node
	for _, n := range c.Running() {
		if n != leader {
			out = append(out, n)
		}
	}
	return out
}
