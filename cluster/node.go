package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
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
// owner lease, and both halves of the node-to-node RPC. See doc.go for the
// invariants it keeps.
type Node struct {
	cfg    Config
	logger hclog.Logger

	fsm       *appliedFSM
	raft      *raft.Raft
	transport raft.Transport
	store     *raftboltdb.BoltStore

	mux     *mux      // nil with a test network
	tls     *tlsFiles // nil without TLS
	rpc     *rpcServer
	rpcc    *rpcClient
	members *memberIPs

	queue    *queue
	seq      *sequencer // orders batches proposed on this node while it leads
	nudge    *nudger    // tells followers promptly that a burst committed (nudge.go)
	sessions *sessions
	leader   leadership
	// caughtUp is set once this node applied a commit index it obtained
	// from a leader after it started. Until then its state may be far
	// behind (a restarted follower replays nothing until the leader's
	// replication reaches it), so bounded reads and readiness wait for it.
	caughtUp atomic.Bool
	// fresh is when (ns after born) this node last knew its applied state
	// to include the leader's commit index; bounded reads check its age.
	born  time.Time
	fresh atomic.Int64
	// raftUp is set once n.raft is, and raftStarted then closed; the Raft
	// port serves before that.
	raftUp      atomic.Bool
	raftStarted chan struct{}
	// startWaiters holds a token per raft stream waiting for Raft to start
	// (maxStartWaiters at most).
	startWaiters chan struct{}
	// expired receives a value when this node learns its lease expired and
	// its sessions were dropped: client connections must close so nsqd
	// reconnects and registers again.
	expired chan struct{}
	// incarnationOver wakes incarnationLoop to open the next incarnation.
	incarnationOver chan struct{}
	// serving is false while the node cannot commit (serving.go): it then
	// acknowledges no nsqd.
	serving atomic.Bool
	// retireIndex is the configuration index at which the leader said it
	// is removing this node (serving.go); 0: not retiring.
	retireIndex atomic.Uint64
	// snaps is Raft's snapshot store (retiredSince reads its metadata).
	snaps raft.SnapshotStore

	metrics nodeMetrics
	counts  registryCounts
	// found is what discovery (-bootstrap-expect) learnt: discovery.go.
	found discovered

	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	shutOnce sync.Once
	shutErr  error
	// compactMu serializes compactLog, which lowers raft's trailing logs
	// for one snapshot.
	compactMu sync.Mutex
}

// New opens the stores in cfg.DataDir, starts Raft and the node-to-node RPC
// on the Raft port, bootstraps when the configuration asks for it, and
// starts the node's loops. On error everything it opened is closed again,
// cfg.RaftListener included.
func New(cfg Config, logger hclog.Logger) (n *Node, err error) {
	if err := cfg.Validate(); err != nil {
		if cfg.RaftListener != nil {
			cfg.RaftListener.Close()
		}
		return nil, fmt.Errorf("cluster config: %w", err)
	}
	if cfg.Network == nil && cfg.RaftListener == nil {
		return nil, errors.New("cluster config: no raft listener")
	}
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	n = &Node{
		cfg:     cfg,
		logger:  logger,
		fsm:     newAppliedFSM(cfg.NodeID),
		expired: make(chan struct{}, 1),

		incarnationOver: make(chan struct{}, 1),
		leader:          newLeadership(),
		metrics:         nodeMetrics{commitLatency: metrics.NewHistogram(metrics.LatencyBuckets)},
		born:            time.Now(),
		seq:             newSequencer(),
		nudge:           newNudger(),
		raftStarted:     make(chan struct{}),
		startWaiters:    make(chan struct{}, maxStartWaiters),
	}
	n.serving.Store(true)
	n.ctx, n.cancel = context.WithCancel(context.Background())
	defer func() {
		if err != nil {
			n.cancel()
			n.closeNetworkAndStore()
		}
	}()

	// The network first: it owns the listener, which must close on error.
	var rpcLn net.Listener
	var dial func(ctx context.Context, addr string) (net.Conn, error)
	if cfg.Network != nil {
		n.transport, rpcLn, dial = cfg.Network.Transport, cfg.Network.RPC, cfg.Network.Dial
	} else {
		if cfg.TLS.Enabled() {
			if n.tls, err = loadTLS(cfg.TLS); err != nil {
				cfg.RaftListener.Close()
				return nil, err
			}
		}
		var admit func(net.Addr) bool
		if n.tls == nil {
			admit = n.raftStreamAllowed
		}
		n.mux = newMux(cfg.RaftListener, n.tls, logger.Named("raft-port"), admit)
		n.transport = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
			Stream:  &raftStream{m: n.mux, advertise: hostAddr(cfg.RaftAdvertise)},
			MaxPool: 3,
			Timeout: 10 * time.Second,
			Logger:  logger.Named("raft-net"),
		})
		rpcLn = n.mux.rpc
		dial = func(ctx context.Context, addr string) (net.Conn, error) { return n.mux.dial(ctx, addr, streamRPC) }
	}
	n.rpcc = newRPCClient(dial, cfg.AdminToken, cfg.WriteTimeout)
	n.members = &memberIPs{servers: n.serverAddresses, resolve: lookupIP}
	n.rpc = newRPCServer(n, rpcLn, logger.Named("rpc"))

	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	// NoFreelistSync: a commit does not rewrite bolt's free-page list (it
	// is rebuilt by a scan at open). Entries are still fsynced; each commit
	// just writes less, which shortens every Raft round trip.
	path := filepath.Join(cfg.DataDir, "raft.db")
	n.store, err = raftboltdb.New(raftboltdb.Options{
		Path:        path,
		BoltOptions: &bbolt.Options{Timeout: time.Second, NoFreelistSync: true, FreelistType: bbolt.FreelistMapType},
	})
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.DataDir, 2, logger.Named("snapshot"))
	n.snaps = snaps
	if err != nil {
		return nil, fmt.Errorf("snapshot store: %w", err)
	}

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.NodeID)
	rc.HeartbeatTimeout = cfg.HeartbeatTimeout
	rc.ElectionTimeout = cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = cfg.LeaderLeaseTimeout
	rc.CommitTimeout = cfg.CommitTimeout
	rc.SnapshotInterval = cfg.SnapshotInterval
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	rc.TrailingLogs = cfg.TrailingLogs
	rc.NotifyCh = n.leader.notify
	rc.Logger = logger.Named("raft")
	// The legacy metrics put peer ids into metric names; the labelled ones
	// carry the same figures.
	rc.NoLegacyTelemetry = true
	// Proposals queue in a buffer the leader loop drains at once, so the
	// batches that arrive while the leader writes its log go to disk
	// together, one fsync for all of them; unbuffered, each waited for the
	// loop and took a write of its own (a storm's tail was a dozen fsyncs
	// in a row). Order is kept (one FIFO channel, fed under the
	// sequencer's lock), and a node that stops leading answers what is
	// still buffered with ErrNotLeader, which the queue retries. A
	// proposal still buffered when Raft shuts down is never answered, so
	// Shutdown stops every loop that proposes (and the RPC) before Raft.
	rc.BatchApplyCh = true

	recovered, err := recoverCluster(cfg, rc, n.store, n.store, snaps, n.transport)
	if err != nil {
		return nil, err
	}
	if recovered {
		logger.Warn("recovered from quorum loss: Raft configuration rewritten from "+PeersFile, "data_dir", cfg.DataDir)
	}
	existing, err := raft.HasExistingState(n.store, n.store, snaps)
	if err != nil {
		return nil, fmt.Errorf("inspect raft state: %w", err)
	}
	// Raft reads back every entry it just wrote: the leader to send it to
	// the followers, every node to apply it. The cache answers those reads
	// from memory, not with a bolt read and a decode each (a storm's
	// three nodes used a ninth less CPU).
	logs, err := raft.NewLogCache(logCacheEntries, n.store)
	if err != nil {
		return nil, fmt.Errorf("log cache: %w", err)
	}
	r, err := raft.NewRaft(rc, n.fsm, logs, n.store, snaps, n.transport)
	if err != nil {
		return nil, fmt.Errorf("start raft: %w", err)
	}
	n.raft = r
	n.raftUp.Store(true)
	close(n.raftStarted)
	// The state NewRaft restored at start is this node's own: no session of
	// this process can be in it or lost from it.
	select {
	case <-n.fsm.sessionsLost:
	default:
	}
	defer func() {
		if err != nil {
			n.raft.Shutdown().Error()
		}
	}()
	if !existing {
		if err := n.bootstrap(); err != nil {
			return nil, err
		}
	} else {
		logger.Info("restarting from existing state", "data_dir", cfg.DataDir)
	}

	n.queue = newQueue(queueConfig{
		origin:   cfg.NodeID,
		maxBatch: cfg.MaxBatch,
		maxQueue: cfg.MaxQueue,
		commit:   n.commitBatch,
		applied:  n.waitLocal,
		refused:  func(ids []fsm.SessionID) { n.sessions.refused(ids) },
		stale:    func(inc uint64) { n.endIncarnation(inc, leaseLapsed) },
		metrics:  &n.metrics,
		logger:   logger.Named("queue"),
	})
	n.sessions = newSessions(cfg.NodeID, cfg.InactiveProducerTimeout, n.queue)

	n.start(n.rpc.serve)
	n.start(n.observeLeaders)
	n.start(func() { n.queue.run(n.ctx) })
	n.start(n.leaseLoop)
	n.start(n.leaderLoop)
	n.start(n.incarnationLoop)
	n.start(n.freshnessLoop)
	n.start(n.nudgeLoop)
	n.start(n.restoredLoop)
	n.start(n.snapshotAfterRemovals)
	switch {
	case existing || len(cfg.Join) == 0:
	case cfg.BootstrapExpect > 0:
		n.start(n.discoverLoop)
	default:
		n.start(n.joinLoop)
	}
	logger.Info("node started", "id", cfg.NodeID, "raft", cfg.RaftAdvertise, "tls", n.tls != nil)
	return n, nil
}

func (n *Node) bootstrap() error {
	var servers []raft.Server
	switch {
	case len(n.cfg.Servers) > 0:
		for _, p := range n.cfg.Servers {
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

// Expired receives a value each time this node learns that the leader
// expired its lease and dropped its sessions; the owner of the client
// connections must then close them all.
func (n *Node) Expired() <-chan struct{} { return n.expired }

// ReloadTLS reads the certificate, key and CA files again; new handshakes
// use them, established streams keep theirs. Without TLS it does nothing.
func (n *Node) ReloadTLS() error {
	if n.tls == nil {
		return nil
	}
	if err := n.tls.reload(); err != nil {
		return err
	}
	n.logger.Info("TLS certificates reloaded")
	return nil
}

func (n *Node) tlsOn() bool { return n.tls != nil }

// Shutdown stops the loops, the RPC, Raft and the stores. It is idempotent.
func (n *Node) Shutdown(ctx context.Context) error {
	n.shutOnce.Do(func() {
		n.cancel()
		if err := n.rpc.shutdown(ctx); err != nil {
			n.logger.Warn("node-to-node requests cut at shutdown", "error", err)
		}
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
		n.closeNetworkAndStore()
		n.logger.Info("node stopped")
	})
	return n.shutErr
}

func (n *Node) closeNetworkAndStore() {
	if n.rpcc != nil {
		n.rpcc.close()
	}
	if c, ok := n.transport.(interface{ Close() error }); ok {
		c.Close()
	}
	if n.mux != nil {
		n.mux.Close()
	}
	if n.store != nil {
		n.store.Close()
	}
}

// configuration returns the latest Raft configuration's servers (nil when
// raft cannot say).
// raftStartWait bounds how long a Raft stream waits for Raft to start; the
// leader's own RPC timeout is 10s.
const raftStartWait = 10 * time.Second

// logCacheEntries is how many of the latest log entries Raft keeps in
// memory: more than are ever in flight at once. A queue's batch carries
// at most MaxBatch commands, tens of kB in a storm.
const logCacheEntries = 32

// maxStartWaiters bounds the raft streams waiting for Raft to start: a
// leader holds a few per follower (its connection pool and pipeline), and
// a candidate one per vote request.
const maxStartWaiters = 32

func (n *Node) configuration() []raft.Server {
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return nil
	}
	return f.Configuration().Servers
}

// raftStreamAllowed admits a raft stream, when TLS is off, by the rule of
// the RPC streams (a member's address, or loopback), and from anyone while
// this node has no configuration: a node waiting to be added cannot know
// the address of the leader that will add it, and has nothing to lose yet.
//
// A stream that arrives while Raft is still starting (restoring a snapshot
// can take a second) waits for it rather than being refused: a leader backs
// off longer after every refused attempt, and that wait, not the restore,
// was most of a restarted follower's time to serve again.
func (n *Node) raftStreamAllowed(remote net.Addr) bool {
	if !n.raftUp.Load() {
		// Before the member check, so anyone could be held here: only a
		// few at a time, the others refused at once (a member retries).
		select {
		case n.startWaiters <- struct{}{}:
			defer func() { <-n.startWaiters }()
		default:
			return false
		}
		select {
		case <-n.raftStarted:
		case <-n.ctx.Done():
			return false
		case <-time.After(raftStartWait):
			return false
		}
	}
	if len(n.configuration()) == 0 {
		return true
	}
	return n.members.allowed(remote.String())
}

func (n *Node) serverAddresses() map[string]string {
	out := map[string]string{}
	for _, s := range n.configuration() {
		out[string(s.ID)] = string(s.Address)
	}
	return out
}

func (n *Node) serverAddress(id string) (raft.ServerAddress, bool) {
	for _, s := range n.configuration() {
		if string(s.ID) == id {
			return s.Address, true
		}
	}
	return "", false
}

func (n *Node) isMember() bool {
	_, ok := n.serverAddress(n.cfg.NodeID)
	return ok
}

func (n *Node) voters() int {
	c := 0
	for _, s := range n.configuration() {
		if s.Suffrage == raft.Voter {
			c++
		}
	}
	return c
}

func lookupIP(host string) ([]net.IP, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return net.DefaultResolver.LookupIP(ctx, "ip", host)
}
