package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/hashicorp/raft"
	"github.com/raftlookupd/raftlookupd/fsm"
)

// Server is one server of a static bootstrap configuration (-peers).
type Server struct {
	ID          string
	RaftAddress string
}

// ParseServers parses "id=host:port,id=host:port".
func ParseServers(s string) ([]Server, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []Server
	seen := map[string]bool{}
	for _, part := range strings.Split(s, ",") {
		id, addr, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || id == "" || addr == "" {
			return nil, fmt.Errorf("peer %q: want id=host:port", part)
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("peer %q: %w", part, err)
		}
		if seen[id] {
			return nil, fmt.Errorf("peer id %q listed twice", id)
		}
		seen[id] = true
		out = append(out, Server{ID: id, RaftAddress: addr})
	}
	return out, nil
}

// Config configures a Node. Durations document their default and what
// changing them costs.
type Config struct {
	// NodeID is this server's Raft id, stable across restarts.
	NodeID string
	// DataDir holds raft.db (log and stable store) and snapshots/.
	DataDir string
	// RaftListener is the bound Raft port. It carries raft's streams and the
	// node-to-node RPC, told apart by a first byte (mux.go), behind mutual
	// TLS when TLS is set. Required unless Network is set.
	RaftListener net.Listener
	// RaftAdvertise is the address peers dial; a host name is kept as is
	// (re-resolved at every dial), so containers may change IPs.
	RaftAdvertise string
	// TLS, when enabled, puts the Raft port behind mutual TLS: a peer
	// without a certificate signed by the CA is refused at the handshake.
	TLS TLSFiles
	// Network, when set, replaces the Raft port: tests use raft's in-memory
	// transport and an in-memory RPC network so they can cut links.
	Network *Network
	// HTTPAdvertise and TCPAdvertise are this node's client addresses,
	// replicated in its member record so status can report every member's.
	HTTPAdvertise string
	TCPAdvertise  string

	// Servers (-peers) bootstraps a static cluster on a fresh data dir; it must be the
	// same on every node. Ignored once state exists.
	Servers []Server
	// Join lists Raft addresses of members to ask for admission until one
	// accepts; a host name that resolves to several addresses stands for
	// all of them and is resolved again on every attempt.
	Join []string
	// Bootstrap, with no Servers and no Join, makes a fresh node a
	// single-server cluster. False: wait to be added.
	Bootstrap bool
	// BootstrapExpect, with Join, lets fresh nodes started with identical
	// settings form a cluster without Servers: once this many fresh nodes
	// found each other through Join, they bootstrap together; a node that
	// finds a member of an existing cluster joins it instead. 0: off.
	BootstrapExpect int

	// AdminToken, when set, is required on every node-to-node request and
	// sent with this node's own.
	AdminToken string

	// LeaseRenewInterval (default 2s): how often a node renews its owner lease
	// and replicates its sessions' PING times. One small log entry per node
	// per interval.
	LeaseRenewInterval time.Duration
	// LeaseTimeout (default 15s): the leader drops every session of a node
	// whose lease it has not seen renewed for this long. Shorter forgets
	// producers of a dead node sooner; too short expires a slow node.
	LeaseTimeout time.Duration
	// OrphanGrace (default 35s, a little over two nsqd heartbeats): when a
	// node goes away (drain, restart, lapsed lease) its sessions stay listed
	// as orphans this long, unless the nsqd re-registers through any node
	// first. A dead nsqd (its connection closed while its node was healthy)
	// is removed at once whatever this is.
	OrphanGrace time.Duration
	// InactiveProducerTimeout mirrors nsqlookupd's flag: a PING from a
	// session whose replicated last update is older than half of it is
	// replicated at once instead of at the next renewal.
	InactiveProducerTimeout time.Duration
	// MaxStaleness (default 3s): a follower serves bounded reads while its
	// applied state included the leader's commit index as of at most this
	// long ago (it checks every MaxStaleness/8, at most every 250ms). Must
	// exceed an election's length plus that interval, or reads fail during
	// elections.
	MaxStaleness time.Duration
	// WriteTimeout (default 5s): how long one attempt to commit a batch may
	// take before it is retried.
	WriteTimeout time.Duration

	// Raft timing, tuned for a LAN (defaults: heartbeat and election 150ms,
	// leader lease 120ms, commit 10ms): a crashed leader is replaced within
	// about half a second, and neither an idle cluster nor the bench's
	// loads on two cores saw an election without one (README,
	// Performance). Raise them on slow or lossy networks.
	HeartbeatTimeout   time.Duration
	ElectionTimeout    time.Duration
	LeaderLeaseTimeout time.Duration
	CommitTimeout      time.Duration
	// SnapshotInterval and SnapshotThreshold control log compaction.
	SnapshotInterval  time.Duration
	SnapshotThreshold uint64
	TrailingLogs      uint64

	// MaxSessions caps the sessions (TCP connections that identified, orphans
	// included) the whole cluster holds (default 100000; 0: no cap). Beyond
	// it IDENTIFY fails on every node.
	MaxSessions int
	// MaxRegistrations caps the registrations the whole cluster holds:
	// producer records of topics and channels plus the keys themselves
	// (default 10000000; 0: no cap). Beyond it REGISTER and HTTP creates
	// fail on every node.
	MaxRegistrations int

	// MaxBatch is the most commands one log entry carries (default 4096).
	MaxBatch int
	// MaxQueue is the most commands waiting for replication (default 1<<20);
	// beyond it new commands fail with wire.ErrQueueFull.
	MaxQueue int
}

// DefaultConfig returns the defaults; the caller sets identity and addresses.
func DefaultConfig() Config {
	return Config{
		Bootstrap:               true,
		LeaseRenewInterval:      2 * time.Second,
		LeaseTimeout:            15 * time.Second,
		OrphanGrace:             35 * time.Second,
		InactiveProducerTimeout: 300 * time.Second,
		MaxStaleness:            3 * time.Second,
		WriteTimeout:            5 * time.Second,
		HeartbeatTimeout:        150 * time.Millisecond,
		ElectionTimeout:         150 * time.Millisecond,
		LeaderLeaseTimeout:      120 * time.Millisecond,
		CommitTimeout:           10 * time.Millisecond,
		SnapshotInterval:        60 * time.Second,
		SnapshotThreshold:       8192,
		TrailingLogs:            10240,
		MaxSessions:             100000,
		MaxRegistrations:        10000000,
		MaxBatch:                4096,
		MaxQueue:                1 << 20,
	}
}

// Validate checks fields alone and against each other.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.NodeID == "" || len(c.NodeID) > fsm.MaxNodeIDLen {
		bad("node id %q: must be 1 to %d bytes", c.NodeID, fsm.MaxNodeIDLen)
	}
	for name, addr := range map[string]string{"raft": c.RaftAdvertise, "http": c.HTTPAdvertise, "tcp": c.TCPAdvertise} {
		if len(addr) > fsm.MaxAddressLen {
			bad("%s advertise address longer than %d bytes", name, fsm.MaxAddressLen)
		}
	}
	if c.MaxSessions < 0 || c.MaxRegistrations < 0 {
		bad("max sessions %d and max registrations %d must not be negative", c.MaxSessions, c.MaxRegistrations)
	}
	if c.MaxBatch > fsm.MaxBatchCommands {
		bad("max batch %d exceeds %d commands per entry", c.MaxBatch, fsm.MaxBatchCommands)
	}
	if c.DataDir == "" {
		bad("data dir is empty")
	}
	addrs := map[string]string{"raft advertise": c.RaftAdvertise}
	if c.Network != nil && c.TLS.Enabled() {
		bad("TLS applies to the Raft port, not to a test network")
	}
	for name, addr := range addrs {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			bad("%s address %q: %v", name, addr, err)
		}
	}
	if host, _, err := net.SplitHostPort(c.RaftAdvertise); err == nil {
		if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
			bad("raft advertise address %q is not reachable by peers: set a broadcast address", c.RaftAdvertise)
		}
	}
	if len(c.Servers) > 0 && len(c.Join) > 0 {
		bad("give either peers or join, not both")
	}
	if c.BootstrapExpect < 0 || (c.BootstrapExpect > 0 && len(c.Join) == 0) {
		bad("bootstrap expect %d: needs join addresses to find the other nodes, and must not be negative", c.BootstrapExpect)
	}
	if len(c.Servers) > 0 {
		found := false
		for _, p := range c.Servers {
			found = found || p.ID == c.NodeID
		}
		if !found {
			bad("peers do not include this node's id %q", c.NodeID)
		}
	}
	positive := map[string]time.Duration{
		"lease renew interval": c.LeaseRenewInterval, "lease timeout": c.LeaseTimeout,
		"max staleness": c.MaxStaleness, "write timeout": c.WriteTimeout,
		"heartbeat timeout": c.HeartbeatTimeout, "election timeout": c.ElectionTimeout,
		"leader lease timeout": c.LeaderLeaseTimeout, "commit timeout": c.CommitTimeout,
		"snapshot interval": c.SnapshotInterval, "inactive producer timeout": c.InactiveProducerTimeout,
		"orphan grace": c.OrphanGrace,
	}
	for name, d := range positive {
		if d <= 0 {
			bad("%s must be positive, got %v", name, d)
		}
	}
	if c.LeaseTimeout > 0 && c.LeaseRenewInterval*3 > c.LeaseTimeout {
		bad("lease timeout %v must be at least 3 lease renew intervals (%v)", c.LeaseTimeout, c.LeaseRenewInterval)
	}
	if c.LeaderLeaseTimeout > c.HeartbeatTimeout {
		bad("leader lease timeout %v must not exceed heartbeat timeout %v", c.LeaderLeaseTimeout, c.HeartbeatTimeout)
	}
	if c.MaxBatch <= 0 || c.MaxQueue < c.MaxBatch {
		bad("max batch %d must be positive and at most max queue %d", c.MaxBatch, c.MaxQueue)
	}
	return errors.Join(errs...)
}

// Network replaces the Raft port in tests.
type Network struct {
	// Transport is raft's transport; its LocalAddr must be RaftAdvertise.
	Transport raft.Transport
	// RPC accepts this node's incoming node-to-node RPC streams.
	RPC net.Listener
	// Dial opens an RPC stream to the member whose Raft address is addr.
	Dial func(ctx context.Context, addr string) (net.Conn, error)
	// Resolve, when set, replaces DNS for the host names of Join.
	Resolve func(ctx context.Context, host string) ([]string, error)
}
