package httpapi

import (
	"io"
	"net/http"
	"time"

	"github.com/julienschmidt/httprouter"
	"github.com/raftlookupd/raftlookupd/fsm"
)

// zeroTimeUnixNano is time.Time{}.UnixNano(): nsqlookupd's /debug shows it as
// tombstoned_at of a producer that was never tombstoned, and nsqd's tests
// parse /debug.
const zeroTimeUnixNano int64 = -6795364578871345152

// The JSON shapes below fix nsqlookupd's field order; encoding/json emits
// struct fields in declaration order.

// lookupResponse is the /lookup shape; appendLookup writes the same bytes
// without reflection (a test holds the two equal).
type lookupResponse struct {
	Channels  []string         `json:"channels"`
	Producers []lookupProducer `json:"producers"`
}

type lookupProducer struct {
	RemoteAddress    string `json:"remote_address"`
	Hostname         string `json:"hostname"`
	BroadcastAddress string `json:"broadcast_address"`
	TCPPort          int    `json:"tcp_port"`
	HTTPPort         int    `json:"http_port"`
	Version          string `json:"version"`
}

type nodesResponse struct {
	Producers []node `json:"producers"`
}

// node is a /lookup producer followed by tombstones and topics (an embedded
// struct's fields are emitted in its place).
type node struct {
	lookupProducer
	Tombstones []bool   `json:"tombstones"`
	Topics     []string `json:"topics"`
}

func producerJSON(p fsm.PeerInfo) lookupProducer {
	return lookupProducer{
		RemoteAddress:    p.RemoteAddress,
		Hostname:         p.Hostname,
		BroadcastAddress: p.BroadcastAddress,
		TCPPort:          p.TCPPort,
		HTTPPort:         p.HTTPPort,
		Version:          p.Version,
	}
}

// debugProducer's fields are alphabetical because nsqlookupd marshals a map.
type debugProducer struct {
	BroadcastAddress string `json:"broadcast_address"`
	Hostname         string `json:"hostname"`
	HTTPPort         int    `json:"http_port"`
	ID               string `json:"id"`
	LastUpdate       int64  `json:"last_update"`
	TCPPort          int    `json:"tcp_port"`
	Tombstoned       bool   `json:"tombstoned"`
	TombstonedAt     int64  `json:"tombstoned_at"`
	Version          string `json:"version"`
}

type topicsResponse struct {
	Topics []string `json:"topics"`
}

type channelsResponse struct {
	Channels []string `json:"channels"`
}

type infoResponse struct {
	Version string `json:"version"`
}

// handlePing is nsqlookupd's plain-text health check: no V1 header.
func (s *Server) handlePing(w http.ResponseWriter, _ *http.Request, _ httprouter.Params) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, "OK")
}

func (s *Server) handleInfo(http.ResponseWriter, *http.Request) (any, *apiError) {
	return infoResponse{Version: s.cfg.Version}, nil
}

// handleLookup answers from the topic's remembered body while it holds (see
// fsm.Registry.Recall), else encodes the answer and remembers it.
func (s *Server) handleLookup(w http.ResponseWriter, r *http.Request) (any, *apiError) {
	p, topic, apiErr := topicParam(r)
	if apiErr != nil {
		return s.readFailed(w, apiErr)
	}
	if apiErr := s.readBarrier(w, r, p); apiErr != nil {
		return nil, apiErr
	}
	f := s.filter()
	if body, ok := s.reg.Recall(topic, f); ok {
		return rawJSON(body), nil
	}
	channels, peers, found, stamp := s.reg.LookupStamped(topic, f)
	if !found {
		return nil, errTopicNotFound
	}
	body := appendLookup(make([]byte, 0, lookupSize(channels, peers)), channels, peers)
	s.reg.Remember(stamp, body)
	return rawJSON(body), nil
}

func (s *Server) handleTopics(w http.ResponseWriter, r *http.Request) (any, *apiError) {
	if apiErr := s.readBarrier(w, r, lenientParams(r)); apiErr != nil {
		return nil, apiErr
	}
	return topicsResponse{Topics: nonNil(s.reg.Topics())}, nil
}

func (s *Server) handleChannels(w http.ResponseWriter, r *http.Request) (any, *apiError) {
	p, topic, apiErr := topicParam(r)
	if apiErr != nil {
		return s.readFailed(w, apiErr)
	}
	if apiErr := s.readBarrier(w, r, p); apiErr != nil {
		return nil, apiErr
	}
	return channelsResponse{Channels: nonNil(s.reg.Channels(topic))}, nil
}

func (s *Server) handleNodes(w http.ResponseWriter, r *http.Request) (any, *apiError) {
	if apiErr := s.readBarrier(w, r, lenientParams(r)); apiErr != nil {
		return nil, apiErr
	}
	nodes := s.reg.Nodes(s.filter())
	out := make([]node, len(nodes))
	for i, n := range nodes {
		out[i] = node{
			lookupProducer: producerJSON(n.PeerInfo),
			Topics:         nonNil(n.Topics),
			Tombstones:     tombstonesFor(n.Topics, n.Tombstones),
		}
	}
	return nodesResponse{Producers: out}, nil
}

// tombstonesFor returns a tombstones array exactly as long as topics:
// nsqadmin indexes tombstones[i] for every topics[i] and crashes otherwise,
// so the invariant is enforced here even if the registry broke it.
func tombstonesFor(topics []string, tombstones []bool) []bool {
	out := make([]bool, len(topics))
	copy(out, tombstones)
	return out
}

func (s *Server) handleDebug(w http.ResponseWriter, r *http.Request) (any, *apiError) {
	if apiErr := s.readBarrier(w, r, lenientParams(r)); apiErr != nil {
		return nil, apiErr
	}
	dump := s.reg.Debug()
	out := make(map[string][]debugProducer, len(dump))
	for key, producers := range dump {
		// nsqlookupd never lists a registration without producers.
		if len(producers) == 0 {
			continue
		}
		ps := make([]debugProducer, len(producers))
		for i, p := range producers {
			tombstonedAt := p.TombstonedAt
			if !p.Tombstoned && tombstonedAt == 0 {
				tombstonedAt = zeroTimeUnixNano
			}
			ps[i] = debugProducer{
				BroadcastAddress: p.BroadcastAddress,
				Hostname:         p.Hostname,
				HTTPPort:         p.HTTPPort,
				ID:               p.RemoteAddress,
				LastUpdate:       p.LastUpdate,
				TCPPort:          p.TCPPort,
				Tombstoned:       p.Tombstoned,
				TombstonedAt:     tombstonedAt,
				Version:          p.Version,
			}
		}
		out[key] = ps
	}
	return out, nil
}

func (s *Server) filter() fsm.Filter {
	return fsm.Filter{
		Now:               time.Now(),
		InactiveTimeout:   s.cfg.InactiveProducerTimeout,
		TombstoneLifetime: s.cfg.TombstoneLifetime,
	}
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
