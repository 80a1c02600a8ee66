package fsm

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// applyCase applies cmds (one log entry each) to a fresh FSM, expects the
// result of the last one, then runs every check on the live registry and on a
// registry restored from its snapshot.
type applyCase struct {
	name   string
	cmds   []Command
	result any // expected result of the last command: nil, a sentinel error, or []error
	checks []check
}

func runApplyCases(t *testing.T, cases []applyCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			got := h.apply(tc.cmds...)
			checkResult(t, got, tc.result)
			checkInvariants(t, h.reg())
			for _, c := range tc.checks {
				c(t, h.reg())
			}
			r := restored(t, snapshotBytes(t, h.f)).Registry()
			checkInvariants(t, r)
			for _, c := range tc.checks {
				c(t, r)
			}
		})
	}
}

func checkResult(t *testing.T, got, want any) {
	t.Helper()
	switch w := want.(type) {
	case nil:
		if got != nil {
			t.Errorf("result = %#v, want nil", got)
		}
	case error:
		err, ok := got.(error)
		if !ok || !errors.Is(err, w) {
			t.Errorf("result = %#v, want %v", got, w)
		}
	default:
		if !reflect.DeepEqual(got, want) {
			t.Errorf("result = %#v, want %#v", got, want)
		}
	}
}

// docs/COMPATIBILITY.md#registry-transitions, one row (or one nuance of a row) per case.
func TestApplyStateTransitions(t *testing.T) {
	runApplyCases(t, []applyCase{
		{
			name: "identify adds the session to client:: with its last update",
			cmds: setup(s1),
			checks: []check{
				debugKeys(map[string][]SessionID{"client::": {s1}}),
				nodes(node(peerA)),
				lastUpdate(s1, t0, true),
				topics(),
				lookup("t", false, nil),
			},
		},
		{
			name: "REGISTER t adds the session to topic:t:",
			cmds: concat(setup(s1), []Command{register(s1, "t", "")}),
			checks: []check{
				topics("t"),
				channels("t"),
				lookup("t", true, nil, peerA),
				debugKeys(map[string][]SessionID{"client::": {s1}, "topic:t:": {s1}}),
				nodes(node(peerA, "t", false)),
			},
		},
		{
			name: "REGISTER t c adds the session to channel:t:c and topic:t:",
			cmds: concat(setup(s1), []Command{register(s1, "t", "c")}),
			checks: []check{
				topics("t"),
				channels("t", "c"),
				lookup("t", true, []string{"c"}, peerA),
				debugKeys(map[string][]SessionID{"client::": {s1}, "topic:t:": {s1}, "channel:t:c": {s1}}),
				nodes(node(peerA, "t", false)),
			},
		},
		{
			name: "REGISTER is idempotent",
			cmds: concat(setup(s1), []Command{
				register(s1, "t", "c"), register(s1, "t", "c"), register(s1, "t", ""), register(s1, "t", "c2"),
			}),
			checks: []check{
				channels("t", "c", "c2"),
				lookup("t", true, []string{"c", "c2"}, peerA),
				debugKeys(map[string][]SessionID{"client::": {s1}, "topic:t:": {s1}, "channel:t:c": {s1}, "channel:t:c2": {s1}}),
			},
		},
		{
			name: "REGISTER by a session that is not open is ignored",
			cmds: concat(setup(s1), []Command{register(s2, "t", "c"), closeSession(s1), register(s1, "u", "")}),
			checks: []check{
				topics(),
				channels("t"),
				lookup("t", false, nil),
				debugKeys(nil),
			},
		},
		{
			// nsqlookupd TestChannelUnregister.
			name: "UNREGISTER t c keeps a non-ephemeral channel key and the topic producer",
			cmds: concat(setup(s1), []Command{register(s1, "t", "c"), unregister(s1, "t", "c")}),
			checks: []check{
				topics("t"),
				channels("t", "c"),
				lookup("t", true, []string{"c"}, peerA),
				// A key with zero producers is absent from /debug.
				debugKeys(map[string][]SessionID{"client::": {s1}, "topic:t:": {s1}}),
			},
		},
		{
			name: "UNREGISTER t c#ephemeral keeps the key while another producer remains",
			cmds: concat(setup(s1, s2), []Command{
				register(s1, "t", "c#ephemeral"), register(s2, "t", "c#ephemeral"), unregister(s1, "t", "c#ephemeral"),
			}),
			checks: []check{
				channels("t", "c#ephemeral"),
				lookup("t", true, []string{"c#ephemeral"}, peerA, peerB),
				debugKeys(map[string][]SessionID{"client::": {s1, s2}, "topic:t:": {s1, s2}, "channel:t:c#ephemeral": {s2}}),
			},
		},
		{
			name: "UNREGISTER t c#ephemeral by the last producer deletes the channel key",
			cmds: concat(setup(s1, s2), []Command{
				register(s1, "t", "c#ephemeral"), register(s2, "t", "c#ephemeral"), register(s1, "t", "d#ephemeral"),
				unregister(s1, "t", "c#ephemeral"), unregister(s2, "t", "c#ephemeral"),
			}),
			checks: []check{
				topics("t"),
				channels("t", "d#ephemeral"),
				lookup("t", true, []string{"d#ephemeral"}, peerA, peerB),
			},
		},
		{
			// RemoveProducer on a key without that producer leaves 0, and the
			// ephemeral check runs anyway.
			name: "UNREGISTER t c#ephemeral by a non-producer deletes an empty ephemeral key",
			cmds: concat(setup(s1), []Command{createChannel("t", "c#ephemeral"), unregister(s1, "t", "c#ephemeral")}),
			checks: []check{
				topics("t"),
				channels("t"),
				lookup("t", true, nil),
			},
		},
		{
			name: "UNREGISTER of unknown topic, channel or session is a no-op",
			cmds: concat(setup(s1), []Command{
				register(s1, "t", "c"),
				unregister(s1, "nope", "c"), unregister(s1, "t", "nope"), unregister(s1, "nope", ""),
				unregister(s2, "t", "c"), unregister(s2, "t", ""),
			}),
			checks: []check{
				topics("t"),
				channels("t", "c"),
				lookup("t", true, []string{"c"}, peerA),
				debugKeys(map[string][]SessionID{"client::": {s1}, "topic:t:": {s1}, "channel:t:c": {s1}}),
			},
		},
		{
			name: "UNREGISTER t strips the session from every channel of t, keys stay",
			cmds: concat(setup(s1, s2), []Command{
				register(s1, "t", "c1"), register(s1, "t", "c2"), register(s1, "t", "e#ephemeral"),
				register(s2, "t", "c1"), register(s1, "u", "c1"),
				unregister(s1, "t", ""),
			}),
			checks: []check{
				topics("t", "u"),
				channels("t", "c1", "c2", "e#ephemeral"),
				lookup("t", true, []string{"c1", "c2", "e#ephemeral"}, peerB),
				lookup("u", true, []string{"c1"}, peerA),
				debugKeys(map[string][]SessionID{
					"client::": {s1, s2}, "topic:t:": {s2}, "channel:t:c1": {s2},
					"topic:u:": {s1}, "channel:u:c1": {s1},
				}),
				nodes(node(peerA, "u", false), node(peerB, "t", false)),
			},
		},
		{
			name: "UNREGISTER t keeps a non-ephemeral topic key with zero producers",
			cmds: concat(setup(s1), []Command{register(s1, "t", "c"), unregister(s1, "t", "")}),
			checks: []check{
				topics("t"),
				lookup("t", true, []string{"c"}),
				nodes(node(peerA)),
				debugKeys(map[string][]SessionID{"client::": {s1}}),
			},
		},
		{
			name: "UNREGISTER t#ephemeral deletes the topic key but not its channel keys",
			cmds: concat(setup(s1), []Command{
				register(s1, "t#ephemeral", "c"), register(s1, "t#ephemeral", "c#ephemeral"), unregister(s1, "t#ephemeral", ""),
			}),
			checks: []check{
				topics(),
				lookup("t#ephemeral", false, nil),
				channels("t#ephemeral", "c", "c#ephemeral"),
				channels("*", "c", "c#ephemeral"),
				debugKeys(map[string][]SessionID{"client::": {s1}}),
			},
		},
		{
			name: "UNREGISTER t#ephemeral keeps the topic key while another producer remains",
			cmds: concat(setup(s1, s2), []Command{
				register(s1, "t#ephemeral", ""), register(s2, "t#ephemeral", ""), unregister(s1, "t#ephemeral", ""),
			}),
			checks: []check{
				topics("t#ephemeral"),
				lookup("t#ephemeral", true, nil, peerB),
			},
		},
		{
			name: "UNREGISTER t#ephemeral by a non-producer deletes an empty ephemeral topic key",
			cmds: concat(setup(s1), []Command{createTopic("t#ephemeral"), unregister(s1, "t#ephemeral", "")}),
			checks: []check{
				topics(),
				lookup("t#ephemeral", false, nil),
				channels("t#ephemeral"),
			},
		},
		{
			name: "REGISTER after the ephemeral topic key went brings the key back with the old channels",
			cmds: concat(setup(s1), []Command{
				register(s1, "t#ephemeral", "c"), unregister(s1, "t#ephemeral", ""), register(s1, "t#ephemeral", ""),
			}),
			checks: []check{
				topics("t#ephemeral"),
				lookup("t#ephemeral", true, []string{"c"}, peerA),
			},
		},
		{
			// nsqlookupd TestBasicLookupd, and docs/COMPATIBILITY.md#tcp-close.
			name: "connection close removes the session from every key and deletes no key",
			cmds: concat(setup(s1, s2), []Command{
				register(s1, "t", "c"), register(s1, "t#ephemeral", "c#ephemeral"), register(s1, "x#ephemeral", ""),
				register(s2, "t", ""),
				closeSession(s1),
			}),
			checks: []check{
				topics("t", "t#ephemeral", "x#ephemeral"),
				channels("t", "c"),
				channels("t#ephemeral", "c#ephemeral"),
				lookup("t", true, []string{"c"}, peerB),
				lookup("t#ephemeral", true, []string{"c#ephemeral"}),
				lookup("x#ephemeral", true, nil),
				debugKeys(map[string][]SessionID{"client::": {s2}, "topic:t:": {s2}}),
				nodes(node(peerB, "t", false)),
				lastUpdate(s1, 0, false),
				ownerIs("n1", 1, false, 1),
			},
		},
		{
			name: "close of an unknown or already closed session is a no-op",
			cmds: concat(setup(s1), []Command{register(s1, "t", ""), closeSession(s2), closeSession(s21)}),
			checks: []check{
				lookup("t", true, nil, peerA),
				ownerIs("n1", 1, false, 1),
			},
		},
		{
			name:   "HTTP topic/create ensures topic:t: with no producers",
			cmds:   []Command{createTopic("t"), createTopic("t")},
			checks: []check{topics("t"), channels("t"), lookup("t", true, nil), debugKeys(nil), nodes()},
		},
		{
			name: "HTTP topic/create keeps existing producers and channels",
			cmds: concat(setup(s1), []Command{register(s1, "t", "c"), createTopic("t")}),
			checks: []check{
				lookup("t", true, []string{"c"}, peerA),
			},
		},
		{
			name:   "HTTP channel/create ensures channel:t:c then topic:t:",
			cmds:   []Command{createChannel("t", "c"), createChannel("t", "c"), createChannel("t", "d#ephemeral")},
			checks: []check{topics("t"), channels("t", "c", "d#ephemeral"), lookup("t", true, []string{"c", "d#ephemeral"}), debugKeys(nil)},
		},
		{
			name: "HTTP channel/create restores a deleted ephemeral topic key",
			cmds: concat(setup(s1), []Command{
				register(s1, "t#ephemeral", "c"), unregister(s1, "t#ephemeral", ""), createChannel("t#ephemeral", "d"),
			}),
			checks: []check{topics("t#ephemeral"), lookup("t#ephemeral", true, []string{"c", "d"})},
		},
		{
			name: "HTTP topic/delete deletes the channel keys and the topic key with producers",
			cmds: concat(setup(s1, s2), []Command{
				register(s1, "t", "c1"), register(s2, "t", "c2"), createChannel("t", "c3"),
				register(s1, "t2", "c1"), register(s1, "tt", ""),
				deleteTopic("t"),
			}),
			checks: []check{
				topics("t2", "tt"),
				channels("t"),
				channels("t2", "c1"),
				lookup("t", false, nil),
				lookup("t2", true, []string{"c1"}, peerA),
				debugKeys(map[string][]SessionID{"client::": {s1, s2}, "topic:t2:": {s1}, "channel:t2:c1": {s1}, "topic:tt:": {s1}}),
				nodes(node(peerA, "t2", false, "tt", false), node(peerB)),
			},
		},
		{
			name: "HTTP topic/delete of a topic with only channel keys deletes them",
			cmds: concat(setup(s1), []Command{
				register(s1, "t#ephemeral", "c"), unregister(s1, "t#ephemeral", ""), deleteTopic("t#ephemeral"),
			}),
			checks: []check{topics(), channels("t#ephemeral"), channels("*")},
		},
		{
			name:   "HTTP topic/delete of an unknown topic is a no-op",
			cmds:   []Command{createTopic("t"), deleteTopic("u"), deleteTopic("")},
			checks: []check{topics("t")},
		},
		{
			name: "REGISTER after HTTP topic/delete creates a fresh record",
			cmds: concat(setup(s1), []Command{
				register(s1, "t", "c"), tombstone("t", "a.example:4151", t0), deleteTopic("t"), register(s1, "t", ""),
			}),
			checks: []check{
				channels("t"),
				lookup("t", true, nil, peerA),
				nodes(node(peerA, "t", false)),
			},
		},
		{
			name: "HTTP channel/delete deletes channel:t:c and leaves the topic",
			cmds: concat(setup(s1), []Command{
				register(s1, "t", "c"), register(s1, "t", "d"), deleteChannel("t", "c"),
			}),
			result: nil,
			checks: []check{
				topics("t"),
				channels("t", "d"),
				lookup("t", true, []string{"d"}, peerA),
				debugKeys(map[string][]SessionID{"client::": {s1}, "topic:t:": {s1}, "channel:t:d": {s1}}),
			},
		},
		{
			name:   "HTTP channel/delete of the last channel of a key-less topic forgets the topic",
			cmds:   concat(setup(s1), []Command{register(s1, "t#ephemeral", "c"), unregister(s1, "t#ephemeral", ""), deleteChannel("t#ephemeral", "c")}),
			checks: []check{topics(), channels("t#ephemeral"), lookup("*", false, nil)},
		},
		{
			name:   "HTTP channel/delete of an unknown topic is ErrChannelNotFound",
			cmds:   []Command{deleteChannel("t", "c")},
			result: ErrChannelNotFound,
			checks: []check{topics(), channels("t")},
		},
		{
			name:   "HTTP channel/delete of an unknown channel is ErrChannelNotFound",
			cmds:   []Command{createChannel("t", "c"), deleteChannel("t", "d")},
			result: ErrChannelNotFound,
			checks: []check{topics("t"), channels("t", "c")},
		},
		{
			name:   "HTTP channel/delete twice is ErrChannelNotFound the second time",
			cmds:   []Command{createChannel("t", "c"), deleteChannel("t", "c"), deleteChannel("t", "c")},
			result: ErrChannelNotFound,
			checks: []check{topics("t"), channels("t")},
		},
	})
}

func TestApplyTombstones(t *testing.T) {
	reg := concat(setup(s1, s2), []Command{register(s1, "t1", "c1"), register(s1, "t2", "c2"), register(s2, "t1", "")})
	runApplyCases(t, []applyCase{
		{
			// nsqlookupd TestTombstoneRecover, with the default 45 s lifetime.
			name: "tombstone hides the producer of one topic for the lifetime",
			cmds: concat(reg, []Command{tombstone("t1", "a.example:4151", t0)}),
			checks: []check{
				lookup("t1", true, []string{"c1"}, peerB),
				lookup("t2", true, []string{"c2"}, peerA),
				lookupAt(at(tombLife-1), "t1", true, []string{"c1"}, peerB),
				// IsTombstoned is (now - at) < lifetime: at exactly the lifetime it is visible.
				lookupAt(at(tombLife), "t1", true, []string{"c1"}, peerA, peerB),
				// TestTombstonedNodes: /nodes keeps the producer and flags the topic.
				nodes(node(peerA, "t1", true, "t2", false), node(peerB, "t1", false)),
				nodesAt(at(tombLife), node(peerA, "t1", false, "t2", false), node(peerB, "t1", false)),
				// /topics, /channels, /debug are unfiltered.
				topics("t1", "t2"),
				channels("t1", "c1"),
				debugKeys(map[string][]SessionID{
					"client::": {s1, s2}, "topic:t1:": {s1, s2}, "channel:t1:c1": {s1}, "topic:t2:": {s1}, "channel:t2:c2": {s1},
				}),
			},
		},
		{
			name: "a zero tombstone lifetime shows tombstoned producers",
			cmds: concat(reg, []Command{tombstone("t1", "a.example:4151", t0)}),
			checks: []check{
				lookupAt(Filter{Now: time.Unix(0, t0), InactiveTimeout: inactive}, "t1", true, []string{"c1"}, peerA, peerB),
				nodesAt(Filter{Now: time.Unix(0, t0), InactiveTimeout: inactive}, node(peerA, "t1", false, "t2", false), node(peerB, "t1", false)),
			},
		},
		{
			name: "re-tombstoning restarts the clock",
			cmds: concat(reg, []Command{tombstone("t1", "a.example:4151", t0), tombstone("t1", "a.example:4151", ns(30*time.Second))}),
			checks: []check{
				lookupAt(at(50*time.Second), "t1", true, []string{"c1"}, peerB),
				lookupAt(at(75*time.Second), "t1", true, []string{"c1"}, peerA, peerB),
			},
		},
		{
			name: "REGISTER of a tombstoned topic keeps the tombstone",
			cmds: concat(reg, []Command{tombstone("t1", "a.example:4151", t0), register(s1, "t1", ""), register(s1, "t1", "c9")}),
			checks: []check{
				lookup("t1", true, []string{"c1", "c9"}, peerB),
				nodes(node(peerA, "t1", true, "t2", false), node(peerB, "t1", false)),
			},
		},
		{
			name: "UNREGISTER then REGISTER gives a fresh, visible record",
			cmds: concat(reg, []Command{tombstone("t1", "a.example:4151", t0), unregister(s1, "t1", ""), register(s1, "t1", "")}),
			checks: []check{
				lookup("t1", true, []string{"c1"}, peerA, peerB),
				nodes(node(peerA, "t1", false, "t2", false), node(peerB, "t1", false)),
			},
		},
		{
			// nsqlookupd TestTombstoneUnregister: the producer is removed, not just hidden.
			name: "UNREGISTER of a tombstoned topic removes the producer",
			cmds: concat(reg, []Command{tombstone("t1", "a.example:4151", t0), unregister(s1, "t1", "")}),
			checks: []check{
				lookupAt(at(tombLife+10*time.Second), "t1", true, []string{"c1"}, peerB),
			},
		},
		{
			name: "a reconnected nsqd (new session) is visible at once",
			cmds: concat(reg, []Command{
				tombstone("t1", "a.example:4151", t0), closeSession(s1), open(s3, peerA, t0), register(s3, "t1", ""),
			}),
			checks: []check{lookup("t1", true, []string{"c1"}, peerA, peerB)},
		},
		{
			name: "the node string is broadcast_address:http_port, nothing else",
			cmds: concat(setup(s1, s2), []Command{
				register(s1, "t", ""), register(s2, "t", ""),
				tombstone("t", "a.example:4150", t0),     // tcp port
				tombstone("t", "10.0.0.1:4151", t0),      // remote address host
				tombstone("t", "host-a:4151", t0),        // hostname
				tombstone("t", "a.example", t0),          // no port
				tombstone("t", "a.example:4151 ", t0),    // not trimmed
				tombstone("t", "10.0.0.1:40001", t0),     // remote address
				tombstone("u", "a.example:4151", t0),     // unknown topic
				tombstone("t", "b.example:04151", t0),    // plain string compare
				tombstone("t", "B.EXAMPLE:4151", t0),     // case-sensitive
				tombstone("*", "a.example:4151", t0),     // not a wildcard (httpapi refuses it)
				tombstone("t", "a.example:4151", t0-1e9), // in the past but within the lifetime: hides
			}),
			checks: []check{
				lookup("t", true, nil, peerB),
				topics("t"),
			},
		},
		{
			name: "tombstone matches every identity and session sharing the node string",
			cmds: concat(setup(), []Command{
				open(s1, peerA, t0), open(s2, peerA2, t0), open(s3, peerAtcp, t0), open(s4, peerB, t0),
				register(s1, "t", ""), register(s2, "t", ""), register(s3, "t", ""), register(s4, "t", ""),
				tombstone("t", "a.example:4151", t0),
			}),
			checks: []check{
				lookup("t", true, nil, peerB),
				nodes(node(peerA, "t", true), node(peerAtcp, "t", true), node(peerB, "t", false)),
			},
		},
		{
			name: "IPv6 node strings are not bracketed",
			cmds: concat(setup(), []Command{
				open(s1, peer6, t0), open(s2, peerB, t0), register(s1, "t", ""), register(s1, "u", ""), register(s2, "t", ""),
				tombstone("t", "::1:4151", t0), tombstone("u", "[::1]:4151", t0),
			}),
			checks: []check{
				lookup("t", true, nil, peerB),
				lookup("u", true, nil, peer6),
			},
		},
		{
			name: "tombstone of a topic with only channel keys does nothing",
			cmds: concat(setup(s1), []Command{
				register(s1, "t#ephemeral", "c"), unregister(s1, "t#ephemeral", ""),
				tombstone("t#ephemeral", "a.example:4151", t0), register(s1, "t#ephemeral", ""),
			}),
			checks: []check{lookup("t#ephemeral", true, []string{"c"}, peerA)},
		},
	})
}

// TestDebugRecords checks /debug's raw producer records: tombstone flag and
// time (never filtered by lifetime), last update, and that channel and client
// records are never tombstoned.
func TestDebugRecords(t *testing.T) {
	h := newHarness(t)
	h.apply(setup(s1)...)
	h.apply(register(s1, "t", "c"), register(s1, "u", ""), tombstone("t", "a.example:4151", ns(5*time.Second)),
		renew("n1", 1, ns(7*time.Second), Touch{Seq: s1.Seq, LastUpdate: ns(6 * time.Second)}))
	got := h.reg().Debug()
	rec := func(tombstoned bool, at int64) []DebugProducer {
		return []DebugProducer{{Session: s1, PeerInfo: peerA, LastUpdate: ns(6 * time.Second), Tombstoned: tombstoned, TombstonedAt: at}}
	}
	want := map[string][]DebugProducer{
		"client::":    rec(false, 0),
		"topic:t:":    rec(true, ns(5*time.Second)),
		"channel:t:c": rec(false, 0),
		"topic:u:":    rec(false, 0),
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Debug() =\n%+v\nwant\n%+v", got, want)
	}
	// Readers get copies.
	got["topic:t:"][0].Tombstoned = false
	got["client::"] = nil
	if again := h.reg().Debug(); !reflect.DeepEqual(again, want) {
		t.Errorf("Debug() changed after the caller modified its copy:\n%+v", again)
	}
}

// TestFilterByActive pins docs/COMPATIBILITY.md#active-filter.
func TestFilterByActive(t *testing.T) {
	reg := concat(setup(s1, s2), []Command{register(s1, "t", "c"), register(s2, "t", "")})
	runApplyCases(t, []applyCase{
		{
			// nsqlookupd TestInactiveNodes: excluded only when strictly greater than the timeout.
			name: "a session is inactive strictly after the timeout",
			cmds: reg,
			checks: []check{
				lookupAt(at(inactive), "t", true, []string{"c"}, peerA, peerB),
				lookupAt(at(inactive+1), "t", true, []string{"c"}),
				nodesAt(at(inactive), node(peerA, "t", false), node(peerB, "t", false)),
				nodesAt(at(inactive + 1)),
				// Unfiltered reads still list it.
				topics("t"),
				channels("t", "c"),
				debugKeys(map[string][]SessionID{"client::": {s1, s2}, "topic:t:": {s1, s2}, "channel:t:c": {s1}}),
			},
		},
		{
			name: "a PING (touch) makes an inactive session visible again",
			cmds: concat(reg, []Command{renew("n1", 1, ns(inactive+2), Touch{Seq: s1.Seq, LastUpdate: ns(inactive + 2)})}),
			checks: []check{
				lookupAt(at(inactive+2), "t", true, []string{"c"}, peerA),
				nodesAt(at(inactive+2), node(peerA, "t", false)),
				lastUpdate(s1, ns(inactive+2), true),
				lastUpdate(s2, t0, true),
			},
		},
		{
			name: "inactivity and tombstones combine",
			cmds: concat(reg, []Command{
				tombstone("t", "b.example:4151", ns(inactive-time.Second)),
				renew("n1", 1, ns(inactive), Touch{Seq: s2.Seq, LastUpdate: ns(inactive)}),
			}),
			checks: []check{
				// s1 inactive, s2 tombstoned: nobody.
				lookupAt(at(inactive+1), "t", true, []string{"c"}),
				// /nodes ignores tombstones for filtering but flags them.
				nodesAt(at(inactive+1), node(peerB, "t", true)),
				lookupAt(at(inactive-time.Second+tombLife), "t", true, []string{"c"}, peerB),
			},
		},
		{
			name: "a zero inactivity timeout keeps only sessions updated at the read time",
			cmds: reg,
			checks: []check{
				lookupAt(Filter{Now: time.Unix(0, t0), TombstoneLifetime: tombLife}, "t", true, []string{"c"}, peerA, peerB),
				lookupAt(Filter{Now: time.Unix(0, t0+1), TombstoneLifetime: tombLife}, "t", true, []string{"c"}),
			},
		},
	})
}

// TestIdentityMerge covers raftlookupd's producer identity: one nsqd
// (broadcast_address, tcp_port, http_port) with several sessions is listed
// once and stays listed while any of its sessions lives.
func TestIdentityMerge(t *testing.T) {
	twice := concat(setup(), []Command{
		open(s1, peerA, t0), open(s21, peerA2, t0), open(s2, peerB, t0),
		register(s1, "t", "c"), register(s21, "t", "c"), register(s2, "t", ""),
	})
	runApplyCases(t, []applyCase{
		{
			name: "two sessions of one nsqd are one producer",
			cmds: twice,
			checks: []check{
				lookup("t", true, []string{"c"}, peerA, peerB),
				// The smallest session id represents the identity.
				lookupRemote("t", peerA.RemoteAddress, peerB.RemoteAddress),
				nodes(node(peerA, "t", false), node(peerB, "t", false)),
				debugKeys(map[string][]SessionID{"client::": {s1, s2, s21}, "topic:t:": {s1, s2, s21}, "channel:t:c": {s1, s21}}),
			},
		},
		{
			name: "the same nsqd connected twice to one node is one producer",
			cmds: concat(setup(), []Command{
				open(s1, peerA, t0), open(s2, peerA2, t0), register(s1, "t", ""), register(s2, "t", ""),
			}),
			checks: []check{
				lookup("t", true, nil, peerA),
				nodes(node(peerA, "t", false)),
			},
		},
		{
			name: "the identity stays listed while any session lives",
			cmds: concat(twice, []Command{closeSession(s1)}),
			checks: []check{
				lookup("t", true, []string{"c"}, peerA, peerB),
				lookupRemote("t", peerA2.RemoteAddress, peerB.RemoteAddress),
				nodes(node(peerA, "t", false), node(peerB, "t", false)),
			},
		},
		{
			name: "the identity goes when its last session goes",
			cmds: concat(twice, []Command{closeSession(s1), closeSession(s21)}),
			checks: []check{
				lookup("t", true, []string{"c"}, peerB),
				nodes(node(peerB, "t", false)),
			},
		},
		{
			name: "the identity stays listed while any session is active",
			cmds: concat(twice, []Command{renew("n2", 1, ns(inactive), Touch{Seq: s21.Seq, LastUpdate: ns(inactive)})}),
			checks: []check{
				lookupAt(at(inactive+1), "t", true, []string{"c"}, peerA),
				lookupRemote("t", peerA.RemoteAddress, peerB.RemoteAddress),
				nodesAt(at(inactive+1), node(peerA, "t", false)),
			},
		},
		{
			name: "a session that registers after a tombstone makes the identity visible",
			cmds: concat(twice, []Command{tombstone("t", "a.example:4151", t0), open(s3, peerA, t0), register(s3, "t", "")}),
			checks: []check{
				lookup("t", true, []string{"c"}, peerA, peerB),
				nodes(node(peerA, "t", false), node(peerB, "t", false)),
			},
		},
		{
			name: "an identity is tombstoned for a topic only when every session's record is",
			cmds: concat(twice, []Command{tombstone("t", "a.example:4151", t0)}),
			checks: []check{
				lookup("t", true, []string{"c"}, peerB),
				nodes(node(peerA, "t", true), node(peerB, "t", false)),
			},
		},
		{
			name: "/nodes lists the union of topics of an identity's active sessions",
			cmds: concat(twice, []Command{register(s1, "u", ""), register(s21, "v", ""), tombstone("u", "a.example:4151", t0)}),
			checks: []check{
				nodes(node(peerA, "t", false, "u", true, "v", false), node(peerB, "t", false)),
			},
		},
		{
			name: "a different tcp port is a different identity",
			cmds: concat(setup(), []Command{open(s1, peerA, t0), open(s2, peerAtcp, t0), register(s1, "t", ""), register(s2, "t", "")}),
			checks: []check{
				lookup("t", true, nil, peerA, peerAtcp),
				nodes(node(peerA, "t", false), node(peerAtcp, "t", false)),
			},
		},
	})
}

// TestWildcardReads covers "*" in /lookup and /channels.
func TestWildcardReads(t *testing.T) {
	runApplyCases(t, []applyCase{
		{
			name:   "empty registry",
			checks: []check{lookup("*", false, nil), channels("*"), topics(), nodes(), debugKeys(nil), members()},
		},
		{
			name: "only channel keys without a topic key: /lookup * is 404",
			cmds: concat(setup(s1), []Command{register(s1, "t#ephemeral", "c"), unregister(s1, "t#ephemeral", "")}),
			checks: []check{
				lookup("*", false, nil),
				channels("*", "c"),
			},
		},
		{
			name: "every topic's channels (duplicates kept) and every producer once",
			cmds: concat(setup(s1, s2, s3), []Command{
				register(s1, "t", "c"), register(s1, "u", "c"), register(s2, "u", "d"), register(s3, "v", ""),
				createTopic("w"), createChannel("x", "e"),
				tombstone("u", "b.example:4151", t0), // s2 tombstoned in its only topic
				tombstone("t", "a.example:4151", t0), // s1 still visible through u
				closeSession(s3),
			}),
			checks: []check{
				lookup("*", true, []string{"c", "c", "d", "e"}, peerA),
				channels("*", "c", "c", "d", "e"),
				lookupAt(at(tombLife), "*", true, []string{"c", "c", "d", "e"}, peerA, peerB),
				lookupAt(at(inactive+1), "*", true, []string{"c", "c", "d", "e"}),
			},
		},
		{
			name: "delete and tombstone of * are literal names, not wildcards (httpapi refuses *)",
			cmds: concat(setup(s1), []Command{register(s1, "t", "c"), deleteTopic("*"), tombstone("*", "a.example:4151", t0)}),
			checks: []check{
				topics("t"),
				lookup("t", true, []string{"c"}, peerA),
				channels("nope"),
				lookup("nope", false, nil),
			},
		},
	})
}

// TestOwnersAndSessions covers owner incarnations and session lifetimes.
func TestOwnersAndSessions(t *testing.T) {
	runApplyCases(t, []applyCase{
		{
			name:   "open without a prior renewal is ignored",
			cmds:   []Command{open(s1, peerA, t0), register(s1, "t", "")},
			checks: []check{noOwner("n1"), lastUpdate(s1, 0, false), debugKeys(nil), nodes(), topics()},
		},
		{
			name:   "open of another incarnation than the renewed one is ignored",
			cmds:   []Command{renew("n1", 2, t0), open(s1, peerA, t0), open(SessionID{"n1", 3, 1}, peerA, t0)},
			checks: []check{ownerIs("n1", 2, false, 0), lastUpdate(s1, 0, false), nodes()},
		},
		{
			name:   "open of another owner's incarnation is ignored",
			cmds:   []Command{renew("n1", 1, t0), open(SessionID{"n2", 1, 1}, peerA, t0)},
			checks: []check{ownerIs("n1", 1, false, 0), noOwner("n2"), nodes()},
		},
		{
			name: "a duplicate open keeps the first session",
			cmds: concat(setup(s1), []Command{register(s1, "t", ""), open(s1, peerB, ns(time.Second))}),
			checks: []check{
				lookup("t", true, nil, peerA),
				lastUpdate(s1, t0, true),
				ownerIs("n1", 1, false, 1),
			},
		},
		{
			name: "a renewal with a higher incarnation drops the old incarnation's sessions",
			cmds: concat(setup(s1, s2), []Command{
				register(s1, "t", "c"), open(s21, peerC, t0), register(s21, "t", ""),
				renew("n1", 2, ns(time.Second)),
			}),
			checks: []check{
				ownerIs("n1", 2, false, 0),
				ownerIs("n2", 1, false, 1),
				lookup("t", true, []string{"c"}, peerC),
				lastUpdate(s1, 0, false),
				debugKeys(map[string][]SessionID{"client::": {s21}, "topic:t:": {s21}}),
			},
		},
		{
			name: "sessions of the new incarnation open; the old incarnation's do not",
			cmds: concat(setup(s1), []Command{
				renew("n1", 2, ns(time.Second)),
				open(s2, peerB, ns(time.Second)), open(SessionID{"n1", 2, 1}, peerC, ns(time.Second)),
				register(SessionID{"n1", 2, 1}, "t", ""),
			}),
			checks: []check{
				ownerIs("n1", 2, false, 1),
				lookup("t", true, nil, peerC),
				lastUpdate(s2, 0, false),
			},
		},
		{
			name: "a late renewal of a lower incarnation is ignored",
			cmds: concat(setup(), []Command{
				renew("n1", 2, ns(time.Second)), open(SessionID{"n1", 2, 1}, peerA, t0),
				renew("n1", 1, ns(2*time.Second), Touch{Seq: 1, LastUpdate: ns(2 * time.Second)}),
			}),
			checks: []check{
				ownerIs("n1", 2, false, 1),
				lastUpdate(SessionID{"n1", 2, 1}, t0, true),
				func(t *testing.T, r *Registry) {
					if o, _ := r.Owner("n1"); o.RenewedAt != ns(time.Second) || o.RenewIndex != 3 {
						t.Errorf("owner n1 renewed at %d index %d, want %d index 3 (the late renewal must not count)", o.RenewedAt, o.RenewIndex, ns(time.Second))
					}
				},
			},
		},
		{
			name: "expiry drops the incarnation's sessions and marks it expired",
			cmds: concat(setup(s1, s2), []Command{
				register(s1, "t", "c"), register(s2, "t#ephemeral", ""), open(s21, peerC, t0), register(s21, "t", ""),
				expireOwner("n1", 1),
			}),
			checks: []check{
				ownerIs("n1", 1, true, 0),
				ownerIs("n2", 1, false, 1),
				lookup("t", true, []string{"c"}, peerC),
				// Like a connection close: no key is deleted, even ephemeral.
				topics("t", "t#ephemeral"),
				lookup("t#ephemeral", true, nil),
				debugKeys(map[string][]SessionID{"client::": {s21}, "topic:t:": {s21}}),
			},
		},
		{
			name: "an expired incarnation's renewals and opens are ignored",
			cmds: concat(setup(s1), []Command{
				expireOwner("n1", 1),
				renew("n1", 1, ns(time.Second)), open(s2, peerB, ns(time.Second)), register(s2, "t", ""),
			}),
			checks: []check{
				ownerIs("n1", 1, true, 0), lastUpdate(s2, 0, false), topics(),
				func(t *testing.T, r *Registry) {
					if o, _ := r.Owner("n1"); o.RenewedAt != t0 || o.RenewIndex != 1 {
						t.Errorf("owner n1 renewed at %d index %d, want %d index 1 (the expired renewal must not count)", o.RenewedAt, o.RenewIndex, t0)
					}
				},
			},
		},
		{
			name: "a new incarnation after expiry is live",
			cmds: concat(setup(s1), []Command{
				expireOwner("n1", 1),
				renew("n1", 2, ns(time.Second)), open(SessionID{"n1", 2, 1}, peerB, ns(time.Second)), register(SessionID{"n1", 2, 1}, "t", ""),
			}),
			checks: []check{ownerIs("n1", 2, false, 1), lookup("t", true, nil, peerB)},
		},
		{
			name: "expiry of another incarnation or an unknown owner is a no-op",
			cmds: concat(setup(s1), []Command{register(s1, "t", ""), expireOwner("n1", 2), expireOwner("n1", 0), expireOwner("n9", 1)}),
			checks: []check{
				ownerIs("n1", 1, false, 1),
				noOwner("n9"),
				lookup("t", true, nil, peerA),
			},
		},
		{
			name: "expiring twice is a no-op",
			cmds: concat(setup(s1), []Command{expireOwner("n1", 1), expireOwner("n1", 1)}),
			checks: []check{
				ownerIs("n1", 1, true, 0),
			},
		},
		{
			name: "close-owner drops the incarnation's sessions like expiry",
			cmds: concat(setup(s1, s2), []Command{
				register(s1, "t", "c"), open(s21, peerC, t0), register(s21, "u", ""), closeOwner("n1", 1),
			}),
			checks: []check{
				ownerIs("n1", 1, true, 0),
				ownerIs("n2", 1, false, 1),
				lookup("t", true, []string{"c"}),
				lookup("u", true, nil, peerC),
				nodes(node(peerC, "u", false)),
			},
		},
		{
			name:   "close-owner of another incarnation is a no-op",
			cmds:   concat(setup(s1), []Command{register(s1, "t", ""), closeOwner("n1", 2)}),
			checks: []check{ownerIs("n1", 1, false, 1), lookup("t", true, nil, peerA)},
		},
		{
			name: "touches raise last update and never lower it",
			cmds: concat(setup(s1, s2, s3), []Command{
				renew("n1", 1, ns(10*time.Second),
					Touch{Seq: s1.Seq, LastUpdate: ns(10 * time.Second)},
					Touch{Seq: s2.Seq, LastUpdate: ns(-time.Second)},
					Touch{Seq: 99, LastUpdate: ns(10 * time.Second)}),
				renew("n1", 1, ns(20*time.Second), Touch{Seq: s1.Seq, LastUpdate: ns(5 * time.Second)}),
				// Touches name sessions of the renewing owner and incarnation only.
				renew("n2", 1, ns(20*time.Second), Touch{Seq: s3.Seq, LastUpdate: ns(30 * time.Second)}),
			}),
			checks: []check{
				lastUpdate(s1, ns(10*time.Second), true),
				lastUpdate(s2, t0, true),
				lastUpdate(s3, t0, true),
				lastUpdate(SessionID{"n1", 1, 99}, 0, false),
			},
		},
		{
			name: "owner records carry renewal time and log index",
			cmds: concat(setup(s1), []Command{
				renew("n1", 1, ns(3*time.Second)),
				batch("n2", 1, 1, createTopic("t"), renew("n2", 1, ns(4*time.Second))),
			}),
			result: []error{nil, nil},
			checks: []check{func(t *testing.T, r *Registry) {
				want := []Owner{
					{ID: "n1", Incarnation: 1, RenewedAt: ns(3 * time.Second), RenewIndex: 4, Sessions: 1},
					{ID: "n2", Incarnation: 1, RenewedAt: ns(4 * time.Second), RenewIndex: 5},
				}
				if got := r.Owners(); !reflect.DeepEqual(got, want) {
					t.Errorf("Owners() = %+v, want %+v", got, want)
				}
			}},
		},
	})
}

func TestApplyBatch(t *testing.T) {
	runApplyCases(t, []applyCase{
		{
			name: "results are aligned with the commands",
			cmds: concat(setup(s1), []Command{batch("n1", 1, 1,
				deleteChannel("t", "c"), createChannel("t", "c"), register(s1, "t", "d"),
				deleteChannel("t", "c"), deleteChannel("t", "c"), createTopic("u"),
			)}),
			result: []error{ErrChannelNotFound, nil, nil, nil, ErrChannelNotFound, nil},
			checks: []check{topics("t", "u"), lookup("t", true, []string{"d"}, peerA)},
		},
		{
			name:   "an empty batch",
			cmds:   []Command{batch("n1", 1, 1)},
			result: []error{},
		},
		{
			name: "commands apply in order inside a batch",
			cmds: []Command{batch("n1", 1, 1,
				renew("n1", 1, t0), open(s1, peerA, t0), register(s1, "t", "c#ephemeral"),
				unregister(s1, "t", "c#ephemeral"), register(s1, "u", ""), closeSession(s1),
			)},
			result: []error{nil, nil, nil, nil, nil, nil},
			checks: []check{topics("t", "u"), channels("t"), lookup("u", true, nil), ownerIs("n1", 1, false, 0)},
		},
		{
			name: "a duplicate delivery is applied once",
			cmds: concat(setup(s1), []Command{
				batch("n1", 1, 1, register(s1, "t", "c")),
				batch("n1", 1, 2, unregister(s1, "t", ""), deleteChannel("t", "c")),
				batch("n1", 1, 1, register(s1, "t", "c")), // retried after it committed
			}),
			result: []error{ErrDuplicateBatch},
			checks: []check{lookup("t", true, nil), channels("t")},
		},
		{
			name: "an older sequence number is a duplicate too",
			cmds: concat(setup(s1), []Command{
				batch("n1", 1, 1, register(s1, "t", "")),
				batch("n1", 1, 2, unregister(s1, "t", "")),
				batch("n1", 1, 2, register(s1, "t", "")),
				batch("n1", 1, 1, register(s1, "t", ""), createTopic("x")),
			}),
			result: []error{ErrDuplicateBatch, ErrDuplicateBatch},
			checks: []check{lookup("t", true, nil), topics("t")},
		},
		{
			name: "sequence numbers are per origin",
			cmds: concat(setup(s1), []Command{
				batch("n1", 1, 5, register(s1, "t", "")),
				batch("n2", 1, 1, createTopic("u")),
				batch("n3", 1, 5, createTopic("v")),
			}),
			result: []error{nil},
			checks: []check{topics("t", "u", "v")},
		},
		{
			name: "a new origin incarnation starts its own sequence",
			cmds: concat(setup(s1), []Command{
				batch("n1", 1, 7, createTopic("t")),
				batch("n1", 2, 1, createTopic("u")),
				batch("n1", 2, 2, createTopic("v")),
			}),
			result: []error{nil},
			checks: []check{topics("t", "u", "v")},
		},
		{
			name: "a later batch after a gap applies",
			cmds: concat(setup(s1), []Command{
				batch("n1", 1, 1, createTopic("t")),
				batch("n1", 1, 9, createTopic("u")),
			}),
			result: []error{nil},
			checks: []check{topics("t", "u")},
		},
	})
}

// TestDuplicateBatchAfterRestore: the batch marks are part of the snapshot.
func TestDuplicateBatchAfterRestore(t *testing.T) {
	h := newHarness(t)
	h.apply(setup(s1)...)
	h.apply(batch("n1", 1, 1, register(s1, "t", "")), batch("n1", 1, 2, unregister(s1, "t", "")))
	f := restored(t, snapshotBytes(t, h.f))
	f.Apply(&raft.Log{Index: h.idx + 1, Data: enc(batch("n1", 1, 1, register(s1, "t", "")))})
	lookup("t", true, nil)(t, f.Registry())
}

func ptr[T any](v T) *T { return &v }

func TestMembers(t *testing.T) {
	m1 := Member{ID: "n1", RaftAddress: "h1:4162", HTTPAddress: "h1:4161", TCPAddress: "h1:4160"}
	m1b := Member{ID: "n1", RaftAddress: "h1b:4162", HTTPAddress: "h1b:4161", TCPAddress: "h1b:4160"}
	m2 := Member{ID: "n2", RaftAddress: "h2:4162", HTTPAddress: "h2:4161", TCPAddress: "h2:4160"}
	runApplyCases(t, []applyCase{
		{name: "set", cmds: []Command{setMember(m2), setMember(m1)}, checks: []check{members(m1, m2)}},
		{name: "set replaces by id", cmds: []Command{setMember(m1), setMember(m2), setMember(m1b)}, checks: []check{members(m1b, m2)}},
		{name: "remove", cmds: []Command{setMember(m1), setMember(m2), removeMember("n1"), removeMember("n9")}, checks: []check{
			members(m2),
			func(t *testing.T, r *Registry) {
				if _, ok := r.Member("n1"); ok {
					t.Error("Member(n1) still present")
				}
				if got, ok := r.Member("n2"); !ok || got != m2 {
					t.Errorf("Member(n2) = %+v, %v", got, ok)
				}
			},
		}},
		{
			name:   "members do not touch owners or sessions",
			cmds:   concat(setup(s1), []Command{register(s1, "t", ""), setMember(m1), removeMember("n1")}),
			checks: []check{members(), ownerIs("n1", 1, false, 1), lookup("t", true, nil, peerA)},
		},
	})
}

// TestRegistrationDB re-expresses nsqlookupd's registration_db_test.go
// (docs/COMPATIBILITY.md#baseline) through commands and reads. Categories map onto the FSM's
// keys: "c:a:" is topic a, "c:a:b" channel b of a, "d:a:" another topic, and
// "t:a:" a second record of p1's peer (here: topic t).
func TestRegistrationDB(t *testing.T) {
	h := newHarness(t)
	r := h.reg()
	p1, p2, p3 := s1, s2, s3
	h.apply(setup(p1, p2, p3)...)
	// p1 and p2 are ancient; p3 is refreshed below.
	h.apply(register(p1, "a", ""), register(p2, "a", "b"), register(p3, "d", ""), register(p1, "t", ""))

	topics("a", "d", "t")(t, r)
	channels("a", "b")(t, r)
	channels("*", "b")(t, r)
	lookup("a", true, []string{"b"}, peerA, peerB)(t, r)
	lookup("t", true, nil, peerA)(t, r)
	lookup("*", true, []string{"b"}, peerA, peerB, peerC)(t, r)
	debugKeys(map[string][]SessionID{"client::": {p1, p2, p3}, "topic:a:": {p1, p2}, "channel:a:b": {p2}, "topic:d:": {p3}, "topic:t:": {p1}})(t, r)

	// FilterByActive(30s, 30s): ancient peers drop out, refreshed ones stay.
	f := func(d time.Duration, life time.Duration) Filter {
		return Filter{Now: time.Unix(0, ns(d)), InactiveTimeout: 30 * time.Second, TombstoneLifetime: life}
	}
	lookupAt(f(time.Hour, 30*time.Second), "a", true, []string{"b"})(t, r)
	h.apply(renew("n1", 1, ns(time.Hour), Touch{Seq: p1.Seq, LastUpdate: ns(time.Hour)}, Touch{Seq: p3.Seq, LastUpdate: ns(time.Hour)}))
	lookupAt(f(time.Hour, 30*time.Second), "a", true, []string{"b"}, peerA)(t, r)
	lookupAt(f(time.Hour, 30*time.Second), "d", true, nil, peerC)(t, r)

	// Tombstoning p1's record of a hides it; a 5 ms lifetime un-hides it after 10 ms.
	h.apply(tombstone("a", "a.example:4151", ns(time.Hour)))
	lookupAt(f(time.Hour, 30*time.Second), "a", true, []string{"b"})(t, r)
	lookupAt(f(time.Hour+10*time.Millisecond, 5*time.Millisecond), "a", true, []string{"b"}, peerA)(t, r)
	// p1's other record is unaffected (per-registration tombstones, nsq #148).
	lookupAt(f(time.Hour, 30*time.Second), "t", true, nil, peerA)(t, r)

	// RemoveProducer empties keys but keeps them.
	h.apply(closeSession(p1), closeSession(p2))
	topics("a", "d", "t")(t, r)
	channels("a", "b")(t, r)
	lookup("a", true, []string{"b"})(t, r)
	// RemoveRegistration removes them.
	h.apply(deleteTopic("a"))
	topics("d", "t")(t, r)
	channels("a")(t, r)
	lookup("a", false, nil)(t, r)
	checkInvariants(t, r)
}

// TestApplyUndecodablePanics: an entry this build cannot read stops the node.
func TestApplyUndecodablePanics(t *testing.T) {
	good := enc(createTopic("t"))
	for name, data := range map[string][]byte{
		"empty":        {},
		"version 0":    append([]byte{0}, good[1:]...),
		"version 2":    append([]byte{2}, good[1:]...),
		"unknown op":   {Version, 200},
		"op 0":         {Version, 0},
		"truncated":    good[:len(good)-1],
		"trailing":     append(append([]byte{}, good...), 0),
		"nested batch": enc(batch("n1", 1, 1, batch("n1", 1, 2))),
		"short string": {Version, byte(OpCreateTopic), 5, 'a'},
	} {
		t.Run(name, func(t *testing.T) {
			f := New()
			defer func() {
				if recover() == nil {
					t.Errorf("Apply(%x) did not panic", data)
				}
				if got := f.Registry().AppliedIndex(); got != 0 {
					t.Errorf("AppliedIndex = %d after a failed apply, want 0", got)
				}
			}()
			f.Apply(&raft.Log{Index: 1, Data: data})
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	if _, err := Decode([]byte{Version, 200}); !errors.Is(err, ErrUnknownOp) {
		t.Errorf("Decode(unknown op) = %v, want ErrUnknownOp", err)
	}
	if _, err := Decode([]byte{Version + 1, byte(OpCreateTopic), 0}); err == nil || errors.Is(err, ErrUnknownOp) {
		t.Errorf("Decode(future version) = %v, want a version error", err)
	}
	// A corrupt length must not allocate: it is checked against the input.
	if _, err := Decode([]byte{Version, byte(OpCreateTopic), 0xff, 0xff, 0xff, 0xff, 0x0f}); err == nil {
		t.Error("Decode(huge string length) succeeded")
	}
	if _, err := Decode([]byte{Version, byte(OpBatch), 0, 1, 1, 0xff, 0xff, 0xff, 0xff, 0x0f}); err == nil {
		t.Error("Decode(huge batch count) succeeded")
	}
	// One command, one encoding: padded varints are rejected (FuzzDecode found
	// 01 0c 00 00 80 00, a tombstone whose time 0 was written in two bytes).
	for _, data := range [][]byte{
		{Version, byte(OpCreateTopic), 0x80, 0x00},
		{Version, byte(OpTombstone), 0, 0, 0x80, 0x00},
		{Version, byte(OpTombstone), 0, 0, 0xff, 0x80, 0x00},
		{Version, byte(OpExpireOwner), 0, 0x81, 0x80, 0x00},
	} {
		if c, err := Decode(data); err == nil {
			t.Errorf("Decode(%x) = %+v, want a non-minimal varint error", data, c)
		}
	}
	// Minimal multi-byte varints still decode.
	if c, err := Decode([]byte{Version, byte(OpTombstone), 0, 0, 0xff, 0x01}); err != nil || c.Time != -128 {
		t.Errorf("Decode(time -128) = %+v, %v", c, err)
	}
}

// TestRegistryCounters covers AppliedIndex and Stats.
func TestRegistryCounters(t *testing.T) {
	h := newHarness(t)
	r := h.reg()
	h.apply(setup(s1, s2)...)
	h.apply(register(s1, "t", "c"), register(s2, "t", "c"), register(s2, "u", ""), createChannel("v", "d"))
	if got, want := r.AppliedIndex(), h.idx; got != want {
		t.Errorf("AppliedIndex = %d, want %d", got, want)
	}
	// An ignored command is still an applied entry.
	h.apply(register(s3, "x", ""))
	if r.AppliedIndex() != h.idx {
		t.Errorf("AppliedIndex did not advance on a no-op entry")
	}
	want := Stats{Sessions: 2, Topics: 3, Channels: 2, Producers: 5}
	if got := r.Stats(); got != want {
		t.Errorf("Stats() = %+v, want %+v", got, want)
	}
	f := restored(t, snapshotBytes(t, h.f))
	if got := f.Registry().AppliedIndex(); got != h.idx {
		t.Errorf("restored AppliedIndex = %d, want %d", got, h.idx)
	}
	if got := f.Registry().Stats(); got != want {
		t.Errorf("restored Stats() = %+v, want %+v", got, want)
	}
	// Restore into a used FSM replaces its state.
	if err := h.f.Restore(readCloser(snapshotBytes(t, New()))); err != nil {
		t.Fatal(err)
	}
	if got := r.Stats(); got != (Stats{}) {
		t.Errorf("Stats() after restoring an empty snapshot = %+v", got)
	}
	topics()(t, r)
	nodes()(t, r)
}

// TestKeptCountsMatchRecount applies random command sequences and checks,
// after every entry and after a snapshot round trip, that the counts Apply
// keeps equal a full recount.
func TestKeptCountsMatchRecount(t *testing.T) {
	for seed := int64(1); seed <= 20; seed++ {
		h := newHarness(t)
		r := h.reg()
		for i, c := range randomEntries(seed, 400) {
			h.apply(c)
			if got, want := r.counts, r.recount(); got != want {
				t.Fatalf("seed %d, entry %d (%v): kept counts %+v, recount %+v", seed, i+1, c.Op, got, want)
			}
		}
		f := restored(t, snapshotBytes(t, h.f))
		if got, want := f.Registry().counts, f.Registry().recount(); got != want || got != r.counts {
			t.Fatalf("seed %d: restored counts %+v, recount %+v, before the snapshot %+v", seed, got, want, r.counts)
		}
	}
}
