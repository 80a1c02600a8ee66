package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"

	"github.com/raftlookupd/raftlookupd/fsm"
	"github.com/raftlookupd/raftlookupd/internal/metrics"
)

// Node is one raftlookupd server: a Raft peer whose state machine is the
// registry, the queue that replicates this node's commands, its sessions and
// its owner lease.
type Node struct {
	cfg    Config
	logger hclog.Logger

	fsm       *appliedFSM
	raft      *raft.Raft
	transport *raft.NetworkTransport
	store     *raftboltdb.BoltStore
	client    *http.Client

	queue    *queue
	sessions *sessions

	// leaderReady is set once this node, as leader, applied everything
	// committed before its term (a Barrier), so its commit index is safe to
	// serve linearizable reads from.
	leaderReady atomic.Bool
	// caughtUp is set once this node applied a commit index it obtained
	// from a leader after it started. Until then its state may be far
	// behind (a restarted follower replays nothing until the leader's
	// replication reaches it), so bounded reads and readiness wait for it.
	caughtUp atomic.Bool
	leaderCh chan bool

	// onExpired is called when this node learns its lease expired and its
	// sessions were dropped: client connections must close so nsqd
	// reconnects and registers again.
	onExpired atomic.Pointer[func()]

	metrics nodeMetrics

	// leaderChanged is closed (and replaced) whenever the leader changes, so
	// a request forwarded to a leader that just stopped leading, or froze,
	// gives up at once instead of at its timeout.
	leaderChange  sync.Mutex
	leaderChanged chan struct{}

	// memberMu guards cfg.TCPAdvertise, set once after New.
	memberMu sync.Mutex

	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	shutOnce sync.Once
	shutErr  error
}

// New opens the stores in cfg.DataDir, starts Raft, bootstraps when the
// configuration asks for it, and starts the node's loops.
func New(cfg Config, logger hclog.Logger) (*Node, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("cluster config: %w", err)
	}
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	n := &Node{
		cfg:      cfg,
		logger:   logger,
		fsm:      newAppliedFSM(),
		client:   &http.Client{Timeout: cfg.WriteTimeout},
		leaderCh: make(chan bool, 16),

		leaderChanged: make(chan struct{}),
		metrics:       nodeMetrics{commitLatency: metrics.NewHistogram(metrics.LatencyBuckets)},
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())

	// NoFreelistSync: a commit does not rewrite bolt's free-page list (it
	// is rebuilt by a scan at open). Entries are still fsynced; each commit
	// just writes less, which shortens every Raft round trip.
	store, err := raftboltdb.New(raftboltdb.Options{
		Path:        filepath.Join(cfg.DataDir, "raft.db"),
		BoltOptions: &bbolt.Options{Timeout: time.Second, NoFreelistSync: true, FreelistType: bbolt.FreelistMapType},
	})
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", filepath.Join(cfg.DataDir, "raft.db"), err)
	}
	n.store = store
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.DataDir, 2, logger.Named("snapshot"))
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("snapshot store: %w", err)
	}
	var transport raft.Transport = cfg.Transport
	if transport == nil {
		nt, advertise, err := newTCPTransport(cfg, logger)
		if err != nil {
			store.Close()
			return nil, err
		}
		n.transport, n.cfg.RaftAdvertise, transport = nt, advertise, nt
	}
	advertise := n.cfg.RaftAdvertise

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.NodeID)
	rc.HeartbeatTimeout = cfg.HeartbeatTimeout
	rc.ElectionTimeout = cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = cfg.LeaderLeaseTimeout
	rc.CommitTimeout = cfg.CommitTimeout
	rc.SnapshotInterval = cfg.SnapshotInterval
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	rc.TrailingLogs = cfg.TrailingLogs
	rc.NotifyCh = n.leaderCh
	rc.Logger = logger.Named("raft")
	// The legacy metrics put peer ids into metric names; the labelled ones
	// carry the same figures.
	rc.NoLegacyTelemetry = true

	recovered, err := recoverCluster(cfg, rc, store, store, snaps, transport)
	if err != nil {
		n.closeTransportAndStore()
		return nil, err
	}
	if recovered {
		logger.Warn("recovered from quorum loss: Raft configuration rewritten from "+PeersFile, "data_dir", cfg.DataDir)
	}
	existing, err := raft.HasExistingState(store, store, snaps)
	if err != nil {
		n.closeTransportAndStore()
		return nil, fmt.Errorf("inspect raft state: %w", err)
	}
	r, err := raft.NewRaft(rc, n.fsm, store, store, snaps, transport)
	if err != nil {
		n.closeTransportAndStore()
		return nil, fmt.Errorf("start raft: %w", err)
	}
	n.raft = r
	if !existing {
		if err := n.bootstrap(); err != nil {
			n.raft.Shutdown().Error()
			n.closeTransportAndStore()
			return nil, err
		}
	} else {
		logger.Info("restarting from existing state", "data_dir", cfg.DataDir)
	}

	incarnation, err := nextIncarnation(cfg.DataDir)
	if err != nil {
		n.raft.Shutdown().Error()
		n.closeTransportAndStore()
		return nil, fmt.Errorf("incarnation: %w", err)
	}
	n.queue = newQueue(n, incarnation)
	n.sessions = newSessions(n, incarnation)
	// The lease renewal opening this incarnation goes first in the queue:
	// sessions opened later name it, and the state machine drops commands of
	// incarnations it has not seen.
	n.sessions.renew()

	n.start(n.observeLeaders)
	n.start(n.queue.run)
	n.start(n.leaseLoop)
	n.start(n.leaderLoop)
	if !existing && len(cfg.Join) > 0 {
		n.start(n.joinLoop)
	}
	logger.Info("node started", "id", cfg.NodeID, "raft", advertise, "incarnation", incarnation)
	return n, nil
}

func (n *Node) bootstrap() error {
	var servers []raft.Server
	switch {
	case len(n.cfg.Peers) > 0:
		for _, p := range n.cfg.Peers {
			addr := p.RaftAddress
			if p.ID == n.cfg.NodeID {
				addr = n.cfg.RaftAdvertise
			}
			servers = append(servers, raft.Server{ID: raft.ServerID(p.ID), Address: raft.ServerAddress(addr)})
		}
	case len(n.cfg.Join) > 0 || !n.cfg.Bootstrap:
		n.logger.Info("fresh node waiting to be added to a cluster")
		return nil
	default:
		servers = []raft.Server{{ID: raft.ServerID(n.cfg.NodeID), Address: raft.ServerAddress(n.cfg.RaftAdvertise)}}
	}
	n.logger.Info("bootstrapping cluster", "servers", len(servers))
	if err := n.raft.BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	return nil
}

func (n *Node) start(f func()) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		f()
	}()
}

// Registry returns the local state machine's registry for reads.
func (n *Node) Registry() *fsm.Registry { return n.fsm.Registry() }

// Raft exposes the Raft instance for status and metrics.
func (n *Node) Raft() *raft.Raft { return n.raft }

// RaftAddress returns the advertised Raft address.
func (n *Node) RaftAddress() string { return n.cfg.RaftAdvertise }

// OnExpired sets the function called when this node's lease expired.
func (n *Node) OnExpired(f func()) { n.onExpired.Store(&f) }

// Drain prepares a clean stop: it closes this incarnation's sessions with
// one command (after StartDrain, closing connections queue nothing), waits until the queue is replicated (or ctx
// ends), and hands leadership over if this node leads. The node keeps
// serving reads. Call it after the TCP server stopped.
func (n *Node) Drain(ctx context.Context) error {
	done := n.queue.enqueueWait(fsm.Command{Op: fsm.OpCloseOwner, Session: fsm.SessionID{Owner: n.cfg.NodeID, Incarnation: n.sessions.incarnation()}})
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		err = fmt.Errorf("drain: %w", ctx.Err())
	}
	if n.raft.State() == raft.Leader && n.voters() > 1 {
		if terr := n.raft.LeadershipTransfer().Error(); terr != nil && !errors.Is(terr, raft.ErrNotLeader) {
			n.logger.Warn("leadership transfer failed", "error", terr)
		} else {
			n.logger.Info("leadership transferred")
		}
	}
	return err
}

// Shutdown stops the loops, Raft and the stores. It is idempotent.
func (n *Node) Shutdown(ctx context.Context) error {
	n.shutOnce.Do(func() {
		n.cancel()
		done := make(chan struct{})
		go func() { n.wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			n.shutErr = fmt.Errorf("cluster shutdown: %w", ctx.Err())
		}
		if err := n.raft.Shutdown().Error(); err != nil && n.shutErr == nil {
			n.shutErr = fmt.Errorf("raft shutdown: %w", err)
		}
		n.closeTransportAndStore()
		n.logger.Info("node stopped")
	})
	return n.shutErr
}

func (n *Node) closeTransportAndStore() {
	if n.transport != nil {
		n.transport.Close()
	}
	if n.store != nil {
		n.store.Close()
	}
}

func (n *Node) voters() int {
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return 0
	}
	c := 0
	for _, s := range f.Configuration().Servers {
		if s.Suffrage == raft.Voter {
			c++
		}
	}
	return c
}

// newTCPTransport listens on cfg.RaftBind and returns the transport and the
// address it advertises (with the real port when the bind port was 0).
func newTCPTransport(cfg Config, logger hclog.Logger) (*raft.NetworkTransport, string, error) {
	ln, err := net.Listen("tcp", cfg.RaftBind)
	if err != nil {
		return nil, "", fmt.Errorf("raft listener: %w", err)
	}
	advertise := cfg.RaftAdvertise
	if host, port, _ := net.SplitHostPort(advertise); port == "0" {
		advertise = net.JoinHostPort(host, fmt.Sprint(ln.Addr().(*net.TCPAddr).Port))
	}
	t := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  &streamLayer{Listener: ln, advertise: hostAddr(advertise)},
		MaxPool: 3,
		Timeout: 10 * time.Second,
		Logger:  logger.Named("raft-net"),
	})
	return t, advertise, nil
}

// streamLayer is Raft's transport over plain TCP, advertising an address that
// may be a host name.
type streamLayer struct {
	net.Listener
	advertise net.Addr
}

func (s *streamLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return net.DialTimeout("tcp", string(addr), timeout)
}

func (s *streamLayer) Addr() net.Addr { return s.advertise }

type hostAddr string

func (a hostAddr) Network() string { return "tcp" }
func (a hostAddr) String() string  { return string(a) }

// SetTCPAdvertise sets the TCP address published in this node's member
// record; call it right after New, once the TCP listener is bound.
func (n *Node) SetTCPAdvertise(addr string) {
	n.memberMu.Lock()
	defer n.memberMu.Unlock()
	n.cfg.TCPAdvertise = addr
}
