package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/raftlookupd/raftlookupd/cluster"
	"github.com/raftlookupd/raftlookupd/fsm"
	"github.com/raftlookupd/raftlookupd/wire"
)

// keys is what /topics and /channels show on a node.
func keys(n *testNode) string {
	r := n.node.Registry()
	return fmt.Sprintf("topics=%s channels=%s", strings.Join(r.Topics(), ","), strings.Join(r.Channels("*"), ","))
}

func (tc *testCluster) waitKeys(want string, ids ...string) {
	tc.t.Helper()
	waitFor(tc.t, 10*time.Second, func() error {
		for _, id := range ids {
			if got := keys(tc.node(id)); got != want {
				return fmt.Errorf("%s: %s, want %s", id, got, want)
			}
		}
		return nil
	})
}

func propose(t *testing.T, n *testNode, cmds ...fsm.Command) {
	t.Helper()
	for _, c := range cmds {
		if err := n.node.Propose(context.Background(), c); err != nil {
			t.Fatalf("%v %s/%s: %v", c.Op, c.Topic, c.Channel, err)
		}
	}
}

// A backup taken through a follower holds every write committed before it;
// restoring it through another follower brings every node back to its keys,
// drops what was written since, and makes every node close its client
// connections; sessions opened afterwards register as usual.
func TestBackupAndRestoreInPlace(t *testing.T) {
	tc := newTestCluster(t)
	tc.startThree()
	l := tc.leader()
	var fs []*testNode
	for _, n := range tc.all() {
		if n != l {
			fs = append(fs, n)
		}
	}
	propose(t, fs[0],
		fsm.Command{Op: fsm.OpCreateChannel, Topic: "orders", Channel: "billing"},
		fsm.Command{Op: fsm.OpCreateTopic, Topic: "empty"})
	sid, err := l.node.OpenSession(peer(4150))
	if err != nil {
		t.Fatal(err)
	}
	if err := l.node.Register(sid, "events", "tail"); err != nil {
		t.Fatal(err)
	}
	// The registration is queued, not committed: the backup's barrier must
	// still see it once it commits before the backup is taken.
	tc.waitProducers("events", "nsqd:4150", "n1", "n2", "n3")
	const before = "topics=empty,events,orders channels=billing,tail"
	tc.waitKeys(before, "n1", "n2", "n3")

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	file, err := fs[1].node.Backup(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, info, err := fsm.DecodeBackup(file)
	if err != nil {
		t.Fatal(err)
	}
	if info.Topics != 3 || info.Channels != 2 || info.Sessions != 1 || b.Term == 0 {
		t.Fatalf("backup holds %+v, term %d", info, b.Term)
	}

	// Changes after the backup, then the restore undoes them.
	propose(t, fs[0],
		fsm.Command{Op: fsm.OpDeleteTopic, Topic: "orders"},
		fsm.Command{Op: fsm.OpCreateChannel, Topic: "later", Channel: "c"})
	tc.waitKeys("topics=empty,events,later channels=c,tail", "n1", "n2", "n3")
	drainExpired(tc)

	res, err := fs[0].node.Restore(ctx, file)
	if err != nil {
		t.Fatal(err)
	}
	if res.BackupIndex != b.Index || res.Topics != 3 || res.Channels != 2 {
		t.Fatalf("restore answered %+v", res)
	}
	tc.waitKeys(before, "n1", "n2", "n3")
	for _, n := range tc.all() {
		select {
		case <-n.expired:
		case <-time.After(10 * time.Second):
			t.Fatalf("%s did not close its client connections after the restore", n.id)
		}
	}
	// The old session is gone everywhere; a new one registers everywhere.
	tc.waitProducers("events", "", "n1", "n2", "n3")
	if err := l.node.Register(sid, "events", ""); !errors.Is(err, wire.ErrSessionGone) {
		t.Fatalf("register on a session from before the restore: %v, want wire.ErrSessionGone", err)
	}
	sid2 := openSession(t, fs[1], peer(5150))
	if err := fs[1].node.Register(sid2, "events", ""); err != nil {
		t.Fatal(err)
	}
	tc.waitProducers("events", "nsqd:5150", "n1", "n2", "n3")
	// Writes keep working and the cluster stays ready.
	propose(t, l, fsm.Command{Op: fsm.OpCreateTopic, Topic: "after"})
	tc.waitKeys("topics=after,empty,events,orders channels=billing,tail", "n1", "n2", "n3")
	tc.waitReady("n1", "n2", "n3")
}

// A backup restored into another cluster (fresh data dirs, same ids) gives
// it the same keys on every node, and its members publish their addresses
// again.
func TestRestoreIntoFreshCluster(t *testing.T) {
	src := newTestCluster(t)
	src.startThree()
	var cmds []fsm.Command
	for i := range 50 {
		cmds = append(cmds, fsm.Command{Op: fsm.OpCreateChannel, Topic: fmt.Sprintf("t%02d", i), Channel: "c"})
	}
	propose(t, src.follower(), cmds...)
	// Every node must have applied the last write before its keys are the
	// reference: a proposal returns once committed, not once applied
	// everywhere.
	var topics, channels []string
	for _, c := range cmds {
		topics = append(topics, c.Topic)
		channels = append(channels, c.Channel)
	}
	want := fmt.Sprintf("topics=%s channels=%s", strings.Join(topics, ","), strings.Join(channels, ","))
	src.waitKeys(want, "n1", "n2", "n3")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	file, err := src.leader().node.Backup(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range src.all() {
		n.stop()
	}

	dst := newTestCluster(t)
	dst.startThree()
	if got := keys(dst.node("n2")); got == want {
		t.Fatalf("fresh cluster already holds %s", got)
	}
	if _, err := dst.follower().node.Restore(ctx, file); err != nil {
		t.Fatal(err)
	}
	dst.waitKeys(want, "n1", "n2", "n3")
	waitFor(t, 10*time.Second, func() error {
		st, err := dst.node("n3").node.Status(ctx, true)
		if err != nil {
			return err
		}
		for _, m := range st.Members {
			if m.HTTPAddress == "" {
				return fmt.Errorf("member %s has no address record yet", m.ID)
			}
		}
		return nil
	})
}

func TestRestoreRefusesDamagedBackups(t *testing.T) {
	tc := newTestCluster(t)
	tc.startThree()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	file, err := tc.leader().node.Backup(ctx)
	if err != nil {
		t.Fatal(err)
	}
	damaged := slices.Clone(file)
	damaged[len(damaged)-1] ^= 1
	for name, data := range map[string][]byte{"damaged": damaged, "truncated": file[:len(file)/2], "empty": nil} {
		if _, err := tc.follower().node.Restore(ctx, data); !errors.Is(err, wire.ErrBadRequest) {
			t.Errorf("%s: %v, want wire.ErrBadRequest", name, err)
		}
	}
}

func drainExpired(tc *testCluster) {
	for _, n := range tc.all() {
		for len(n.expired) > 0 {
			<-n.expired
		}
	}
}

// A node cut off while a backup was restored learns of it from a later
// snapshot, which has other nodes' leases but not its own: its sessions are
// gone, so it closes its client connections too, and new ones register.
func TestRestoreReachesANodeCutOffDuringIt(t *testing.T) {
	tc := newTestCluster(t)
	tc.startThree()
	l, f := tc.leader(), tc.follower()
	sid, err := f.node.OpenSession(peer(4150))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.node.Register(sid, "cut", ""); err != nil {
		t.Fatal(err)
	}
	tc.waitProducers("cut", "nsqd:4150", "n1", "n2", "n3")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	file, err := l.node.Backup(ctx)
	if err != nil {
		t.Fatal(err)
	}
	drainExpired(tc)

	tc.partition(f.id)
	if _, err := l.node.Restore(ctx, file); err != nil {
		t.Fatal(err)
	}
	// The two connected nodes renew their leases; the leader's next
	// snapshot holds them, and it is what f installs.
	waitFor(t, 10*time.Second, func() error {
		if n := len(l.node.Registry().Owners()); n != 2 {
			return fmt.Errorf("%d leases on the leader, want 2", n)
		}
		return nil
	})
	if err := l.node.Raft().Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-f.expired:
		t.Fatal("the cut-off node closed its connections before it heard of the restore")
	default:
	}
	tc.reconnect(f.id)
	select {
	case <-f.expired:
	case <-time.After(10 * time.Second):
		t.Fatal("the cut-off node kept its client connections after installing the restored state")
	}
	tc.waitProducers("cut", "", "n1", "n2", "n3")
	sid2 := openSession(t, f, peer(5150))
	if err := f.node.Register(sid2, "cut", ""); err != nil {
		t.Fatal(err)
	}
	tc.waitProducers("cut", "nsqd:5150", "n1", "n2", "n3")
}

// A follower that fell behind and installs the leader's snapshot keeps its
// sessions: only a restored backup closes connections.
func TestCatchUpSnapshotKeepsSessions(t *testing.T) {
	tc := newTestCluster(t)
	var peers []cluster.Server
	for _, id := range []string{"n1", "n2", "n3"} {
		peers = append(peers, cluster.Server{ID: id, RaftAddress: raftAddr(id)})
	}
	for _, id := range []string{"n1", "n2", "n3"} {
		tc.start(id, func(c *cluster.Config) {
			c.Servers = peers
			c.TrailingLogs = 1
			c.LeaseTimeout = time.Minute // the cut-off follower's lease must not lapse
		})
	}
	tc.waitReady("n1", "n2", "n3")
	l, f := tc.leader(), tc.follower()
	sid, err := f.node.OpenSession(peer(4150))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.node.Register(sid, "kept", ""); err != nil {
		t.Fatal(err)
	}
	tc.waitProducers("kept", "nsqd:4150", "n1", "n2", "n3")
	drainExpired(tc)

	tc.partition(f.id)
	var cmds []fsm.Command
	for i := range 20 {
		cmds = append(cmds, fsm.Command{Op: fsm.OpCreateTopic, Topic: fmt.Sprintf("behind%02d", i)})
	}
	propose(t, l, cmds...)
	if err := l.node.Raft().Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	tc.reconnect(f.id)
	waitFor(t, 10*time.Second, func() error {
		if !slices.Contains(f.node.Registry().Topics(), "behind19") {
			return fmt.Errorf("%s has not caught up", f.id)
		}
		if st := f.node.Raft().Stats(); st["last_snapshot_index"] == "0" {
			return fmt.Errorf("%s caught up without installing a snapshot", f.id)
		}
		return nil
	})
	tc.waitProducers("kept", "nsqd:4150", "n1", "n2", "n3")
	if err := f.node.Register(sid, "kept2", ""); err != nil {
		t.Fatalf("the session is gone on its node: %v", err)
	}
	tc.waitProducers("kept2", "nsqd:4150", "n1", "n2", "n3")
	if len(f.expired) != 0 {
		t.Fatal("a catch-up snapshot closed the follower's client connections")
	}
}

// openSession opens a session once the node has an incarnation: after a
// restore it opens its next one first.
func openSession(t *testing.T, n *testNode, p fsm.PeerInfo) fsm.SessionID {
	t.Helper()
	var sid fsm.SessionID
	waitFor(t, 10*time.Second, func() error {
		var err error
		sid, err = n.node.OpenSession(p)
		return err
	})
	return sid
}
