package cluster

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/raftlookupd/raftlookupd/fsm"
	"github.com/raftlookupd/raftlookupd/internal/graceful"
	"github.com/raftlookupd/raftlookupd/wire"
)

// The node-to-node RPC is HTTP/1.1 on RPC streams of the Raft port (mux.go):
// forwarded batches, read-index requests, the status fan-out, join, leave,
// transfer and restore requests forwarded to the leader (backup.go), and
// discovery's hello (discovery.go). None of it exists on the client HTTP
// port. Both halves live here.
const (
	rpcApply     = "/rpc/apply"
	rpcReadIndex = "/rpc/read-index"
	rpcStatus    = "/rpc/status"
	rpcJoin      = "/rpc/join"
	rpcLeave     = "/rpc/leave"
	rpcTransfer  = "/rpc/transfer"
	rpcOpen      = "/rpc/open-incarnation"
	rpcRetire    = "/rpc/retire"
)

const (
	// maxRPCBody bounds the small JSON documents (join, leave, transfer).
	maxRPCBody = 64 << 10
	// maxRPCAnswer bounds what a caller reads of any answer.
	maxRPCAnswer = 1 << 20
)

// applyResult is what committing one batch returned: its log index and one
// result code per command (fsm.ResultCode).
type applyResult struct {
	Index uint64  `json:"index"`
	Codes []uint8 `json:"codes"`
	// Incarnation answers an OpOpenIncarnation: the incarnation it opened
	// (absent from a leader of an earlier version).
	Incarnation uint64 `json:"incarnation,omitempty"`
}

func (r applyResult) errors() []error {
	out := make([]error, len(r.Codes))
	for i, c := range r.Codes {
		out[i] = fsm.ResultError(c)
	}
	return out
}

type indexDoc struct {
	Index uint64 `json:"index"`
}

// rpcServer serves the RPC streams of the Raft port.
type rpcServer struct {
	n     *Node
	srv   *http.Server
	conns *graceful.Conns
	ln    net.Listener
}

func newRPCServer(n *Node, ln net.Listener, logger hclog.Logger) *rpcServer {
	s := &rpcServer{n: n, ln: ln}
	m := http.NewServeMux()
	m.HandleFunc("POST "+rpcApply, s.member(s.handleApply))
	m.HandleFunc("GET "+rpcReadIndex, s.member(s.handleReadIndex))
	m.HandleFunc("GET "+rpcStatus, s.member(s.handleStatus))
	m.HandleFunc("POST "+rpcLeave, s.member(s.handleLeave))
	m.HandleFunc("POST "+rpcTransfer, s.member(s.handleTransfer))
	m.HandleFunc("POST "+rpcOpen, s.member(s.handleOpen))
	m.HandleFunc("POST "+rpcRetire, s.member(s.handleRetire))
	m.HandleFunc("POST "+rpcRestore, s.member(s.handleRestore))
	// A joining node is not a member yet: join needs the admin token when
	// one is set (and a certificate from the CA when TLS is on), nothing
	// more. See docs/ARCHITECTURE.md, "Trust boundaries".
	m.HandleFunc("POST "+rpcJoin, s.token(s.handleJoin))
	m.HandleFunc("GET "+rpcHello, s.token(s.handleHello))
	s.srv = &http.Server{
		Handler:           m,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          logger.StandardLogger(&hclog.StandardLoggerOptions{ForceLevel: hclog.Debug}),
	}
	s.conns = graceful.Track(s.srv)
	return s
}

func (s *rpcServer) serve() {
	if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
		s.n.logger.Error("node-to-node RPC stopped", "error", err)
	}
}

// shutdown lets RPCs in progress finish until ctx ends, then cuts the rest.
// A connection that has sent no request is closed at once: a plain
// http.Server.Shutdown waits five seconds for one, which made a drained
// node's exit take that long (found by the e2e SIGTERM test under load).
func (s *rpcServer) shutdown(ctx context.Context) error {
	err := s.conns.Shutdown(ctx, s.srv)
	if err != nil {
		s.srv.Close()
	}
	return err
}

type rpcHandler func(ctx context.Context, r *http.Request) (any, error)

// token checks the admin token, when the node has one, before the request
// body is read.
func (s *rpcServer) token(h rpcHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if !tokenMatches(s.n.cfg.AdminToken, r.Header.Get("Authorization")) {
			writeRPCError(w, fmt.Errorf("%w: node-to-node request without the admin token", wire.ErrForbidden))
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), s.n.cfg.WriteTimeout)
		defer cancel()
		v, err := h(ctx, r)
		if err != nil {
			writeRPCError(w, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(v)
	}
}

// member admits only members: with TLS every stream already is one (the
// handshake checked its certificate); without, the caller's IP must be one
// a member's Raft address resolves to, or loopback. Checked before the body
// is read.
func (s *rpcServer) member(h rpcHandler) http.HandlerFunc {
	inner := s.token(h)
	return func(w http.ResponseWriter, r *http.Request) {
		if !s.n.tlsOn() && !s.n.members.allowed(r.RemoteAddr) {
			s.n.logger.Warn("refused a node-to-node request from a non-member", "remote", r.RemoteAddr, "path", r.URL.Path)
			writeRPCError(w, fmt.Errorf("%w: %s is not a member's address", wire.ErrForbidden, r.RemoteAddr))
			return
		}
		inner(w, r)
	}
}

func writeRPCError(w http.ResponseWriter, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(wire.StatusOf(err))
	_ = json.NewEncoder(w).Encode(wire.Message{Message: err.Error()})
}

func (s *rpcServer) handleApply(ctx context.Context, r *http.Request) (any, error) {
	if r.ContentLength > fsm.MaxEntryBytes {
		return nil, fmt.Errorf("%w: batch of %d bytes, at most %d", wire.ErrTooLarge, r.ContentLength, fsm.MaxEntryBytes)
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, fsm.MaxEntryBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%w: read batch: %v", wire.ErrBadRequest, err)
	}
	if len(data) > fsm.MaxEntryBytes {
		return nil, fmt.Errorf("%w: batch larger than %d bytes", wire.ErrTooLarge, fsm.MaxEntryBytes)
	}
	return s.n.applyForwarded(ctx, r.RemoteAddr, data)
}

func (s *rpcServer) handleOpen(_ context.Context, r *http.Request) (any, error) {
	data, err := io.ReadAll(io.LimitReader(r.Body, maxRPCBody+1))
	if err != nil {
		return nil, fmt.Errorf("%w: read command: %v", wire.ErrBadRequest, err)
	}
	if len(data) > maxRPCBody {
		return nil, fmt.Errorf("%w: command larger than %d bytes", wire.ErrTooLarge, maxRPCBody)
	}
	return s.n.applyOpen(data)
}

// handleRetire: the leader is about to remove this node. The body holds
// the leader's last log index (an empty one, 0, is read as this node's own).
func (s *rpcServer) handleRetire(ctx context.Context, r *http.Request) (any, error) {
	var at indexDoc
	if data, err := io.ReadAll(io.LimitReader(r.Body, maxRPCBody)); err == nil && len(bytes.TrimSpace(data)) > 0 {
		if err := json.Unmarshal(data, &at); err != nil {
			return nil, fmt.Errorf("%w: retire: %v", wire.ErrBadRequest, err)
		}
	}
	return struct{}{}, s.n.retire(ctx, at.Index)
}

func (s *rpcServer) handleReadIndex(ctx context.Context, _ *http.Request) (any, error) {
	i, err := s.n.leaderReadIndex(ctx)
	return indexDoc{i}, err
}

func (s *rpcServer) handleStatus(context.Context, *http.Request) (any, error) {
	return s.n.localStatus(), nil
}

func (s *rpcServer) handleJoin(_ context.Context, r *http.Request) (any, error) {
	var req wire.JoinRequest
	if err := decodeJSON(r.Body, &req); err != nil {
		return nil, err
	}
	if err := s.n.checkJoiner(r.RemoteAddr, req); err != nil {
		s.n.logger.Warn("refused a join", "remote", r.RemoteAddr, "id", req.ID, "error", err)
		return nil, err
	}
	return struct{}{}, asWire(s.n.Join(r.Context(), req))
}

// checkJoiner applies, when the node has neither TLS nor an admin token,
// the rule for a caller the Raft port cannot authenticate: a member (or
// loopback) may forward any join; anyone else may only add itself (its
// source IP is the requested Raft address's), and may not take over the id
// of an existing member at another address. With a token or TLS the caller
// already proved itself.
func (n *Node) checkJoiner(remote string, req wire.JoinRequest) error {
	if n.tlsOn() || n.cfg.AdminToken != "" || n.members.allowed(remote) {
		return nil
	}
	if !callerOwnsAddress(remote, req.RaftAddress, n.members.resolve) {
		return fmt.Errorf("%w: without -admin-token or TLS a node may only add itself; %s is not %s's address",
			wire.ErrForbidden, remote, req.RaftAddress)
	}
	if addr, ok := n.serverAddress(req.ID); ok && string(addr) != req.RaftAddress {
		return fmt.Errorf("%w: %q is a member at %s; moving it needs -admin-token or TLS", wire.ErrForbidden, req.ID, addr)
	}
	return nil
}

func (s *rpcServer) handleLeave(ctx context.Context, r *http.Request) (any, error) {
	var req wire.LeaveRequest
	if err := decodeJSON(r.Body, &req); err != nil {
		return nil, err
	}
	return struct{}{}, asWire(s.n.Leave(ctx, req.ID))
}

func (s *rpcServer) handleTransfer(ctx context.Context, r *http.Request) (any, error) {
	var req wire.TransferRequest
	if err := decodeJSON(r.Body, &req); err != nil {
		return nil, err
	}
	return struct{}{}, asWire(s.n.TransferLeadership(ctx, req.ID))
}

// asWire gives raft's leadership errors their wire sentinel, so the caller
// sees 409 (try the leader) rather than 500.
func asWire(err error) error {
	if err != nil && !errors.Is(err, wire.ErrNotLeader) &&
		(errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) || errors.Is(err, raft.ErrLeadershipTransferInProgress)) {
		return fmt.Errorf("%w: %v", wire.ErrNotLeader, err)
	}
	return err
}

// decodeJSON reads one small JSON document, refusing unknown fields and
// anything after it.
func decodeJSON(body io.Reader, v any) error {
	b, err := io.ReadAll(io.LimitReader(body, maxRPCBody+1))
	if err != nil {
		return fmt.Errorf("%w: read body: %v", wire.ErrBadRequest, err)
	}
	if len(b) > maxRPCBody {
		return fmt.Errorf("%w: body larger than %d bytes", wire.ErrTooLarge, maxRPCBody)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: invalid JSON body: %v", wire.ErrBadRequest, err)
	}
	// A second document after the first is refused, as on the HTTP port:
	// `{"id":"n9"} {"id":"n2"}` must not act on one and drop the other.
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: invalid JSON body: data after the object", wire.ErrBadRequest)
	}
	return nil
}

// tokenMatches checks "Bearer TOKEN" against want (always true when want is
// empty). Both sides are hashed before a constant-time compare, so neither
// the token nor its length leaks through timing.
func tokenMatches(want, header string) bool {
	if want == "" {
		return true
	}
	const scheme = "Bearer "
	if len(header) < len(scheme) || !strings.EqualFold(header[:len(scheme)], scheme) {
		return false
	}
	got := sha256.Sum256([]byte(header[len(scheme):]))
	exp := sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(got[:], exp[:]) == 1
}

// rpcClient makes node-to-node calls over RPC streams.
type rpcClient struct {
	hc    *http.Client
	token string
}

func newRPCClient(dial func(ctx context.Context, addr string) (net.Conn, error), token string, timeout time.Duration) *rpcClient {
	tr := &http.Transport{
		DialContext:         func(ctx context.Context, _, addr string) (net.Conn, error) { return dial(ctx, addr) },
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}
	return &rpcClient{hc: &http.Client{Transport: tr, Timeout: timeout}, token: token}
}

func (c *rpcClient) close() { c.hc.CloseIdleConnections() }

// call sends body (raw bytes, or a value to encode as JSON; nil for GET) to
// path on the member at addr (its Raft address) and decodes the JSON answer
// into out. A non-2xx answer is a *wire.RemoteError, which unwraps to the
// sentinel of its status; a transport failure wraps wire.ErrNoLeader.
func (c *rpcClient) call(ctx context.Context, addr, path string, body, out any) error {
	method, payload := http.MethodGet, []byte(nil)
	switch b := body.(type) {
	case nil:
	case []byte:
		method, payload = http.MethodPost, b
	default:
		var err error
		if payload, err = json.Marshal(b); err != nil {
			return err
		}
		method = http.MethodPost
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+addr+path, bytes.NewReader(payload))
	if err != nil {
		return fmt.Errorf("%w: %v", wire.ErrBadRequest, err)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %s%s: %v", wire.ErrNoLeader, addr, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxRPCAnswer))
	if err != nil {
		return fmt.Errorf("%w: read answer from %s: %v", wire.ErrNoLeader, addr, err)
	}
	if resp.StatusCode/100 != 2 {
		var msg wire.Message
		_ = json.Unmarshal(raw, &msg)
		return &wire.RemoteError{Status: resp.StatusCode, Message: msg.Message}
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("decode answer from %s%s: %w", addr, path, err)
		}
	}
	return nil
}

// memberIPs is the allow-list of the Raft port when TLS is off: the IPs
// the configuration's Raft addresses resolve to, per member, plus loopback.
// Lookups are cached; a miss refreshes at most once a second, so a new
// member is admitted within a second of its addition.
type memberIPs struct {
	servers func() map[string]string // member id -> Raft address
	resolve func(host string) ([]net.IP, error)

	mu      sync.Mutex
	byIP    map[string]map[string]bool // IP -> member ids at that IP
	fetched time.Time
}

// allowed reports whether remote is loopback or the IP of any member.
func (m *memberIPs) allowed(remote string) bool {
	ok, _ := m.lookup(remote, "")
	return ok
}

// allowedFor reports whether remote is loopback or an IP of member id:
// without TLS, the address is all that ties a caller to a node id.
func (m *memberIPs) allowedFor(remote, id string) bool {
	_, of := m.lookup(remote, id)
	return of
}

// lookup answers whether remote is a member's IP (or loopback), and
// whether it is one of id's (or loopback).
func (m *memberIPs) lookup(remote, id string) (member, ofID bool) {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		return false, false
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return false, false
	}
	if ip.IsLoopback() {
		return true, true
	}
	key := ip.String()
	m.mu.Lock()
	defer m.mu.Unlock()
	if ids := m.byIP[key]; len(ids) > 0 && (id == "" || ids[id]) {
		return true, id == "" || ids[id]
	}
	if time.Since(m.fetched) >= time.Second {
		m.refreshLocked()
	}
	ids := m.byIP[key]
	return len(ids) > 0, len(ids) > 0 && (id == "" || ids[id])
}

func (m *memberIPs) refreshLocked() {
	m.fetched = time.Now()
	m.byIP = map[string]map[string]bool{}
	add := func(ip net.IP, id string) {
		k := ip.String()
		if m.byIP[k] == nil {
			m.byIP[k] = map[string]bool{}
		}
		m.byIP[k][id] = true
	}
	for id, addr := range m.servers() {
		h, _, err := net.SplitHostPort(addr)
		if err != nil {
			continue
		}
		if hip := net.ParseIP(h); hip != nil {
			add(hip, id)
			continue
		}
		resolved, err := m.resolve(h)
		if err != nil {
			continue
		}
		for _, r := range resolved {
			add(r, id)
		}
	}
}

// callerOwnsAddress reports whether remote is loopback or one of the IPs
// addr's host resolves to: a node asking, without TLS or a token, to join
// may only add itself.
func callerOwnsAddress(remote, addr string, resolve func(string) ([]net.IP, error)) bool {
	rh, _, err := net.SplitHostPort(remote)
	if err != nil {
		return false
	}
	rip := net.ParseIP(rh)
	if rip == nil {
		return false
	}
	if rip.IsLoopback() {
		return true
	}
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ips := []net.IP{net.ParseIP(h)}
	if ips[0] == nil {
		if ips, err = resolve(h); err != nil {
			return false
		}
	}
	for _, ip := range ips {
		if ip.Equal(rip) {
			return true
		}
	}
	return false
}
