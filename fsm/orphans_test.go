package fsm

import (
	"testing"
	"time"
)

const grace = 35 * time.Second

// Sessions of cluster-numbered incarnations: owner n1 opens incarnation 1
// (log index 1) and n2 opens 2, as in orphanSetup.
var (
	o11 = SessionID{"n1", 1, 1}
	o12 = SessionID{"n1", 1, 2}
	o21 = SessionID{"n2", 2, 1}
)

// orphanSetup opens n1 (index 1, nonce 11) and n2 (index 2, nonce 22), then
// o11 as peerA and o12 as peerB on n1.
func orphanSetup() []Command {
	return []Command{
		openInc("n1", 11, t0, grace), openInc("n2", 22, t0, grace),
		open(o11, peerA, t0), open(o12, peerB, t0),
		batch("n1", 1, 1, register(o11, "t", "c"), register(o12, "t", "")),
	}
}

// ownerState expects one owner's lease record in full.
func ownerState(id string, want Owner) check {
	return func(t *testing.T, r *Registry) {
		t.Helper()
		want.ID = id
		got, ok := r.Owner(id)
		if !ok {
			t.Fatalf("Owner(%q) missing", id)
		}
		if got != want {
			t.Errorf("Owner(%q) = %+v, want %+v", id, got, want)
		}
	}
}

func sessionsAre(want ...SessionID) check {
	return func(t *testing.T, r *Registry) {
		t.Helper()
		var got []SessionID
		for _, p := range r.Debug()["client::"] {
			got = append(got, p.Session)
		}
		if len(got) != len(want) {
			t.Errorf("sessions = %v, want %v", got, want)
			return
		}
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("sessions = %v, want %v", got, want)
				return
			}
		}
	}
}

func TestOpenIncarnation(t *testing.T) {
	runApplyCases(t, []applyCase{
		{
			name:   "the incarnation is the entry's index; renewal index too; the open answers it",
			result: Opened(2),
			cmds:   []Command{renew("n0", 9, t0), openInc("n1", 11, ns(time.Second), grace)},
			checks: []check{
				ownerState("n1", Owner{Incarnation: 2, Nonce: 11, RenewedAt: ns(time.Second), RenewIndex: 2}),
				orphansAre(nil),
			},
		},
		{
			name:   "sessions and batches of the opened incarnation apply",
			result: []error{nil, nil},
			cmds:   orphanSetup(),
			checks: []check{
				ownerState("n1", Owner{Incarnation: 1, Nonce: 11, RenewedAt: t0, RenewIndex: 1, Sessions: 2}),
				lookup("t", true, []string{"c"}, peerA, peerB),
				orphansAre(nil),
			},
		},
		{
			name:   "the same nonce again (a retried open) changes nothing and answers the first open's incarnation",
			result: Opened(1),
			cmds:   concat(orphanSetup(), []Command{openInc("n1", 11, ns(time.Second), grace)}),
			checks: []check{
				ownerState("n1", Owner{Incarnation: 1, Nonce: 11, RenewedAt: t0, RenewIndex: 1, Sessions: 2}),
				orphansAre(nil),
				lookup("t", true, []string{"c"}, peerA, peerB),
			},
		},
		{
			name:   "a new process orphans the live sessions until Time+Grace; they stay listed",
			result: Opened(6),
			cmds:   concat(orphanSetup(), []Command{openInc("n1", 12, ns(time.Second), grace)}),
			checks: []check{
				ownerState("n1", Owner{Incarnation: 6, Nonce: 12, RenewedAt: ns(time.Second), RenewIndex: 6}),
				orphansAre(map[SessionID]int64{o11: ns(36 * time.Second), o12: ns(36 * time.Second)}),
				lookup("t", true, []string{"c"}, peerA, peerB),
				nodes(node(peerA, "t", false), node(peerB, "t", false)),
			},
		},
		{
			name:   "an open after the incarnation ended orphans nothing more",
			result: Opened(7),
			cmds: concat(orphanSetup(), []Command{
				orphanOwner("n1", 1, ns(time.Minute)),
				openInc("n1", 12, ns(time.Second), grace),
			}),
			checks: []check{
				ownerState("n1", Owner{Incarnation: 7, Nonce: 12, RenewedAt: ns(time.Second), RenewIndex: 7}),
				orphansAre(map[SessionID]int64{o11: ns(time.Minute), o12: ns(time.Minute)}),
			},
		},
		{
			name:   "an open inside a batch is ignored",
			result: []error{nil, nil},
			cmds:   concat(orphanSetup(), []Command{batch("n1", 1, 2, openInc("n1", 12, t0, grace), createTopic("x"))}),
			checks: []check{
				ownerState("n1", Owner{Incarnation: 1, Nonce: 11, RenewedAt: t0, RenewIndex: 1, Sessions: 2}),
				topics("t", "x"),
			},
		},
		{
			name:   "a huge grace saturates instead of wrapping into the past",
			result: Opened(6),
			cmds:   concat(orphanSetup(), []Command{{Op: OpOpenIncarnation, Session: SessionID{Owner: "n1"}, Nonce: 12, Time: ns(0), Grace: 1<<63 - 1}}),
			checks: []check{
				orphansAre(map[SessionID]int64{o11: 1<<63 - 1, o12: 1<<63 - 1}),
			},
		},
	})
}

func TestBatchesOfNumberedIncarnations(t *testing.T) {
	runApplyCases(t, []applyCase{
		{
			name:   "a batch of the live incarnation applies once; a duplicate is ignored",
			cmds:   concat(orphanSetup(), []Command{batch("n1", 1, 2, createTopic("x")), deleteTopic("x"), batch("n1", 1, 2, createTopic("x"))}),
			result: []error{ErrDuplicateBatch},
			checks: []check{topics("t")},
		},
		{
			name:   "a batch of an earlier incarnation is ignored, even with a higher incarnation number",
			result: []error{ErrStaleIncarnation},
			cmds:   concat(orphanSetup(), []Command{openInc("n1", 12, t0, grace), batch("n1", 1, 9, createTopic("x")), batch("n1", 99, 1, createTopic("y"))}),
			checks: []check{topics("t")},
		},
		{
			// A retry of a batch that did apply, arriving after the node's
			// next incarnation opened, must not read as "not applied":
			// its waiter would send it again and apply it twice.
			name:   "a retried batch of the previous incarnation that applied is a duplicate, not stale",
			result: []error{ErrDuplicateBatch},
			cmds:   concat(orphanSetup(), []Command{openInc("n1", 12, t0, grace), batch("n1", 1, 1, createTopic("x"))}),
			checks: []check{topics("t")},
		},
		{
			name:   "a batch of the previous incarnation that never applied is stale",
			result: []error{ErrStaleIncarnation},
			cmds:   concat(orphanSetup(), []Command{openInc("n1", 12, t0, grace), batch("n1", 1, 2, createTopic("x"))}),
			checks: []check{topics("t")},
		},
		{
			name:   "the new incarnation's batches start over at sequence 1",
			result: []error{nil},
			cmds:   concat(orphanSetup(), []Command{openInc("n1", 12, t0, grace), batch("n1", 6, 1, createTopic("x"))}),
			checks: []check{
				topics("t", "x"),
			},
		},
		{
			name:   "no batch applies once the incarnation is orphaned",
			result: []error{ErrStaleIncarnation},
			cmds:   concat(orphanSetup(), []Command{orphanOwner("n1", 1, ns(time.Minute)), batch("n1", 1, 2, createTopic("x"))}),
			checks: []check{topics("t")},
		},
		{
			name:   "a renewal-opened owner keeps the old rule: higher incarnations apply",
			result: []error{ErrDuplicateBatch},
			cmds: []Command{
				renew("n1", 100, t0), batch("n1", 100, 5, createTopic("a")),
				batch("n1", 200, 1, createTopic("b")), batch("n1", 100, 6, createTopic("c")),
				batch("n1", 200, 1, createTopic("d")),
			},
			checks: []check{topics("a", "b")},
		},
		{
			name:   "a batch from an origin without an owner record applies (old rule)",
			result: []error{nil},
			cmds:   []Command{batch("n9", 5, 1, createTopic("a"))},
			checks: []check{
				topics("a"),
			},
		},
		{
			name:   "an upgraded node switches rules at its first open",
			result: []error{nil},
			cmds: []Command{
				renew("n1", 1_700_000_000_000_000_000, t0),
				batch("n1", 1_700_000_000_000_000_000, 5, createTopic("a")),
				openInc("n1", 7, t0, grace),
				batch("n1", 1_700_000_000_000_000_000, 6, createTopic("old")),
				batch("n1", 3, 1, createTopic("b")),
			},
			checks: []check{
				topics("a", "b"),
				ownerState("n1", Owner{Incarnation: 3, Nonce: 7, RenewedAt: t0, RenewIndex: 3}),
			},
		},
	})
}

func TestOrphanOwnerAndLease(t *testing.T) {
	runApplyCases(t, []applyCase{
		{
			name: "orphan-owner orphans every live session and ends the incarnation",
			cmds: concat(orphanSetup(), []Command{orphanOwner("n1", 1, ns(time.Minute))}),
			checks: []check{
				ownerState("n1", Owner{Incarnation: 1, Nonce: 11, Expired: true, RenewedAt: t0, RenewIndex: 1}),
				orphansAre(map[SessionID]int64{o11: ns(time.Minute), o12: ns(time.Minute)}),
				lookup("t", true, []string{"c"}, peerA, peerB),
				channels("t", "c"),
			},
		},
		{
			name: "commands of an orphaned incarnation change nothing",
			cmds: concat(orphanSetup(), []Command{
				orphanOwner("n1", 1, ns(time.Minute)),
				register(o11, "u", ""), unregister(o12, "t", ""), closeSession(o11),
				open(SessionID{"n1", 1, 3}, peerC, t0),
				renew("n1", 1, ns(time.Second), Touch{Seq: 1, LastUpdate: ns(time.Second)}),
			}),
			checks: []check{
				topics("t"),
				sessionsAre(o11, o12),
				orphansAre(map[SessionID]int64{o11: ns(time.Minute), o12: ns(time.Minute)}),
				lastUpdate(o11, t0, true),
			},
		},
		{
			name: "orphan-owner of another incarnation, or twice, changes nothing more",
			cmds: concat(orphanSetup(), []Command{
				orphanOwner("n1", 2, ns(time.Minute)), orphanOwner("n9", 1, ns(time.Minute)),
				orphanOwner("n1", 1, ns(time.Minute)), orphanOwner("n1", 1, ns(time.Hour)),
			}),
			checks: []check{
				orphansAre(map[SessionID]int64{o11: ns(time.Minute), o12: ns(time.Minute)}),
			},
		},
		{
			name: "orphan-lease with a stale renewal index changes nothing",
			cmds: concat(orphanSetup(), []Command{
				renew("n1", 1, ns(time.Second)), // index 6
				orphanLease("n1", 1, 1, ns(time.Minute)),
			}),
			checks: []check{
				ownerState("n1", Owner{Incarnation: 1, Nonce: 11, RenewedAt: ns(time.Second), RenewIndex: 6, Sessions: 2}),
				orphansAre(nil),
			},
		},
		{
			name: "orphan-lease with the renewal index the leader saw orphans",
			cmds: concat(orphanSetup(), []Command{
				renew("n1", 1, ns(time.Second)), // index 6
				orphanLease("n1", 1, 6, ns(time.Minute)),
			}),
			checks: []check{
				ownerState("n1", Owner{Incarnation: 1, Nonce: 11, Expired: true, RenewedAt: ns(time.Second), RenewIndex: 6}),
				orphansAre(map[SessionID]int64{o11: ns(time.Minute), o12: ns(time.Minute)}),
			},
		},
		{
			name: "the old expire-lease still drops sessions at once",
			cmds: concat(orphanSetup(), []Command{{Op: OpExpireLease, Session: SessionID{Owner: "n1", Incarnation: 1}, RenewIndex: 1}}),
			checks: []check{
				sessionsAre(),
				orphansAre(nil),
				lookup("t", true, []string{"c"}),
			},
		},
	})
}

func TestExpireOrphans(t *testing.T) {
	twoDeadlines := concat(orphanSetup(), []Command{
		openInc("n1", 12, t0, grace), // index 6: o11, o12 orphaned until t0+35s
		open(SessionID{"n1", 6, 1}, peerC, t0),
		orphanOwner("n1", 6, ns(time.Minute)),
	})
	runApplyCases(t, []applyCase{
		{
			name: "before any deadline nothing goes",
			cmds: concat(twoDeadlines, []Command{expireOrphans(ns(grace - 1))}),
			checks: []check{
				orphansAre(map[SessionID]int64{o11: ns(grace), o12: ns(grace), {"n1", 6, 1}: ns(time.Minute)}),
			},
		},
		{
			name: "a deadline equal to the leader's time has passed; keys stay as after a close",
			cmds: concat(twoDeadlines, []Command{expireOrphans(ns(grace))}),
			checks: []check{
				orphansAre(map[SessionID]int64{{"n1", 6, 1}: ns(time.Minute)}),
				sessionsAre(SessionID{"n1", 6, 1}),
				lookup("t", true, []string{"c"}),
				topics("t"),
			},
		},
		{
			name: "every passed deadline goes at once; live sessions never",
			cmds: concat(twoDeadlines, []Command{
				openInc("n2", 23, t0, grace), open(SessionID{"n2", 9, 1}, peerB, t0),
				expireOrphans(ns(time.Hour)),
			}),
			checks: []check{
				orphansAre(nil),
				sessionsAre(SessionID{"n2", 9, 1}),
			},
		},
	})
}

func TestOrphansSuperseded(t *testing.T) {
	restart := []Command{openInc("n1", 12, t0, grace)} // index 6: o11 (peerA), o12 (peerB) orphaned
	live := SessionID{"n2", 2, 1}
	runApplyCases(t, []applyCase{
		{
			name: "a live session of the same identity does not supersede before its first PING",
			cmds: concat(orphanSetup(), restart, []Command{
				open(live, peerA2, ns(time.Second)), register(live, "t", ""),
			}),
			checks: []check{
				orphansAre(map[SessionID]int64{o11: ns(grace), o12: ns(grace)}),
				lookupRemote("t", peerA.RemoteAddress, peerB.RemoteAddress),
			},
		},
		{
			name: "its first replicated PING supersedes the orphans of its identity only",
			cmds: concat(orphanSetup(), restart, []Command{
				open(live, peerA2, ns(time.Second)), register(live, "t", ""),
				renew("n2", 2, ns(2*time.Second), Touch{Seq: 1, LastUpdate: ns(2 * time.Second)}),
			}),
			checks: []check{
				orphansAre(map[SessionID]int64{o12: ns(grace)}),
				lookupRemote("t", peerA2.RemoteAddress, peerB.RemoteAddress),
				channels("t", "c"),
			},
		},
		{
			name: "a touch that does not advance last-update still settles",
			cmds: concat(orphanSetup(), restart, []Command{
				open(live, peerA2, ns(time.Second)),
				renew("n2", 2, ns(2*time.Second), Touch{Seq: 1, LastUpdate: t0}),
			}),
			checks: []check{
				orphansAre(map[SessionID]int64{o12: ns(grace)}),
				lastUpdate(live, ns(time.Second), true),
			},
		},
		{
			name: "sessions orphaned while a settled live one has their identity go at once",
			cmds: concat(orphanSetup(), []Command{
				open(live, peerA2, t0),
				renew("n2", 2, ns(time.Second), Touch{Seq: 1, LastUpdate: ns(time.Second)}),
				orphanOwner("n1", 1, ns(time.Minute)),
			}),
			checks: []check{
				orphansAre(map[SessionID]int64{o12: ns(time.Minute)}),
				sessionsAre(o12, live),
			},
		},
		{
			name: "a live but unsettled session of the identity keeps the new orphans",
			cmds: concat(orphanSetup(), []Command{
				open(live, peerA2, t0),
				orphanOwner("n1", 1, ns(time.Minute)),
			}),
			checks: []check{
				orphansAre(map[SessionID]int64{o11: ns(time.Minute), o12: ns(time.Minute)}),
			},
		},
		{
			name: "an owner's sessions of one identity are orphaned together, none supersedes another",
			cmds: []Command{
				openInc("n1", 11, t0, grace),
				open(o11, peerA, t0), open(o12, peerA2, t0),
				renew("n1", 1, ns(time.Second), Touch{Seq: 1, LastUpdate: ns(time.Second)}, Touch{Seq: 2, LastUpdate: ns(time.Second)}),
				orphanOwner("n1", 1, ns(time.Minute)),
			},
			checks: []check{
				orphansAre(map[SessionID]int64{o11: ns(time.Minute), o12: ns(time.Minute)}),
			},
		},
		{
			name: "a healthy close (the nsqd hung up) removes the orphans of its identity",
			cmds: concat(orphanSetup(), restart, []Command{
				open(live, peerA2, ns(time.Second)), closeSession(live),
			}),
			checks: []check{
				orphansAre(map[SessionID]int64{o12: ns(grace)}),
				sessionsAre(o12),
			},
		},
		{
			name: "sessions of renewal-opened incarnations count as settled from the start",
			cmds: concat(orphanSetup(), []Command{
				renew("n3", 5, t0), open(SessionID{"n3", 5, 1}, peerA2, t0),
				orphanOwner("n1", 1, ns(time.Minute)),
			}),
			checks: []check{
				orphansAre(map[SessionID]int64{o12: ns(time.Minute)}),
			},
		},
		{
			name: "the superseded orphan's registrations go; the live one's stay",
			cmds: concat(orphanSetup(), restart, []Command{
				open(live, peerA2, ns(time.Second)), register(live, "u", ""),
				renew("n2", 2, ns(2*time.Second), Touch{Seq: 1, LastUpdate: ns(2 * time.Second)}),
			}),
			checks: []check{
				lookup("t", true, []string{"c"}, peerB),
				lookup("u", true, nil, peerA2),
				debugKeys(map[string][]SessionID{
					"client::": {o12, live},
					"topic:t:": {o12},
					"topic:u:": {live},
				}),
			},
		},
	})
}
