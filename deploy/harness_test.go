package deploy

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raftlookupd/raftlookupd/wire"
)

// Images the test builds and runs. The nsq tags are the compose file's
// defaults: raftlookupd replaces nsqlookupd 1.3.0 and go.mod pins that nsq.
const (
	nodeImage     = "raftlookupd:latest"
	nsqdImage     = "nsqd:1.3.0"
	nsqadminImage = "nsqadmin:1.3.0"
	probeImage    = "raftlookupd-probe:test"
)

// The cluster the compose file starts without profiles.
var nodes = []string{"node1", "node2", "node3"}

// Host port variables of the compose file; each gets a free port.
var portVars = []string{
	"NODE1_TCP_PORT", "NODE1_HTTP_PORT", "NODE2_TCP_PORT", "NODE2_HTTP_PORT",
	"NODE3_TCP_PORT", "NODE3_HTTP_PORT", "NODE4_TCP_PORT", "NODE4_HTTP_PORT",
	"NSQD_TCP_PORT", "NSQD_HTTP_PORT", "NSQADMIN_HTTP_PORT",
}

// project is one compose project: a unique name, its own free host ports and
// a random admin token, so concurrent runs and a developer's own cluster on
// the default ports do not clash.
type project struct {
	name    string
	file    string
	compose []string // "docker compose" or "docker-compose"
	token   string
	ports   map[string]int // compose variable → host port
	env     []string
	http    *http.Client
}

// newProject checks the tools, builds the images and registers the cleanup
// (logs on failure, then `down -v --remove-orphans`). Missing tools fail the
// test: this package exists to exercise them.
func newProject(t *testing.T) *project {
	t.Helper()
	for _, tool := range []string{"docker", "make", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: the compose test needs Docker, make and Go: %v", tool, err)
		}
	}
	if out, err := command(t, time.Minute, "", nil, "docker", "version", "--format", "{{.Server.Version}}"); err != nil {
		t.Fatalf("Docker engine unreachable: %v\n%s", err, out)
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	p := &project{
		name:  "rltest" + randomHex(t, 4),
		file:  filepath.Join(root, "deploy", "docker-compose.yml"),
		token: randomHex(t, 16),
		ports: make(map[string]int),
		http:  &http.Client{Timeout: 3 * time.Second},
	}
	p.compose = detectCompose(t)
	t.Logf("project %s, compose %q", p.name, strings.Join(p.compose, " "))

	start := time.Now()
	ctxDir := t.TempDir()
	if out, err := command(t, 10*time.Minute, root, nil, "make", "--no-print-directory",
		"IMAGE_CTX="+ctxDir, "image", "nsq-images"); err != nil {
		t.Fatalf("make image nsq-images: %v\n%s", err, out)
	}
	buildProbe(t, root)
	t.Logf("images built in %v", time.Since(start).Round(time.Millisecond))

	for _, v := range portVars {
		p.ports[v] = 0
	}
	for v, port := range freePorts(t, len(portVars)) {
		p.ports[portVars[v]] = port
	}
	p.env = composeEnv(p)
	t.Cleanup(func() { p.cleanup(t) })
	return p
}

// detectCompose prefers the compose plugin and falls back to docker-compose.
func detectCompose(t *testing.T) []string {
	t.Helper()
	if _, err := command(t, time.Minute, "", nil, "docker", "compose", "version"); err == nil {
		return []string{"docker", "compose"}
	}
	if _, err := exec.LookPath("docker-compose"); err == nil {
		return []string{"docker-compose"}
	}
	t.Fatal("neither `docker compose` nor `docker-compose` is available")
	return nil
}

// buildProbe builds testdata/probe into a FROM scratch image.
func buildProbe(t *testing.T, root string) {
	t.Helper()
	dir := t.TempDir()
	env := append(os.Environ(), "CGO_ENABLED=0")
	if out, err := command(t, 5*time.Minute, root, env, "go", "build", "-o", filepath.Join(dir, "probe"), "./deploy/testdata/probe"); err != nil {
		t.Fatalf("build probe: %v\n%s", err, out)
	}
	df := "FROM scratch\nCOPY probe /probe\nENTRYPOINT [\"/probe\"]\n"
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := command(t, 5*time.Minute, dir, nil, "docker", "build", "-q", "-t", probeImage, "."); err != nil {
		t.Fatalf("build probe image: %v\n%s", err, out)
	}
}

// composeEnv is the environment minus anything that would redirect compose
// (COMPOSE_FILE, COMPOSE_PROFILES, …) or change the cluster, plus this
// project's ports, images and token.
func composeEnv(p *project) []string {
	drop := func(kv string) bool {
		k, _, _ := strings.Cut(kv, "=")
		return strings.HasPrefix(k, "COMPOSE_") || strings.HasPrefix(k, "RAFTLOOKUPD_") ||
			strings.HasSuffix(k, "_PORT") || strings.HasSuffix(k, "_IMAGE")
	}
	env := slices.DeleteFunc(os.Environ(), drop)
	for v, port := range p.ports {
		env = append(env, fmt.Sprintf("%s=%d", v, port))
	}
	return append(env,
		"RAFTLOOKUPD_IMAGE="+nodeImage, "NSQD_IMAGE="+nsqdImage, "NSQADMIN_IMAGE="+nsqadminImage,
		"RAFTLOOKUPD_ADMIN_TOKEN="+p.token)
}

// run runs compose with the given profiles and fails the test on error.
func (p *project) run(t *testing.T, profiles []string, args ...string) string {
	t.Helper()
	out, err := p.tryRun(t, profiles, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", strings.Join(p.compose, " "), strings.Join(args, " "), err, out)
	}
	return out
}

func (p *project) tryRun(t *testing.T, profiles []string, args ...string) (string, error) {
	t.Helper()
	full := append(slices.Clone(p.compose[1:]), "-f", p.file, "-p", p.name)
	for _, pr := range profiles {
		full = append(full, "--profile", pr)
	}
	full = append(full, args...)
	return command(t, 3*time.Minute, "", p.env, p.compose[0], full...)
}

// container returns the id of service's container, running or not.
func (p *project) container(t *testing.T, profiles []string, service string) string {
	t.Helper()
	id := strings.TrimSpace(p.run(t, profiles, "ps", "-a", "-q", service))
	if id == "" || strings.Contains(id, "\n") {
		t.Fatalf("container of %s: got %q", service, id)
	}
	return id
}

// cleanup prints the logs when the test failed, then removes everything the
// project created, volumes included.
func (p *project) cleanup(t *testing.T) {
	all := []string{"nsq", "join"}
	if t.Failed() {
		ps, _ := p.tryRun(t, all, "ps", "-a")
		logs, _ := p.tryRun(t, all, "logs", "--no-color", "--tail=400")
		t.Logf("compose ps:\n%s\ncompose logs:\n%s", ps, logs)
	}
	if out, err := p.tryRun(t, all, "down", "-v", "--remove-orphans", "-t", "5"); err != nil {
		t.Errorf("down -v: %v\n%s", err, out)
	}
}

// waitHealthy waits until Docker reports every service's health check
// (raftlookupctl health) as healthy.
func (p *project) waitHealthy(t *testing.T, timeout time.Duration, profiles []string, services ...string) {
	t.Helper()
	ids := make([]string, len(services))
	for i, s := range services {
		ids[i] = p.container(t, profiles, s)
	}
	args := append([]string{"inspect", "-f", "{{.State.Status}}/{{if .State.Health}}{{.State.Health.Status}}{{end}}"}, ids...)
	waitFor(t, timeout, fmt.Sprintf("%v healthy", services), func() error {
		out, err := command(t, time.Minute, "", nil, "docker", args...)
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		states := strings.Fields(out)
		for i, st := range states {
			if st != "running/healthy" {
				return fmt.Errorf("%s is %s", services[i], st)
			}
		}
		return nil
	})
}

func (p *project) hostPort(service, kind string) int {
	return p.ports[strings.ToUpper(service)+"_"+kind+"_PORT"]
}

// url is a URL of service's HTTP port published on the host.
func (p *project) url(service, path string) string {
	return fmt.Sprintf("http://127.0.0.1:%d%s", p.hostPort(service, "HTTP"), path)
}

// do sends one request (with the admin token on /cluster/*) and returns the
// status and body.
func (p *project) do(method, url, body string) (int, []byte, error) {
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	if strings.Contains(url, "/cluster/") {
		req.Header.Set("Authorization", "Bearer "+p.token)
	}
	resp, err := p.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// mustDo fails the test unless the request answers 200.
func (p *project) mustDo(t *testing.T, method, url, body string) []byte {
	t.Helper()
	code, b, err := p.do(method, url, body)
	if err != nil || code != http.StatusOK {
		t.Fatalf("%s %s: %d %s %v", method, url, code, b, err)
	}
	return b
}

// clusterStatus is GET /cluster/status, in the wire vocabulary.
type clusterStatus = wire.Status

func (p *project) status(service string) (clusterStatus, error) {
	var st clusterStatus
	code, b, err := p.do(http.MethodGet, p.url(service, "/cluster/status"), "")
	if err != nil {
		return st, err
	}
	if code != http.StatusOK {
		return st, fmt.Errorf("%s /cluster/status: %d %s", service, code, b)
	}
	return st, json.Unmarshal(b, &st)
}

// agreedLeader returns the leader every given node reports, or an error
// when one has none or they disagree.
func (p *project) agreedLeader(services ...string) (string, error) {
	leader := ""
	for _, s := range services {
		st, err := p.status(s)
		if err != nil {
			return "", err
		}
		if st.LeaderID == "" || (leader != "" && st.LeaderID != leader) {
			return "", fmt.Errorf("%s reports leader %q, others %q", s, st.LeaderID, leader)
		}
		leader = st.LeaderID
	}
	return leader, nil
}

// topics returns the topic list of a bounded read of /topics on service.
func (p *project) topics(service string) ([]string, error) {
	code, b, err := p.do(http.MethodGet, p.url(service, "/topics"), "")
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("%s /topics: %d %s", service, code, b)
	}
	var v struct{ Topics []string }
	return v.Topics, json.Unmarshal(b, &v)
}

// probeResult is testdata/probe's output.
type probeResult struct {
	Matched   bool   `json:"matched"`
	Status    int    `json:"status"`
	Body      string `json:"body"`
	Error     string `json:"error"`
	Attempts  int    `json:"attempts"`
	MatchedAt int64  `json:"matched_at_unix_nano"`
}

// probe runs testdata/probe attached to network: "container:ID" to share a
// node's network namespace (it reaches the node on 127.0.0.1 even when the
// node is cut off its network), or a network's name.
func probe(t *testing.T, network string, args ...string) probeResult {
	t.Helper()
	full := append([]string{"run", "--rm", "--network", network, probeImage}, args...)
	out, err := command(t, 2*time.Minute, "", nil, "docker", full...)
	var r probeResult
	if jerr := json.Unmarshal([]byte(lastLine(out)), &r); jerr != nil {
		t.Fatalf("probe %v: %v %v\n%s", args, err, jerr, out)
	}
	if !r.Matched {
		t.Fatalf("probe %v: no match after %d attempts: last %d %q %s", args, r.Attempts, r.Status, r.Body, r.Error)
	}
	return r
}

// network returns the one network container id is attached to and its
// aliases there.
func network(t *testing.T, id string) (string, []string) {
	t.Helper()
	out, err := command(t, time.Minute, "", nil, "docker", "inspect", "-f", "{{json .NetworkSettings.Networks}}", id)
	if err != nil {
		t.Fatalf("inspect %s: %v %s", id, err, out)
	}
	var networks map[string]struct{ Aliases []string }
	if err := json.Unmarshal([]byte(out), &networks); err != nil || len(networks) != 1 {
		t.Fatalf("networks of %s: %s %v", id, out, err)
	}
	for name, n := range networks {
		return name, n.Aliases
	}
	panic("unreachable")
}

// The compose file's nsqd, as every node must list it: its broadcast address
// and TCP port inside the compose network.
const (
	nsqdBroadcast = "nsqd"
	nsqdTCPPort   = 4150
)

// listsNSQD checks that a /lookup answer lists exactly one producer, the
// compose file's nsqd. A 200 with no producers is a failure: it is what a
// node answers when it lost nsqd's registrations.
func listsNSQD(body []byte) error {
	var v struct {
		Producers []struct {
			BroadcastAddress string `json:"broadcast_address"`
			TCPPort          int    `json:"tcp_port"`
		} `json:"producers"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		return fmt.Errorf("decode /lookup: %v", err)
	}
	if len(v.Producers) != 1 || v.Producers[0].BroadcastAddress != nsqdBroadcast || v.Producers[0].TCPPort != nsqdTCPPort {
		return fmt.Errorf("producers are not exactly %s:%d", nsqdBroadcast, nsqdTCPPort)
	}
	return nil
}

// lookupNSQD checks that service answers /lookup?topic= with nsqd listed.
func (p *project) lookupNSQD(service, topic string) error {
	code, b, err := p.do(http.MethodGet, p.url(service, "/lookup?topic="+topic), "")
	if err != nil || code != http.StatusOK {
		return fmt.Errorf("%s: %d %s %v", service, code, bytes.TrimSpace(b), err)
	}
	if err := listsNSQD(b); err != nil {
		return fmt.Errorf("%s: %v: %s", service, err, bytes.TrimSpace(b))
	}
	return nil
}

// metric returns an unlabelled sample of service's GET /metrics.
func (p *project) metric(service, name string) (float64, error) {
	code, b, err := p.do(http.MethodGet, p.url(service, "/metrics"), "")
	if err != nil || code != http.StatusOK {
		return 0, fmt.Errorf("%s /metrics: %d %v", service, code, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == name {
			return strconv.ParseFloat(f[1], 64)
		}
	}
	return 0, fmt.Errorf("%s /metrics has no sample %s", service, name)
}

// lookupWatch polls GET /lookup on some nodes until stopped and records
// every answer that is not a 200 listing nsqd.
type lookupWatch struct {
	stop     chan struct{}
	wg       sync.WaitGroup
	mu       sync.Mutex
	ok       map[string]int
	failures []string
}

func (p *project) watchLookups(topic string, services ...string) *lookupWatch {
	w := &lookupWatch{stop: make(chan struct{}), ok: make(map[string]int)}
	for _, s := range services {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			url := p.url(s, "/lookup?topic="+topic)
			tick := time.NewTicker(50 * time.Millisecond)
			defer tick.Stop()
			for {
				code, b, err := p.do(http.MethodGet, url, "")
				if err == nil && code == http.StatusOK {
					err = listsNSQD(b)
				}
				w.mu.Lock()
				if err == nil && code == http.StatusOK {
					w.ok[s]++
				} else {
					w.failures = append(w.failures, fmt.Sprintf("%s %s: %d %s %v",
						time.Now().Format("15:04:05.000"), s, code, bytes.TrimSpace(b), err))
				}
				w.mu.Unlock()
				select {
				case <-w.stop:
					return
				case <-tick.C:
				}
			}
		}()
	}
	return w
}

// finish stops the pollers and fails the test on any failed lookup.
func (w *lookupWatch) finish(t *testing.T) {
	t.Helper()
	close(w.stop)
	w.wg.Wait()
	t.Logf("lookups answered 200 listing nsqd: %v; failures: %d", w.ok, len(w.failures))
	for _, f := range w.failures {
		t.Errorf("lookup failed: %s", f)
	}
}

// waitFor polls cond until it returns nil, failing the test with the last
// error at the deadline.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s: %v", timeout, what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// command runs name with args and returns its combined output.
func command(t *testing.T, timeout time.Duration, dir string, env []string, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir, cmd.Env = dir, env
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		err = errors.Join(err, ctx.Err())
	}
	return string(out), err
}

// freePorts returns n distinct ports that were free on every interface.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", ":0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

func randomHex(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
