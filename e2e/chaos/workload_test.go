package chaos

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The HTTP model's names and the TCP sessions' names never overlap, so the
// model sees no producers and the sessions' topics never enter it.
const (
	modelTopics   = 3
	modelChannels = 2
	httpPrefix    = "h-"
	tcpPrefix     = "s-"
	tcpTopics     = 4
)

func modelTopic(i int) string   { return httpPrefix + strconv.Itoa(i) }
func modelChannel(i int) string { return "c-" + strconv.Itoa(i) }

type opKind uint8

const (
	opTopicCreate opKind = iota
	opTopicDelete
	opChannelCreate
	opChannelDelete
	opLookup
	opTopics
	opChannels
	opBoundedTopics
	opBoundedChannels
)

var opNames = [...]string{"topic/create", "topic/delete", "channel/create", "channel/delete",
	"lookup", "topics", "channels", "bounded topics", "bounded channels"}

func (k opKind) String() string               { return opNames[k] }
func (k opKind) isWrite() bool                { return k <= opChannelDelete }
func (k opKind) isBounded() bool              { return k == opBoundedTopics || k == opBoundedChannels }
func (k opKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

func (k *opKind) UnmarshalText(b []byte) error {
	for i, n := range opNames {
		if n == string(b) {
			*k = opKind(i)
			return nil
		}
	}
	return fmt.Errorf("unknown operation %q", b)
}

// op is one HTTP operation of the history. Times are nanoseconds since the
// run's time zero.
type op struct {
	Client  int    `json:"client"`
	Kind    opKind `json:"op"`
	Topic   int    `json:"topic"`
	Channel int    `json:"channel"`
	Node    int    `json:"node"`
	Call    int64  `json:"call"`
	Return  int64  `json:"return"`
	Status  int    `json:"status"`
	Err     string `json:"err,omitempty"`
	// Found: the topic exists (lookup) or the channel was deleted (200, not
	// 404). Mask: the topics (topics) or the topic's channels (lookup,
	// channels) as bits.
	Found bool   `json:"found"`
	Mask  uint32 `json:"mask"`
	// Ambiguous: a write whose outcome is unknown (timeout, 503, broken
	// connection): it may or may not have happened.
	Ambiguous bool `json:"ambiguous"`
}

func (o op) String() string {
	s := fmt.Sprintf("c%d n%d [%.3f,%.3f] %s", o.Client, o.Node, float64(o.Call)/1e9, float64(o.Return)/1e9, o.Kind)
	switch o.Kind {
	case opTopicCreate, opTopicDelete, opLookup, opChannels, opBoundedChannels:
		s += " " + modelTopic(o.Topic)
	case opChannelCreate, opChannelDelete:
		s += " " + modelTopic(o.Topic) + "/" + modelChannel(o.Channel)
	}
	switch {
	case o.Ambiguous:
		s += " -> ? (" + o.Err + ")"
	case o.Kind.isWrite():
		s += " -> " + strconv.Itoa(o.Status)
	default:
		s += fmt.Sprintf(" -> found=%v mask=%b", o.Found, o.Mask)
	}
	return s
}

// workload runs the HTTP clients and TCP sessions of one run.
type workload struct {
	nw    *network
	nodes int
	zero  time.Time
	tm    timing
	http  *client

	mu        sync.Mutex
	ops       []op
	anomalies []string
	sessions  []*session
	nextSess  int
}

func (w *workload) now() int64 { return int64(time.Since(w.zero)) }

func (w *workload) record(o op) {
	w.mu.Lock()
	w.ops = append(w.ops, o)
	w.mu.Unlock()
}

func (w *workload) anomaly(format string, args ...any) {
	w.mu.Lock()
	w.anomalies = append(w.anomalies, fmt.Sprintf(format, args...))
	w.mu.Unlock()
}

// httpClient issues random operations until ctx ends.
func (w *workload) httpClient(ctx context.Context, id int, rng *rand.Rand) {
	for ctx.Err() == nil {
		var o op
		o.Client = id
		r := rng.IntN(100)
		switch {
		case r < 12:
			o.Kind = opTopicCreate
		case r < 22:
			o.Kind = opTopicDelete
		case r < 37:
			o.Kind = opChannelCreate
		case r < 50:
			o.Kind = opChannelDelete
		case r < 62:
			o.Kind = opLookup
		case r < 72:
			o.Kind = opTopics
		case r < 84:
			o.Kind = opChannels
		case r < 92:
			o.Kind = opBoundedTopics
		default:
			o.Kind = opBoundedChannels
		}
		o.Topic, o.Channel, o.Node = rng.IntN(modelTopics), rng.IntN(modelChannels), 1+rng.IntN(w.nodes)
		if w.do(ctx, &o) {
			w.record(o)
		}
		pause(ctx, time.Duration(rng.IntN(20))*time.Millisecond)
	}
}

func pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// do performs o and fills in its outcome; false drops it from the history
// (a read that got no answer, a write never sent).
func (w *workload) do(ctx context.Context, o *op) bool {
	q := url.Values{}
	method, path := http.MethodGet, ""
	switch o.Kind {
	case opTopicCreate:
		method, path = http.MethodPost, "/topic/create"
	case opTopicDelete:
		method, path = http.MethodPost, "/topic/delete"
	case opChannelCreate:
		method, path = http.MethodPost, "/channel/create"
	case opChannelDelete:
		method, path = http.MethodPost, "/channel/delete"
	case opLookup:
		path = "/lookup"
	case opTopics, opBoundedTopics:
		path = "/topics"
	case opChannels, opBoundedChannels:
		path = "/channels"
	}
	if o.Kind != opTopics && o.Kind != opBoundedTopics {
		q.Set("topic", modelTopic(o.Topic))
	}
	if o.Kind == opChannelCreate || o.Kind == opChannelDelete {
		q.Set("channel", modelChannel(o.Channel))
	}
	switch {
	case o.Kind.isBounded():
		q.Set("consistency", "bounded")
	case !o.Kind.isWrite():
		q.Set("consistency", "linearizable")
	}
	target := "http://" + nodeIP(o.Node) + ":" + strconv.Itoa(httpPort) + path + "?" + q.Encode()
	// The request must not be cut by the end of the workload: an answer
	// that never comes would be recorded as ambiguous for no reason.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.tm.ClientTimeout)
	defer cancel()
	o.Call = w.now()
	status, body, err := w.http.do(rctx, method, target, nil)
	o.Return = w.now()
	o.Status = status
	if err != nil {
		o.Err = err.Error()
		if notSent(err) {
			return false
		}
	}
	if o.Kind.isWrite() {
		switch {
		case err == nil && status == http.StatusOK:
			o.Found = true
		case err == nil && status == http.StatusNotFound && o.Kind == opChannelDelete:
		default:
			if err == nil && status != http.StatusServiceUnavailable {
				w.anomaly("%s: unexpected status %d: %s", o, status, body)
			}
			if err == nil {
				o.Err = fmt.Sprintf("status %d: %s", status, strings.TrimSpace(string(body)))
			}
			o.Ambiguous = true
		}
		return true
	}
	if err != nil {
		return false
	}
	switch {
	case status == http.StatusNotFound && o.Kind == opLookup:
		return true
	case status != http.StatusOK:
		if status != http.StatusServiceUnavailable {
			w.anomaly("%s: unexpected status %d: %s", o, status, body)
		}
		return false
	}
	var doc struct {
		Topics   []string `json:"topics"`
		Channels []string `json:"channels"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		w.anomaly("%s: bad body %q: %v", o, body, err)
		return false
	}
	o.Found = true
	if o.Kind == opTopics || o.Kind == opBoundedTopics {
		o.Mask = nameMask(doc.Topics, httpPrefix, modelTopics)
	} else {
		o.Mask = nameMask(doc.Channels, "c-", modelChannels)
	}
	return true
}

// nameMask turns names prefix0..prefixN-1 into bits; other names are not
// the model's.
func nameMask(names []string, prefix string, n int) uint32 {
	var m uint32
	for _, s := range names {
		if i, err := strconv.Atoi(strings.TrimPrefix(s, prefix)); err == nil && strings.HasPrefix(s, prefix) && i >= 0 && i < n {
			m |= 1 << i
		}
	}
	return m
}

// notSent reports whether the request surely never reached the server
// (the connection was never made).
func notSent(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "dial"
}

// ---------------------------------------------------------------------------
// TCP sessions

type identity struct {
	Broadcast string
	TCPPort   int
	HTTPPort  int
}

func (id identity) String() string {
	return fmt.Sprintf("%s:%d/%d", id.Broadcast, id.TCPPort, id.HTTPPort)
}

// Session states.
const (
	sessOpen   = "open"   // the connection is up and answered its last command
	sessClosed = "closed" // the client closed it after a good answer
	sessBroken = "broken" // a command failed or the node closed it
)

// session is one raw protocol V1 connection posing as an nsqd. Regs is what
// it has registered now, as /debug keys ("topic:t:", "channel:t:c").
type session struct {
	ID    int
	Node  int
	Ident identity
	Regs  map[string]bool
	State string
	// Opened, Ended: nanoseconds since the run's time zero.
	Opened, Ended int64
	Log           []string

	conn net.Conn
}

func (w *workload) newSession(ctx context.Context, rng *rand.Rand) *session {
	w.mu.Lock()
	w.nextSess++
	id := w.nextSess
	w.mu.Unlock()
	s := &session{ID: id, Node: 1 + rng.IntN(w.nodes), Regs: map[string]bool{}, State: sessBroken,
		Ident: identity{fmt.Sprintf("sess-%d.chaos", id), 20000 + id, 40000 + id}}
	dctx, cancel := context.WithTimeout(ctx, w.tm.ClientTimeout)
	defer cancel()
	conn, err := w.nw.dial(dctx, "tcp", nodeIP(s.Node)+":"+strconv.Itoa(tcpPort))
	if err != nil {
		return nil // never connected: nothing to check
	}
	s.conn = conn
	s.Opened = w.now()
	w.mu.Lock()
	w.sessions = append(w.sessions, s)
	w.mu.Unlock()
	body := fmt.Sprintf(`{"broadcast_address":%q,"hostname":%q,"http_port":%d,"tcp_port":%d,"version":"1.3.0"}`,
		s.Ident.Broadcast, s.Ident.Broadcast, s.Ident.HTTPPort, s.Ident.TCPPort)
	var size [4]byte
	binary.BigEndian.PutUint32(size[:], uint32(len(body)))
	reply, err := w.roundTrip(s, "  V1IDENTIFY\n"+string(size[:])+body)
	if err != nil || !strings.HasPrefix(string(reply), "{") {
		w.breakSession(s, fmt.Sprintf("IDENTIFY: %q %v", reply, err))
		return nil
	}
	s.State = sessOpen
	s.log(w, "IDENTIFY on n%d", s.Node)
	return s
}

func (s *session) log(w *workload, format string, args ...any) {
	s.Log = append(s.Log, fmt.Sprintf("%.3f ", float64(w.now())/1e9)+fmt.Sprintf(format, args...))
}

func (w *workload) roundTrip(s *session, data string) ([]byte, error) {
	s.conn.SetDeadline(time.Now().Add(w.tm.ClientTimeout))
	if _, err := io.WriteString(s.conn, data); err != nil {
		return nil, err
	}
	var size [4]byte
	if _, err := io.ReadFull(s.conn, size[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(size[:])
	if n > 1<<20 {
		return nil, fmt.Errorf("frame size %d", n)
	}
	buf := make([]byte, n)
	_, err := io.ReadFull(s.conn, buf)
	return buf, err
}

// command sends a line expecting OK; a failure breaks the session.
func (w *workload) command(s *session, line string) bool {
	reply, err := w.roundTrip(s, line+"\n")
	if err != nil || string(reply) != "OK" {
		w.breakSession(s, fmt.Sprintf("%s: %q %v", line, reply, err))
		return false
	}
	s.log(w, "%s", line)
	return true
}

func (w *workload) breakSession(s *session, why string) {
	s.log(w, "broken: %s", why)
	s.State = sessBroken
	s.Ended = w.now()
	s.conn.Close()
}

func (w *workload) closeSession(s *session) {
	s.log(w, "close")
	s.State = sessClosed
	s.Ended = w.now()
	s.conn.Close()
}

// register and unregister keep Regs as nsqlookupd's rules change the
// registry (REGISTER t c adds the topic too; UNREGISTER t drops its
// channels).
func (w *workload) register(s *session, topic, channel string) bool {
	line := "REGISTER " + topic
	if channel != "" {
		line += " " + channel
	}
	if !w.command(s, line) {
		return false
	}
	s.Regs["topic:"+topic+":"] = true
	if channel != "" {
		s.Regs["channel:"+topic+":"+channel] = true
	}
	return true
}

func (w *workload) unregister(s *session, topic, channel string) bool {
	line := "UNREGISTER " + topic
	if channel != "" {
		line += " " + channel
	}
	if !w.command(s, line) {
		return false
	}
	if channel != "" {
		delete(s.Regs, "channel:"+topic+":"+channel)
		return true
	}
	for k := range s.Regs {
		if k == "topic:"+topic+":" || strings.HasPrefix(k, "channel:"+topic+":") {
			delete(s.Regs, k)
		}
	}
	return true
}

// sessionWorker opens sessions, registers and unregisters, pings, and
// closes some, keeping a few open until the end.
func (w *workload) sessionWorker(ctx context.Context, rng *rand.Rand) {
	var open []*session
	for ctx.Err() == nil {
		if s := w.newSession(ctx, rng); s != nil {
			w.exercise(s, rng)
			if s.State == sessOpen {
				if rng.IntN(10) < 4 {
					w.closeSession(s)
				} else {
					open = append(open, s)
				}
			}
		}
		if len(open) > 0 {
			i := rng.IntN(len(open))
			s := open[i]
			if rng.IntN(4) == 0 {
				w.exercise(s, rng)
			} else {
				w.command(s, "PING")
			}
			if s.State != sessOpen {
				open = slices.Delete(open, i, i+1)
			}
		}
		if len(open) > 4 {
			if open[0].State == sessOpen {
				w.closeSession(open[0])
			}
			open = open[1:]
		}
		pause(ctx, time.Duration(50+rng.IntN(150))*time.Millisecond)
	}
}

func (w *workload) exercise(s *session, rng *rand.Rand) {
	for range 1 + rng.IntN(3) {
		if s.State != sessOpen {
			return
		}
		topic := tcpPrefix + strconv.Itoa(rng.IntN(tcpTopics))
		channel := ""
		if rng.IntN(2) == 0 {
			channel = "c-" + strconv.Itoa(rng.IntN(2))
		}
		w.register(s, topic, channel)
	}
	if s.State == sessOpen && len(s.Regs) > 0 && rng.IntN(3) == 0 {
		keys := make([]string, 0, len(s.Regs))
		for k := range s.Regs {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		parts := strings.Split(keys[rng.IntN(len(keys))], ":")
		w.unregister(s, parts[1], parts[2])
	}
	if s.State == sessOpen {
		w.command(s, "PING")
	}
}
