package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Timeouts of the harness. Every wait has a deadline; nothing sleeps for a
// fixed time to "let things settle".
const (
	clusterReadyTimeout = 30 * time.Second
	processExitTimeout  = 15 * time.Second
	pollInterval        = 20 * time.Millisecond
	maxStartAttempts    = 3
	logTailBytes        = 32 << 10
)

// ---------------------------------------------------------------------------
// ports

// freePorts returns n distinct ports that were free on 127.0.0.1 a moment
// ago. All listeners are held until every port is chosen so the n ports are
// distinct; a start that still loses a port race is retried by the callers.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	ls := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	ports := make([]int, 0, n)
	handedOut.Lock()
	defer handedOut.Unlock()
	for len(ports) < n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("free port: %v", err)
		}
		ls = append(ls, l) // held until the end, so the kernel offers another
		port := l.Addr().(*net.TCPAddr).Port
		if handedOut.ports[port] {
			continue
		}
		handedOut.ports[port] = true
		ports = append(ports, port)
	}
	return ports
}

// handedOut are the ports freePorts gave out in this test process. None is
// given twice: a node of one test still lists a port in its -peers after
// the node that had it stopped, and on loopback (which the Raft port
// admits) it would reach a node of another test that got the same port,
// and make it a follower of the wrong cluster.
var handedOut = struct {
	sync.Mutex
	ports map[int]bool
}{ports: map[int]bool{}}

func hostPort(port int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) }

// portOf returns the port of a host:port address, or 0.
func portOf(addr string) int {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(p)
	return n
}

// ---------------------------------------------------------------------------
// processes

// process is one started child process.
type process struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error // valid once done is closed
}

// startProcess starts bin with args, appending its stdout and stderr to
// logPath (which survives restarts, one header line per start).
func startProcess(bin string, args []string, logPath string) (*process, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(f, "==== %s start: %s %s\n", time.Now().Format(time.RFC3339Nano), filepath.Base(bin), strings.Join(args, " "))
	cmd := exec.Command(bin, args...)
	cmd.Stdout = f
	cmd.Stderr = f
	cmd.Env = childEnv()
	setChildAttrs(cmd)
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, err
	}
	f.Close() // the child has its own descriptor
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// childEnv is the test's environment without settings that would change
// what the daemon under test does (an admin token from the developer's shell
// would turn every admin request into a 401).
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "RAFTLOOKUPD_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *process) signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// waitExit waits up to d for the process to exit.
func (p *process) waitExit(d time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(d):
		return false
	}
}

// kill sends SIGKILL (which also ends a SIGSTOPped process) and waits.
func (p *process) kill() error {
	if p.exited() {
		return nil
	}
	_ = p.signal(syscall.SIGKILL)
	if !p.waitExit(processExitTimeout) {
		return fmt.Errorf("pid %d did not exit after SIGKILL", p.cmd.Process.Pid)
	}
	return nil
}

// logTail returns the end of a log file, or all of it with E2E_FULL_LOGS=1.
// (A failed test also keeps the whole file, see keepLog.)
func logTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	if os.Getenv("E2E_FULL_LOGS") != "1" && len(b) > logTailBytes {
		return fmt.Sprintf("(... %d bytes cut, E2E_FULL_LOGS=1 shows all)\n%s", len(b)-logTailBytes, b[len(b)-logTailBytes:])
	}
	return string(b)
}

// keepLog copies a failed test's log out of its temp dir (which the testing
// package removes) and returns the copy's path.
func keepLog(t testing.TB, path string) string {
	name := strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())
	dir := filepath.Join(os.TempDir(), "raftlookupd-e2e-logs", name)
	b, err := os.ReadFile(path)
	if err == nil {
		err = os.MkdirAll(dir, 0o755)
	}
	dst := filepath.Join(dir, filepath.Base(path))
	if err == nil {
		err = os.WriteFile(dst, b, 0o644)
	}
	if err != nil {
		return fmt.Sprintf("(not kept: %v)", err)
	}
	return dst
}

// dumpLog prints the end of a log and keeps a full copy.
func dumpLog(t testing.TB, what, path string) {
	t.Logf("---- log of %s (full log kept at %s) ----\n%s\n---- end of log of %s ----", what, keepLog(t, path), logTail(path), what)
}

func logShowsBindFailure(path string) bool {
	b, _ := os.ReadFile(path)
	return bytes.Contains(b, []byte("address already in use"))
}

// ---------------------------------------------------------------------------
// waiting

// eventually polls fn until it returns nil or timeout passes; it returns the
// last error.
func eventually(timeout time.Duration, fn func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := fn()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(pollInterval)
	}
}

// waitFor polls fn until it returns nil; after timeout the test fails with
// fn's last error.
func waitFor(t testing.TB, timeout time.Duration, fn func() error) {
	t.Helper()
	if err := eventually(timeout, fn); err != nil {
		t.Fatalf("condition not met within %v: %v", timeout, err)
	}
}

// holdsFor checks that fn keeps returning nil for the whole duration d
// (polling), for "must not come back" assertions.
func holdsFor(d time.Duration, fn func() error) error {
	deadline := time.Now().Add(d)
	for {
		if err := fn(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return nil
		}
		time.Sleep(pollInterval)
	}
}

// ---------------------------------------------------------------------------
// HTTP

// httpClient never follows redirects (301s are answers under test) and never
// reuses connections (a restarted server would reset idle ones).
var httpClient = &http.Client{
	Timeout:       5 * time.Second,
	Transport:     &http.Transport{DisableKeepAlives: true},
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

type httpResult struct {
	Status int
	Header http.Header
	Body   []byte
}

// httpDo sends one request. url must be absolute; its query is sent exactly
// as written.
func httpDo(method, url string, body []byte, header http.Header) (*httpResult, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return nil, err
	}
	for k, vs := range header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return &httpResult{Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

// getJSON GETs http://addr+pathq and decodes a 200 JSON body into v; any
// other status is an error.
func getJSON(addr, pathq string, v any) error {
	res, err := httpDo("GET", "http://"+addr+pathq, nil, nil)
	if err != nil {
		return err
	}
	if res.Status != http.StatusOK {
		return fmt.Errorf("GET %s%s: status %d: %s", addr, pathq, res.Status, res.Body)
	}
	if err := json.Unmarshal(res.Body, v); err != nil {
		return fmt.Errorf("GET %s%s: %w: %s", addr, pathq, err, res.Body)
	}
	return nil
}

// mustPost POSTs to http://addr+pathq and fails the test unless it gets 200.
func mustPost(t testing.TB, addr, pathq string, body []byte) []byte {
	t.Helper()
	res, err := httpDo("POST", "http://"+addr+pathq, body, nil)
	if err != nil {
		t.Fatalf("POST %s%s: %v", addr, pathq, err)
	}
	if res.Status != http.StatusOK {
		t.Fatalf("POST %s%s: status %d: %s", addr, pathq, res.Status, res.Body)
	}
	return res.Body
}

// lookupDoc is the body of GET /lookup.
type lookupDoc struct {
	Channels  []string   `json:"channels"`
	Producers []peerInfo `json:"producers"`
}

// nodesDoc is the body of GET /nodes.
type nodesDoc struct {
	Producers []nodeInfo `json:"producers"`
}

type peerInfo struct {
	RemoteAddress    string `json:"remote_address"`
	Hostname         string `json:"hostname"`
	BroadcastAddress string `json:"broadcast_address"`
	TCPPort          int    `json:"tcp_port"`
	HTTPPort         int    `json:"http_port"`
	Version          string `json:"version"`
}

type nodeInfo struct {
	peerInfo
	Tombstones []bool   `json:"tombstones"`
	Topics     []string `json:"topics"`
}

type topicsDoc struct {
	Topics []string `json:"topics"`
}

type channelsDoc struct {
	Channels []string `json:"channels"`
}
