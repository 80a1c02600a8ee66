package e2e

// Helpers of the high-availability tests (ha_test.go): addresses of a
// cluster, reads at a given consistency, /metrics gauges, a go-nsq consumer,
// a raw protocol V1 producer, and a poller that reads from several nodes
// continuously while a test kills, stops or restarts others.

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nsqio/go-nsq"
)

// haLeaderUnreachable is the message of a read a node refuses because it
// cannot vouch for its state (docs/COMPATIBILITY.md#diff-consistency).
const haLeaderUnreachable = "LEADER_UNREACHABLE"

func haTCPAddrs(nodes []*Node) []string {
	var out []string
	for _, n := range nodes {
		out = append(out, n.TCPAddr())
	}
	return out
}

func haHTTPAddrs(nodes []*Node) []string {
	var out []string
	for _, n := range nodes {
		out = append(out, n.HTTPAddr())
	}
	return out
}

func haOthers(all []*Node, except ...*Node) []*Node {
	var out []*Node
	for _, n := range all {
		if !slices.Contains(except, n) {
			out = append(out, n)
		}
	}
	return out
}

func haMillis(d time.Duration) int64 { return d.Milliseconds() }

// haGet GETs http://addr+pathq whatever its status.
func haGet(addr, pathq string) (*httpResult, error) {
	return httpDo("GET", "http://"+addr+pathq, nil, nil)
}

// haRefused reports whether res is the 503 LEADER_UNREACHABLE refusal.
func haRefused(res *httpResult) bool {
	if res == nil || res.Status != http.StatusServiceUnavailable {
		return false
	}
	var body struct {
		Message string `json:"message"`
	}
	return json.Unmarshal(res.Body, &body) == nil && body.Message == haLeaderUnreachable
}

// haWithConsistency appends ?consistency= (or &consistency=) to pathq; ""
// leaves the node's default (bounded).
func haWithConsistency(pathq, level string) string {
	if level == "" {
		return pathq
	}
	sep := "?"
	if strings.Contains(pathq, "?") {
		sep = "&"
	}
	return pathq + sep + "consistency=" + level
}

// haIdentity is the producer identity of a listing (what raftlookupd
// deduplicates by).
type haIdentity struct {
	Broadcast string
	TCPPort   int
	HTTPPort  int
}

func (id haIdentity) String() string {
	return fmt.Sprintf("%s:%d/%d", id.Broadcast, id.TCPPort, id.HTTPPort)
}

func haNSQDIdentity(d *NSQD) haIdentity {
	tcp, http := d.Ports()
	return haIdentity{"127.0.0.1", tcp, http}
}

// haListedOnce checks, at the given consistency, that a node's
// /lookup?topic= lists exactly the producer id, and (with nodes) that /nodes
// lists it exactly once, with the topic, among producers.
func haListedOnce(addr string, id haIdentity, topic, level string, nodes bool) error {
	var doc lookupDoc
	if err := getJSON(addr, haWithConsistency("/lookup?topic="+topic, level), &doc); err != nil {
		return err
	}
	if len(doc.Producers) != 1 {
		return fmt.Errorf("%s /lookup?topic=%s lists %d producers, want %s once: %+v", addr, topic, len(doc.Producers), id, doc.Producers)
	}
	if p := doc.Producers[0]; (haIdentity{p.BroadcastAddress, p.TCPPort, p.HTTPPort}) != id {
		return fmt.Errorf("%s /lookup?topic=%s lists %+v, want %s", addr, topic, p, id)
	}
	if !nodes {
		return nil
	}
	var nd nodesDoc
	if err := getJSON(addr, haWithConsistency("/nodes", level), &nd); err != nil {
		return err
	}
	found := 0
	for _, p := range nd.Producers {
		if (haIdentity{p.BroadcastAddress, p.TCPPort, p.HTTPPort}) != id {
			continue
		}
		found++
		if !slices.Contains(p.Topics, topic) {
			return fmt.Errorf("%s /nodes lists %s with topics %v, lacking %s", addr, id, p.Topics, topic)
		}
	}
	if found != 1 {
		return fmt.Errorf("%s /nodes lists %s %d times, want once: %+v", addr, id, found, nd.Producers)
	}
	return nil
}

// haMetric returns the value of an unlabelled sample from GET /metrics.
func haMetric(addr, name string) (float64, error) {
	res, err := haGet(addr, "/metrics")
	if err != nil {
		return 0, err
	}
	if res.Status != http.StatusOK {
		return 0, fmt.Errorf("%s /metrics: status %d", addr, res.Status)
	}
	for _, line := range strings.Split(string(res.Body), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == name {
			return strconv.ParseFloat(f[1], 64)
		}
	}
	return 0, fmt.Errorf("%s /metrics has no sample %s", addr, name)
}

// haSessions checks the replicated session count on every node and, when
// owned >= 0, the sessions each node owns: an nsqd registered with all three
// nodes has one session on each.
func haSessions(nodes []*Node, total, owned int) func() error {
	return func() error {
		for _, n := range nodes {
			v, err := haMetric(n.HTTPAddr(), "raftlookupd_registry_sessions")
			if err != nil {
				return err
			}
			if int(v) != total {
				return fmt.Errorf("%s: raftlookupd_registry_sessions = %v, want %d", n, v, total)
			}
			if owned < 0 {
				continue
			}
			v, err = haMetric(n.HTTPAddr(), "raftlookupd_owned_sessions")
			if err != nil {
				return err
			}
			if int(v) != owned {
				return fmt.Errorf("%s: raftlookupd_owned_sessions = %v, want %d", n, v, owned)
			}
		}
		return nil
	}
}

// haConsume starts a go-nsq v1.1.0 consumer that discovers producers through
// every given lookupd HTTP address and returns the bodies it receives. The
// consumer stops at cleanup.
func haConsume(t *testing.T, topic, channel string, lookupds []string) <-chan string {
	t.Helper()
	cfg := nsq.NewConfig()
	cfg.LookupdPollInterval = 200 * time.Millisecond
	consumer, err := nsq.NewConsumer(topic, channel, cfg)
	if err != nil {
		t.Fatal(err)
	}
	consumer.SetLogger(log.New(io.Discard, "", 0), nsq.LogLevelError)
	got := make(chan string, 16)
	consumer.AddHandler(nsq.HandlerFunc(func(m *nsq.Message) error {
		select {
		case got <- string(m.Body):
		default:
		}
		return nil
	}))
	t.Cleanup(func() {
		consumer.Stop()
		select {
		case <-consumer.StopChan:
		case <-time.After(10 * time.Second):
			t.Errorf("go-nsq consumer did not stop within 10s")
		}
	})
	if err := consumer.ConnectToNSQLookupds(lookupds); err != nil {
		t.Fatal(err)
	}
	return got
}

// ---------------------------------------------------------------------------
// raw protocol V1 producer

// haRawProducer is an nsqd impostor on one raw TCP connection: IDENTIFY and
// REGISTER, then nothing (it never reconnects, unlike nsqd).
type haRawProducer struct {
	ID   haIdentity
	conn net.Conn
}

// haDialProducer connects to a node's TCP address and identifies as id. The
// connection closes at cleanup.
func haDialProducer(t *testing.T, tcpAddr string, id haIdentity) *haRawProducer {
	t.Helper()
	p, err := haTryDialProducer(t, tcpAddr, id)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// haTryDialProducer connects and identifies, as nsqd does on every
// (re)connect; an error when the node refuses.
func haTryDialProducer(t *testing.T, tcpAddr string, id haIdentity) (*haRawProducer, error) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", tcpAddr, 3*time.Second)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %v", tcpAddr, err)
	}
	t.Cleanup(func() { conn.Close() })
	p := &haRawProducer{ID: id, conn: conn}
	body := fmt.Sprintf(`{"broadcast_address":%q,"hostname":%q,"http_port":%d,"tcp_port":%d,"version":"1.3.0"}`,
		id.Broadcast, id.Broadcast, id.HTTPPort, id.TCPPort)
	var size [4]byte
	binary.BigEndian.PutUint32(size[:], uint32(len(body)))
	reply, _, err := p.roundTrip("  V1IDENTIFY\n" + string(size[:]) + body)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("IDENTIFY on %s: %v", tcpAddr, err)
	}
	if !bytes.HasPrefix(reply, []byte("{")) {
		conn.Close()
		return nil, fmt.Errorf("IDENTIFY on %s answered %q", tcpAddr, reply)
	}
	return p, nil
}

// Register sends REGISTER and returns how long the answer took: nsqd gives
// every reply a 1 s deadline and drops the connection after it.
func (p *haRawProducer) Register(t *testing.T, topic, channel string) time.Duration {
	t.Helper()
	line := "REGISTER " + topic
	if channel != "" {
		line += " " + channel
	}
	reply, took, err := p.roundTrip(line + "\n")
	if err != nil {
		t.Fatalf("%s: %s: %v (after %v)", p.ID, line, err, took)
	}
	if string(reply) != "OK" {
		t.Fatalf("%s: %s answered %q", p.ID, line, reply)
	}
	return took
}

func (p *haRawProducer) roundTrip(data string) ([]byte, time.Duration, error) {
	start := time.Now()
	p.conn.SetDeadline(start.Add(5 * time.Second))
	if _, err := io.WriteString(p.conn, data); err != nil {
		return nil, time.Since(start), err
	}
	var size [4]byte
	if _, err := io.ReadFull(p.conn, size[:]); err != nil {
		return nil, time.Since(start), err
	}
	n := binary.BigEndian.Uint32(size[:])
	if n > 1<<20 {
		return nil, time.Since(start), fmt.Errorf("frame size %d", n)
	}
	buf := make([]byte, n)
	_, err := io.ReadFull(p.conn, buf)
	return buf, time.Since(start), err
}

// ---------------------------------------------------------------------------
// continuous polling

// haGate says whether a node is polled. The poller holds the read lock for
// the whole request, so a test that closes the gate (before SIGTERM) knows
// no request to that node is still in flight.
type haGate struct {
	mu sync.RWMutex
	up bool
}

func (g *haGate) set(up bool) {
	g.mu.Lock()
	g.up = up
	g.mu.Unlock()
}

// haPoller runs check against each node in a loop of its own, from start
// until stop, and records every failure: the tests allow none.
type haPoller struct {
	stopCh chan struct{}
	wg     sync.WaitGroup

	mu       sync.Mutex
	started  time.Time
	ok       map[string][]time.Time // start time of each passed check
	failures []string
	slowest  time.Duration
}

// haPoll starts polling. gates may be nil (every node always polled).
func haPoll(nodes []*Node, gates map[*Node]*haGate, check func(n *Node) error) *haPoller {
	p := &haPoller{stopCh: make(chan struct{}), started: time.Now(), ok: map[string][]time.Time{}}
	for _, n := range nodes {
		g := gates[n]
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			for {
				select {
				case <-p.stopCh:
					return
				default:
				}
				if g != nil {
					g.mu.RLock()
					if !g.up {
						g.mu.RUnlock()
						time.Sleep(pollInterval)
						continue
					}
				}
				start := time.Now()
				err := check(n)
				took := time.Since(start)
				if g != nil {
					g.mu.RUnlock()
				}
				p.mu.Lock()
				p.slowest = max(p.slowest, took)
				if err != nil {
					p.failures = append(p.failures, fmt.Sprintf("+%dms %s: %v", haMillis(start.Sub(p.started)), n.ID, err))
				} else {
					p.ok[n.ID] = append(p.ok[n.ID], start)
				}
				p.mu.Unlock()
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	return p
}

// Stop ends polling and waits for requests in flight.
func (p *haPoller) Stop() {
	select {
	case <-p.stopCh:
	default:
		close(p.stopCh)
	}
	p.wg.Wait()
}

// Err returns the failures so far, nil if none.
func (p *haPoller) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.failures) == 0 {
		return nil
	}
	const show = 20
	f := p.failures
	more := ""
	if len(f) > show {
		more = fmt.Sprintf("\n  ... and %d more", len(f)-show)
		f = f[:show]
	}
	return fmt.Errorf("%d failed reads:\n  %s%s", len(p.failures), strings.Join(f, "\n  "), more)
}

// Passed returns how many checks of a node passed that started in [from, to).
func (p *haPoller) Passed(id string, from, to time.Time) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := 0
	for _, s := range p.ok[id] {
		if !s.Before(from) && s.Before(to) {
			c++
		}
	}
	return c
}

// Summary describes the polling for the log.
func (p *haPoller) Summary() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var parts []string
	ids := make([]string, 0, len(p.ok))
	for id := range p.ok {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		parts = append(parts, fmt.Sprintf("%s %d", id, len(p.ok[id])))
	}
	return fmt.Sprintf("passed checks per node: %s; failures %d; slowest check %dms",
		strings.Join(parts, ", "), len(p.failures), haMillis(p.slowest))
}

// haTimedResult is one read and when it was sent and answered.
type haTimedResult struct {
	start, end time.Time
	res        *httpResult
	err        error
}

func (r haTimedResult) String() string {
	if r.err != nil {
		return fmt.Sprintf("error %v", r.err)
	}
	return fmt.Sprintf("%d %s", r.res.Status, bytes.TrimSpace(r.res.Body))
}

// haProbe sends the same read from several workers back to back until
// stopped, keeping every answer (for reads that take seconds to be refused,
// such as linearizable ones without a quorum).
type haProbe struct {
	stopCh  chan struct{}
	wg      sync.WaitGroup
	mu      sync.Mutex
	results []haTimedResult
}

func haStartProbe(addr, pathq string, workers int) *haProbe {
	p := &haProbe{stopCh: make(chan struct{})}
	for range workers {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			for {
				select {
				case <-p.stopCh:
					return
				default:
				}
				start := time.Now()
				res, err := haGet(addr, pathq)
				p.mu.Lock()
				p.results = append(p.results, haTimedResult{start, time.Now(), res, err})
				p.mu.Unlock()
				time.Sleep(pollInterval)
			}
		}()
	}
	return p
}

func (p *haProbe) Stop() {
	close(p.stopCh)
	p.wg.Wait()
}

// answeredBefore returns the reads answered before t.
func (p *haProbe) answeredBefore(t time.Time) []haTimedResult {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []haTimedResult
	for _, r := range p.results {
		if r.end.Before(t) {
			out = append(out, r)
		}
	}
	return out
}

// refusedBefore counts the 503 LEADER_UNREACHABLE answers before t.
func (p *haProbe) refusedBefore(t time.Time) int {
	c := 0
	for _, r := range p.answeredBefore(t) {
		if r.err == nil && haRefused(r.res) {
			c++
		}
	}
	return c
}

// haLeaderOf returns the leader every given node names in /cluster/status,
// once they agree on one that reports itself leader.
func haLeaderOf(nodes []*Node) (string, error) {
	leader := ""
	for _, n := range nodes {
		st, err := n.Status()
		if err != nil {
			return "", err
		}
		if st.LeaderID == "" {
			return "", fmt.Errorf("%s knows no leader", n)
		}
		if leader != "" && st.LeaderID != leader {
			return "", fmt.Errorf("nodes disagree on the leader: %s vs %s", leader, st.LeaderID)
		}
		leader = st.LeaderID
		if st.NodeID == leader && !strings.EqualFold(st.State, "leader") {
			return "", fmt.Errorf("%s is named leader but is %s", n, st.State)
		}
	}
	if leader == "" {
		return "", errors.New("no nodes")
	}
	return leader, nil
}

// haListsExactly checks that a node's /lookup?topic= (its default
// consistency) lists exactly the given producers, once each.
func haListsExactly(addr, topic string, ids ...haIdentity) error {
	var doc lookupDoc
	if err := getJSON(addr, "/lookup?topic="+topic, &doc); err != nil {
		return err
	}
	var got []string
	for _, p := range doc.Producers {
		got = append(got, haIdentity{p.BroadcastAddress, p.TCPPort, p.HTTPPort}.String())
	}
	var want []string
	for _, id := range ids {
		want = append(want, id.String())
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		return fmt.Errorf("%s /lookup?topic=%s lists %v, want %v", addr, topic, got, want)
	}
	return nil
}
