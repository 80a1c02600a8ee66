package e2e

// A client that is neither loopback nor a member, against a cluster with
// the default flags (no TLS, no admin token): it reaches the HTTP port and
// the Raft port, yet cannot get a batch read, change membership or
// leadership, profile a node, or read its command line.

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/raftlookupd/raftlookupd/fsm"
)

// forgedCreate is a batch as a member's queue would forward it: origin
// "n2" (a member), one topic creation. The leader's checks accept such a
// batch; only the source address of the stream tells it is forged.
// Incarnation 0 and sequence 0 are below every mark n2's own batches left,
// so if it were ever applied the registry would drop it as a replay; the
// topic check below does not rely on that (it watches for the topic).
func forgedCreate(topic string) []byte {
	return mustEncode(fsm.Command{Op: fsm.OpBatch, Session: fsm.SessionID{Owner: "n2"},
		Batch: []fsm.Command{{Op: fsm.OpCreateTopic, Topic: topic}}})
}

// TestRPCRefusesNonMember: from a non-loopback source address of this host
// (the cluster listens on 127.0.0.1 and advertises it, so that address is
// no member's), every node-to-node request is refused with 403 before the
// body is read, admin changes and profiling are refused, and nothing is
// committed. The same requests from loopback are admitted (the control:
// the refusal is the source check, not a malformed request).
func TestRPCRefusesNonMember(t *testing.T) {
	src := nonLoopbackIP()
	if src == nil {
		t.Skip("this host has no non-loopback IPv4 address to send from; the chaos suite covers non-member sources")
	}
	c := StartCluster(t, 3)
	leader := c.Leader(failoverTimeout)
	t.Logf("non-member source address %s; leader %s", src, leader.ID)

	const forgedTopic = "nonmember_forged"
	join, _ := json.Marshal(map[string]any{"id": "evil", "raft_address": "127.0.0.1:1"})
	leave, _ := json.Marshal(map[string]any{"id": "n3"})
	rpcs := []struct {
		method, path string
		body         []byte
	}{
		{"POST", "/rpc/apply", forgedCreate(forgedTopic)},
		{"POST", "/rpc/apply", make([]byte, 4<<20)}, // refused before the body is read
		{"GET", "/rpc/read-index", nil},
		{"GET", "/rpc/status", nil},
		{"POST", "/rpc/leave", leave},
		{"POST", "/rpc/transfer", []byte("{}")},
	}
	for _, n := range c.Nodes {
		for _, r := range rpcs {
			res := rpcCall(n.RaftAddr(), src, nil, r.method, r.path, r.body)
			if res.Err != nil || res.Status != http.StatusForbidden || !strings.Contains(string(res.Body), "not a member") {
				t.Errorf("%s %s from %s on %s's Raft port: %s; want 403 naming a non-member", r.method, r.path, src, n.ID, res)
			}
		}
	}
	// Join needs no membership (a joining node is not a member yet). With
	// neither a token nor TLS a caller may only add itself: another
	// address, or an existing member's id at a new address, is refused.
	for _, j := range []string{
		`{"id":"evil","raft_address":"127.0.0.1:1","voter":false}`,
		fmt.Sprintf(`{"id":"n2","raft_address":"%s"}`, net.JoinHostPort(src.String(), "4999")),
	} {
		if res := rpcCall(leader.RaftAddr(), src, nil, "POST", "/rpc/join", []byte(j)); res.Err != nil || res.Status != http.StatusForbidden {
			t.Errorf("POST /rpc/join %s from %s: %s; want 403", j, src, res)
		}
	}
	if st, err := leader.Status(); err != nil || len(st.Members) != 3 {
		t.Errorf("after refused joins: %d members (err %v), want 3", len(st.Members), err)
	}

	admin := []struct {
		method, path string
		body         []byte
		want         int
	}{
		{"POST", "/cluster/join", join, http.StatusForbidden},
		{"POST", "/cluster/leave", leave, http.StatusForbidden},
		{"POST", "/cluster/transfer-leadership", nil, http.StatusForbidden},
		{"GET", "/debug/pprof/heap", nil, http.StatusForbidden},
		{"GET", "/debug/pprof/goroutine?debug=2", nil, http.StatusForbidden},
		{"GET", "/debug/pprof/cmdline", nil, http.StatusNotFound},
		{"GET", "/cluster/apply", nil, http.StatusNotFound},
		{"POST", "/cluster/apply", forgedCreate(forgedTopic), http.StatusNotFound},
		{"GET", "/cluster/read-index", nil, http.StatusNotFound},
	}
	for _, n := range c.Nodes {
		for _, a := range admin {
			res, err := httpFrom(src, a.method, "http://"+n.HTTPAddr()+a.path, a.body, nil)
			if err != nil || res.Status != a.want {
				t.Errorf("%s %s from %s on %s: %v %v; want %d", a.method, a.path, src, n.ID, httpSummary(res), err, a.want)
			}
		}
	}

	// Controls from loopback: the same stream and document are admitted.
	if res := rpcCall(leader.RaftAddr(), nil, nil, "GET", "/rpc/status", nil); res.Err != nil || res.Status != http.StatusOK {
		t.Errorf("control: GET /rpc/status from loopback on the leader: %s; want 200", res)
	}
	if res := rpcCall(leader.RaftAddr(), nil, nil, "POST", "/rpc/apply", forgedCreate("nonmember_control")); res.Err != nil || res.Status != http.StatusOK {
		t.Errorf("control: the forged batch from loopback on the leader: %s; want 200 (admitted; dropped as a replay)", res)
	}
	// The command line (it holds -admin-token) is not served to loopback
	// either.
	for _, n := range c.Nodes {
		res, err := httpDo("GET", "http://"+n.HTTPAddr()+"/debug/pprof/cmdline", nil, nil)
		if err != nil || res.Status == http.StatusOK || strings.Contains(string(res.Body), "-node-id") {
			t.Errorf("GET /debug/pprof/cmdline from loopback on %s: %v %v; want it never served", n.ID, httpSummary(res), err)
		}
	}

	// From loopback too, a node-to-node document with a second one behind
	// it is refused whole (n9 is no member: leaving it would change
	// nothing; n3 is).
	if res := rpcCall(leader.RaftAddr(), nil, nil, "POST", "/rpc/leave", []byte(`{"id":"n9"} {"id":"n3"}`)); res.Err != nil || res.Status != http.StatusBadRequest {
		t.Errorf("POST /rpc/leave with two documents from loopback: %s; want 400", res)
	}

	// Nothing was committed: a later write is applied everywhere, the forged
	// topic is on no node and the members are the three.
	mustPost(t, leader.HTTPAddr(), "/topic/create?topic=nonmember_after", nil)
	for _, n := range c.Nodes {
		waitFor(t, registerTimeout, hasTopic(n, "nonmember_after"))
		topics, err := opsTopics(n, "/topics")
		if err != nil {
			t.Fatal(err)
		}
		for _, tp := range topics {
			if tp == forgedTopic {
				t.Errorf("%s lists %q, made by a forged batch from a non-member", n.ID, forgedTopic)
			}
		}
		st, err := n.Status()
		if err != nil {
			t.Fatal(err)
		}
		if err := opsMembersAre(st, opsVoters(c.Nodes...)); err != nil {
			t.Errorf("%s: %v", n.ID, err)
		}
	}
	if got := opsLogCount(t, c.Nodes, "refused a node-to-node request from a non-member"); got < len(c.Nodes)*len(rpcs) {
		t.Errorf("%d refusals of non-member RPCs logged, want at least %d", got, len(c.Nodes)*len(rpcs))
	}
}

// httpSummary shortens an answer for a message.
func httpSummary(res *httpResult) string {
	if res == nil {
		return "(no answer)"
	}
	b := strings.TrimSpace(string(res.Body))
	if len(b) > 200 {
		b = b[:200] + fmt.Sprintf("... (%d bytes)", len(res.Body))
	}
	return fmt.Sprintf("%d %s", res.Status, b)
}

// TestRaftStreamRefusesNonMember: without TLS, hashicorp/raft believes
// whatever arrives on a raft stream, so one AppendEntries with a higher
// term would write any entry into a follower's log (and from there, once
// that follower wins the election its higher last term earns it, into
// every node's; an entry that does not decode stops every node for good).
// From a non-member, non-loopback source the stream is refused before
// raft reads it, and nothing is written. The control: the same request
// from loopback (admitted like a member) with a stale term is read and
// answered by raft, which refuses the stale term.
func TestRaftStreamRefusesNonMember(t *testing.T) {
	src := nonLoopbackIP()
	if src == nil {
		t.Skip("this host has no non-loopback IPv4 address to send from; the chaos suite covers non-member sources")
	}
	c := StartCluster(t, 3)
	follower := c.Followers(failoverTimeout)[0]
	entry := mustEncode(fsm.Command{Op: fsm.OpCreateTopic, Topic: "raft_injected"})
	for range 3 {
		st, err := follower.Status()
		if err != nil {
			t.Fatal(err)
		}
		resp, err := forgedAppend(follower.RaftAddr(), src, st.Term+1, st.LastLogIndex, st.Term, entry)
		if err == nil {
			t.Fatalf("a forged AppendEntries from %s was answered by %s: %+v; want the stream refused", src, follower.ID, resp)
		}
	}
	st, err := follower.Status()
	if err != nil {
		t.Fatal(err)
	}
	resp, err := forgedAppend(follower.RaftAddr(), nil, 0, st.LastLogIndex, st.Term, entry)
	if err != nil || resp.Success || resp.Term == 0 {
		t.Fatalf("control: a stale AppendEntries from loopback: %+v, %v; want raft's refusal naming its term", resp, err)
	}

	mustPost(t, c.Nodes[0].HTTPAddr(), "/topic/create?topic=raft_after", nil)
	for _, n := range c.Nodes {
		waitFor(t, registerTimeout, hasTopic(n, "raft_after"))
		topics, err := opsTopics(n, "/topics")
		if err != nil {
			t.Fatal(err)
		}
		if slices.Contains(topics, "raft_injected") {
			t.Errorf("%s lists a topic written by a forged AppendEntries", n.ID)
		}
	}
	if got := opsLogCount(t, []*Node{follower}, "refused a raft stream from a non-member"); got == 0 {
		t.Errorf("%s logged no refused raft stream", follower.ID)
	}
}
