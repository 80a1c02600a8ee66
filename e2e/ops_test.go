package e2e

// Operations on real processes, as README's "Operations" section describes
// them: growing and shrinking a cluster (-join, raftlookupctl join/leave,
// replacing a node under the same id), leadership transfer, the admin
// token, non-voters, recovery from quorum loss with peers.json, rolling
// restarts, metrics and JSON logs, and backup/restore from a copied data dir.

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/raftlookupd/raftlookupd/wire"
)

// TestOpsGrowAndShrink: 3 nodes, n4 joins by itself (-join), n5 is added by
// raftlookupctl, a repeated join changes nothing, n5 and n4 are replaced
// under the same ids on new addresses (with -join, with raftlookupctl join),
// leadership moves to a named node, n5 and n4 leave, and the original three
// then survive the loss of one more.
func TestOpsGrowAndShrink(t *testing.T) {
	t.Parallel()
	c := StartCluster(t, 3)
	orig := c.Nodes
	n1, n2, n3 := orig[0], orig[1], orig[2]

	// n4 asks two members to add it.
	n4 := opsStartNode(t, "n4", nil, "-join", n1.RaftAddr()+","+n2.RaftAddr())
	four := []*Node{n1, n2, n3, n4}
	opsWaitMembers(t, "", four, opsVoters(four...))
	waitFor(t, opsTimeout, func() error { return opsReady(n4, "") })
	mustPost(t, n1.HTTPAddr(), "/topic/create?topic=grow_a", nil)
	mustPost(t, n1.HTTPAddr(), "/channel/create?topic=grow_a&channel=ch_a", nil)
	reads := []string{"/topics", "/lookup?topic=grow_a", "/channels?topic=grow_a"}
	waitFor(t, opsTimeout, opsSameAnswers(n1, []*Node{n4}, reads...))

	// n5 starts empty and waits to be added.
	n5 := opsStartNode(t, "n5", nil, "-bootstrap=false")
	if err := opsReady(n5, ""); err == nil {
		t.Fatalf("%s started with -bootstrap=false is ready before anyone added it", n5)
	}
	if st, err := opsStatus(n5, ""); err != nil || len(st.Members) != 0 {
		t.Fatalf("%s before being added: members %+v (err %v), want none", n5, st.Members, err)
	}
	leader := opsLeader(t, "", opsTimeout, four...)
	follower := opsOthers(orig, leader)[0]
	opsMustCtl(t, nil, "-addr", follower.HTTPAddr(), "join", "n5", n5.RaftAddr())
	five := []*Node{n1, n2, n3, n4, n5}
	opsWaitMembers(t, "", five, opsVoters(five...))
	waitFor(t, opsTimeout, func() error { return opsReady(n5, "") })
	waitFor(t, opsTimeout, opsSameAnswers(n1, []*Node{n4, n5}, reads...))

	// Joining again with the same id and address succeeds and changes
	// nothing: no configuration change is logged by any leader. The count
	// means something only if the leader logged n5's first join that way.
	if opsLogCount(t, five, "updating configuration", "server-id=n5") == 0 {
		t.Fatal(`no leader logged "updating configuration" with server-id=n5 for n5's join: the check of the repeated join below would count nothing`)
	}
	changes := opsLogCount(t, five, "updating configuration")
	opsMustCtl(t, nil, "-addr", n3.HTTPAddr(), "join", "n5", n5.RaftAddr())
	opsMustCtl(t, nil, "-addr", n5.HTTPAddr(), "join", "n5", n5.RaftAddr())
	opsWaitMembers(t, "", five, opsVoters(five...))
	if got := opsLogCount(t, five, "updating configuration"); got != changes {
		t.Errorf("a repeated join changed the Raft configuration: %d configuration changes logged before, %d after", changes, got)
	}

	// Replace n5: the old process is gone for good, a new one with the same
	// id, a fresh data dir and new addresses joins; the entry is replaced.
	n5.Kill()
	n5 = opsStartNode(t, "n5", nil, "-join", n2.RaftAddr())
	five = []*Node{n1, n2, n3, n4, n5}
	opsWaitMembers(t, "", five, opsVoters(five...))
	waitFor(t, opsTimeout, func() error { return opsReady(n5, "") })
	waitFor(t, opsTimeout, opsSameAnswers(n1, []*Node{n5}, reads...))

	// Replace n4 the other way: the new process waits to be added and an
	// operator joins it under the old id with its new Raft address.
	n4.Kill()
	n4 = opsStartNode(t, "n4", nil, "-bootstrap=false")
	opsMustCtl(t, nil, "-addr", n1.HTTPAddr(), "join", "n4", n4.RaftAddr())
	four = []*Node{n1, n2, n3, n4}
	five = []*Node{n1, n2, n3, n4, n5}
	opsWaitMembers(t, "", five, opsVoters(five...))
	waitFor(t, opsTimeout, func() error { return opsReady(n4, "") })
	waitFor(t, opsTimeout, opsSameAnswers(n1, []*Node{n4}, reads...))

	// Leadership goes where it is asked to, whichever node is asked.
	leader = opsLeader(t, "", opsTimeout, five...)
	rest := opsOthers(orig, leader)
	target, via := rest[0], rest[1]
	opsMustCtl(t, nil, "-addr", via.HTTPAddr(), "transfer-leadership", target.ID)
	waitFor(t, opsTimeout, func() error {
		if l := opsLeader(t, "", opsTimeout, five...); l != target {
			return fmt.Errorf("leader is %s, want %s", l, target)
		}
		return nil
	})

	// n5 and n4 leave (asked through a follower); every remaining member
	// stops listing them. Their processes keep running, removed.
	opsMustCtl(t, nil, "-addr", via.HTTPAddr(), "leave", "n5")
	opsWaitMembers(t, "", four, opsVoters(four...))
	opsMustCtl(t, nil, "-addr", via.HTTPAddr(), "leave", "n4")
	opsWaitMembers(t, "", orig, opsVoters(orig...))
	res := opsMustCtl(t, nil, "-addr", n1.HTTPAddr(), "status", "-json")
	var st clusterStatus
	if err := json.Unmarshal([]byte(res.stdout), &st); err != nil {
		t.Fatalf("status -json: %v", err)
	}
	if err := opsMembersAre(st, opsVoters(orig...)); err != nil {
		t.Errorf("raftlookupctl status -json: %v", err)
	}

	// Removing a non-member succeeds and changes nothing, so scripts can
	// repeat a leave; also when forwarded.
	opsMustCtl(t, nil, "-addr", via.HTTPAddr(), "leave", "n9")
	opsMustCtl(t, nil, "-addr", target.HTTPAddr(), "leave", "n4")
	opsWaitMembers(t, "", orig, opsVoters(orig...))

	// Two of the three voters left are a majority: kill the leader, the
	// other two elect one and take writes through either.
	leader = opsLeader(t, "", opsTimeout, orig...)
	leader.Kill()
	survivors := opsOthers(orig, leader)
	opsLeader(t, "", failoverTimeout, survivors...)
	for _, n := range survivors {
		mustPost(t, n.HTTPAddr(), "/topic/create?topic=after_shrink_"+n.ID, nil)
	}
	for _, n := range survivors {
		waitFor(t, opsTimeout, opsHasTopics(n, "grow_a", "after_shrink_"+survivors[0].ID, "after_shrink_"+survivors[1].ID))
	}
}

// TestOpsLeaveAndRejoin: a node removed with `raftlookupctl leave` while it
// keeps running, and added back with `raftlookupctl join` (an operator
// undoing a mistaken leave), is a full member again: its addresses are
// listed, and when it leads, followers forward writes to it.
func TestOpsLeaveAndRejoin(t *testing.T) {
	t.Parallel()
	c := StartCluster(t, 3)
	leader := opsLeader(t, "", opsTimeout, c.Nodes...)
	followers := opsOthers(c.Nodes, leader)
	via, back := followers[0], followers[1]

	opsMustCtl(t, nil, "-addr", via.HTTPAddr(), "leave", back.ID)
	opsWaitMembers(t, "", []*Node{leader, via}, opsVoters(leader, via))
	opsMustCtl(t, nil, "-addr", via.HTTPAddr(), "join", back.ID, back.RaftAddr())
	opsWaitMembers(t, "", c.Nodes, []opsMember{opsMemberOf(leader, "Voter"), opsMemberOf(via, "Voter"), {id: back.ID, raft: back.RaftAddr(), suffrage: "Voter"}})
	waitFor(t, opsTimeout, func() error { return opsReady(back, "") })

	// Leadership on the rejoined node: a write through a follower must
	// reach it.
	opsMustCtl(t, nil, "-addr", via.HTTPAddr(), "transfer-leadership", back.ID)
	waitFor(t, opsTimeout, func() error {
		if l := opsLeader(t, "", opsTimeout, c.Nodes...); l != back {
			return fmt.Errorf("leader is %s, want %s", l, back)
		}
		return nil
	})
	if status, body, took := opsPostTimed(t, via, "/topic/create?topic=rejoin_a"); status != http.StatusOK {
		t.Errorf("POST /topic/create through follower %s to the rejoined leader %s: %d %s after %v, want 200",
			via, back, status, body, took)
	}

	// Its member record (HTTP and TCP addresses) must be back everywhere.
	// Leave deletes the record (OpRemoveMember); the node publishes its
	// record only when it differs from the last one it queued
	// (cluster/lease.go publishMember), so a process that lived through
	// leave and join never publishes it again.
	if err := eventually(10*time.Second, func() error {
		for _, n := range c.Nodes {
			st, err := opsStatus(n, "")
			if err != nil {
				return err
			}
			if err := opsMembersAre(st, opsVoters(c.Nodes...)); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Errorf("the rejoined node's addresses are not listed: %v\n(a node removed and added back while running "+
			"never re-publishes its member record: publishMember in cluster/lease.go returns early when the record equals "+
			"the last one it queued, although leave deleted it; followers then cannot forward to it as leader)", err)
	}
}

// TestOpsAdminToken: with -admin-token, /cluster/* refuses requests without
// the right bearer token, raftlookupctl takes it from -token or the
// environment, and node-to-node forwarding (writes, joins, -join) carries it.
// A rolling restart (SIGTERM, restart, wait for `raftlookupctl health`)
// keeps the cluster whole.
func TestOpsAdminToken(t *testing.T) {
	t.Parallel()
	const token = "ops-e2e-secret-7f3a"
	env := []string{"RAFTLOOKUPD_ADMIN_TOKEN=" + token}
	c := StartCluster(t, 3, "-admin-token", token)
	leader := opsLeader(t, token, opsTimeout, c.Nodes...)
	followers := opsOthers(c.Nodes, leader)
	follower, other := followers[0], followers[1]

	leave := []byte(`{"id":"` + other.ID + `"}`)
	for _, n := range []*Node{leader, follower} {
		for _, hdr := range []http.Header{
			nil,
			{"Authorization": {"Bearer wrong-" + token}},
			{"Authorization": {"Bearer " + token + "x"}},
			{"Authorization": {"Bearer "}},
			{"Authorization": {token}},
		} {
			res, err := opsPostStatus(n, "/cluster/leave", leave, hdr)
			if err != nil {
				t.Fatal(err)
			}
			if res.Status != http.StatusUnauthorized {
				t.Errorf("%s: POST /cluster/leave with Authorization %q: %d %s, want 401", n, hdr.Get("Authorization"), res.Status, res.Body)
			}
		}
		for _, p := range []string{"/cluster/status", "/cluster/ready"} {
			if res, err := httpDo("GET", "http://"+n.HTTPAddr()+p, nil, nil); err != nil || res.Status != http.StatusUnauthorized {
				t.Errorf("%s: GET %s without token: %v %v, want 401", n, p, res, err)
			}
		}
		// The nsqlookupd API and /metrics need no token.
		for _, p := range []string{"/topics", "/metrics", "/ping"} {
			if res, err := httpDo("GET", "http://"+n.HTTPAddr()+p, nil, nil); err != nil || res.Status != http.StatusOK {
				t.Errorf("%s: GET %s without token: %v %v, want 200", n, p, res, err)
			}
		}
	}
	for _, n := range c.Nodes {
		st, err := opsStatus(n, token)
		if err != nil {
			t.Fatal(err)
		}
		if err := opsMembersAre(st, opsVoters(c.Nodes...)); err != nil {
			t.Fatalf("after refused leave requests: %v", err)
		}
	}

	// raftlookupctl without a token, or with a wrong one, fails in one line.
	opsCtlFails(t, opsRunCtl(t, nil, "-addr", follower.HTTPAddr(), "status"), "401")
	opsCtlFails(t, opsRunCtl(t, nil, "-addr", follower.HTTPAddr(), "-token", "wrong", "leave", other.ID), "401")
	opsCtlFails(t, opsRunCtl(t, []string{"RAFTLOOKUPD_ADMIN_TOKEN=wrong"}, "-addr", follower.HTTPAddr(), "health"), "401")

	// The token from the environment.
	res := opsMustCtl(t, env, "-addr", follower.HTTPAddr(), "status", "-json")
	var st clusterStatus
	if err := json.Unmarshal([]byte(res.stdout), &st); err != nil {
		t.Fatalf("status -json: %v", err)
	}
	if err := opsMembersAre(st, opsVoters(c.Nodes...)); err != nil {
		t.Errorf("raftlookupctl status -json: %v", err)
	}

	// -token leave through a follower (forwarded to the leader with the
	// node-to-node token); the removed node is then stopped.
	opsMustCtl(t, nil, "-addr", follower.HTTPAddr(), "-token", token, "leave", other.ID)
	opsWaitMembers(t, token, []*Node{leader, follower}, opsVoters(leader, follower))
	other.Kill()

	// A write through a follower is forwarded with the token.
	mustPost(t, follower.HTTPAddr(), "/topic/create?topic=token_a", nil)
	for _, n := range []*Node{leader, follower} {
		waitFor(t, opsTimeout, opsHasTopics(n, "token_a"))
	}

	// A join through a follower with the token from the environment.
	n4 := opsStartNode(t, "n4", nil, "-admin-token", token, "-bootstrap=false")
	opsMustCtl(t, env, "-addr", follower.HTTPAddr(), "join", "n4", n4.RaftAddr())
	three := []*Node{leader, follower, n4}
	opsWaitMembers(t, token, three, opsVoters(three...))
	waitFor(t, opsTimeout, func() error { return opsReady(n4, token) })

	// -join through a follower sends the token; with a wrong token a node
	// is refused and never becomes a member.
	n5 := opsStartNode(t, "n5", nil, "-admin-token", token, "-join", follower.RaftAddr())
	all := []*Node{leader, follower, n4, n5}
	opsWaitMembers(t, token, all, opsVoters(all...))
	waitFor(t, opsTimeout, func() error { return opsReady(n5, token) })
	waitFor(t, opsTimeout, opsHasTopics(n5, "token_a"))
	intruder := opsStartNode(t, "n6", nil, "-admin-token", "wrong-"+token, "-join", follower.RaftAddr())
	waitFor(t, opsTimeout, func() error {
		if opsLogCount(t, []*Node{intruder}, "join attempt failed", "without the admin token") == 0 {
			return fmt.Errorf("%s logged no join attempt refused for its token", intruder)
		}
		return nil
	})
	opsWaitMembers(t, token, all, opsVoters(all...))

	// Rolling restart: one node at a time, SIGTERM, start again, wait until
	// `raftlookupctl health` passes on it before the next.
	for _, n := range all {
		n.Term()
		n.Restart()
		waitFor(t, opsTimeout, func() error {
			if r := opsCtlRun(t, false, env, "-addr", n.HTTPAddr(), "health"); r.code != 0 {
				return fmt.Errorf("health of %s after its restart: %s", n, r)
			}
			return nil
		})
	}
	opsWaitMembers(t, token, all, opsVoters(all...))
	mustPost(t, n4.HTTPAddr(), "/topic/create?topic=token_b", nil)
	for _, n := range all {
		waitFor(t, opsTimeout, opsHasTopics(n, "token_a", "token_b"))
	}
}

// TestOpsNonVoter: a non-voter replicates and answers reads like the voters
// but never counts for quorum.
func TestOpsNonVoter(t *testing.T) {
	t.Parallel()
	const writeTimeout = 2 * time.Second
	wt := []string{"-write-timeout", writeTimeout.String()}
	c := StartCluster(t, 3, wt...)
	voters := c.Nodes
	n4 := opsStartNode(t, "n4", nil, append([]string{"-bootstrap=false"}, wt...)...)
	opsMustCtl(t, nil, "-addr", voters[1].HTTPAddr(), "join", "n4", n4.RaftAddr(), "-nonvoter")
	all := append(slices.Clone(voters), n4)
	want := append(opsVoters(voters...), opsMemberOf(n4, "Nonvoter"))
	opsWaitMembers(t, "", all, want)
	waitFor(t, opsTimeout, func() error { return opsReady(n4, "") })
	// A repeated non-voter join is a no-op too.
	opsMustCtl(t, nil, "-addr", voters[2].HTTPAddr(), "join", "n4", n4.RaftAddr(), "-nonvoter")
	opsWaitMembers(t, "", all, want)

	leader := opsLeader(t, "", opsTimeout, all...)
	mustPost(t, leader.HTTPAddr(), "/topic/create?topic=nv_a", nil)
	mustPost(t, leader.HTTPAddr(), "/channel/create?topic=nv_a&channel=ch", nil)
	var reads []string
	for _, level := range []string{"stale", "bounded", "linearizable"} {
		reads = append(reads, "/topics?consistency="+level, "/lookup?topic=nv_a&consistency="+level,
			"/channels?topic=nv_a&consistency="+level)
	}
	waitFor(t, opsTimeout, opsSameAnswers(leader, []*Node{n4}, reads...))

	// One voter lost (the leader): two of three remain, writes through the
	// non-voter still commit.
	leader.Kill()
	left := opsOthers(voters, leader)
	opsLeader(t, "", failoverTimeout, append(slices.Clone(left), n4)...)
	mustPost(t, n4.HTTPAddr(), "/topic/create?topic=nv_b", nil)
	for _, n := range append(slices.Clone(left), n4) {
		waitFor(t, opsTimeout, opsHasTopics(n, "nv_a", "nv_b"))
	}

	// A second voter lost: one voter and the non-voter are no quorum.
	// Nobody becomes leader, writes fail with 503 within the write timeout,
	// bounded reads on the non-voter fail once it is stale, stale reads
	// still answer.
	second := opsLeader(t, "", failoverTimeout, append(slices.Clone(left), n4)...)
	second.Kill()
	lastVoter := opsOthers(left, second)[0]
	// (How soon the 503 comes is TestOpsRecoverQuorumLoss's concern.)
	for _, n := range []*Node{n4, lastVoter} {
		status, body, took := opsPostTimed(t, n, "/topic/create?topic=nv_c_"+n.ID)
		if status != http.StatusServiceUnavailable {
			t.Errorf("%s without quorum: POST /topic/create answered %d %s after %v, want 503", n, status, body, took)
		}
	}
	if err := holdsFor(time.Second, func() error {
		for _, n := range []*Node{n4, lastVoter} {
			st, err := opsStatus(n, "")
			if err != nil {
				return err
			}
			if st.State == "Leader" || st.LeaderID != "" {
				return fmt.Errorf("%s without quorum reports state %s, leader %q", n, st.State, st.LeaderID)
			}
		}
		st, err := opsStatus(n4, "")
		if err == nil && st.State != "Follower" {
			err = fmt.Errorf("non-voter %s reports state %s, want Follower", n4, st.State)
		}
		return err
	}); err != nil {
		t.Error(err)
	}
	waitFor(t, opsTimeout, func() error {
		res, err := httpDo("GET", "http://"+n4.HTTPAddr()+"/topics?consistency=bounded", nil, nil)
		if err != nil {
			return err
		}
		if res.Status != http.StatusServiceUnavailable || !strings.Contains(string(res.Body), "LEADER_UNREACHABLE") {
			return fmt.Errorf("bounded /topics on the isolated non-voter: %d %s, want 503 LEADER_UNREACHABLE", res.Status, res.Body)
		}
		return nil
	})
	got, err := opsTopics(n4, "/topics?consistency=stale")
	if err != nil {
		t.Fatal(err)
	}
	for _, tp := range []string{"nv_a", "nv_b"} {
		if !slices.Contains(got, tp) {
			t.Errorf("stale /topics on the isolated non-voter = %v lacks %s", got, tp)
		}
	}
}

// TestOpsRecoverQuorumLoss: two of three nodes are lost for good; the
// survivor is restarted with a peers.json naming only itself, leads a
// one-node cluster with its data, and two replacements join it.
func TestOpsRecoverQuorumLoss(t *testing.T) {
	t.Parallel()
	const writeTimeout = 2 * time.Second
	wt := []string{"-write-timeout", writeTimeout.String()}
	c := StartCluster(t, 3, wt...)
	n1, n2, n3 := c.Nodes[0], c.Nodes[1], c.Nodes[2]
	mustPost(t, n2.HTTPAddr(), "/topic/create?topic=before_loss", nil)
	mustPost(t, n3.HTTPAddr(), "/channel/create?topic=before_loss&channel=ch", nil)
	waitFor(t, opsTimeout, opsSameAnswers(n2, []*Node{n1}, "/topics", "/channels?topic=before_loss"))

	n2.Kill()
	n3.Kill()
	status, body, took := opsPostTimed(t, n1, "/topic/create?topic=during_loss")
	if status != http.StatusServiceUnavailable {
		t.Fatalf("survivor without quorum: POST /topic/create answered %d %s after %v, want 503", status, body, took)
	}
	if took > writeTimeout+1500*time.Millisecond {
		t.Errorf("survivor without quorum: POST /topic/create answered 503 after %v, want it within -write-timeout %v "+
			"(README: \"HTTP mutations answer 503 after this long without a commit\"). A 503 after about 5 s whatever "+
			"the flag says means the flag does not reach the HTTP server: cmd/raftlookupd/main.go start() never sets "+
			"httpapi.Config.WriteTimeout, which keeps its 5 s default", took, writeTimeout)
	}

	// Recovery: stop the survivor, give it a peers.json naming only itself,
	// start it again.
	n1.Term()
	if err := opsWritePeers(n1.DataDir, [2]string{n1.ID, n1.RaftAddr()}); err != nil {
		t.Fatal(err)
	}
	n1.Restart()
	waitFor(t, opsTimeout, func() error {
		if err := opsReady(n1, ""); err != nil {
			return err
		}
		st, err := opsStatus(n1, "")
		if err != nil {
			return err
		}
		if st.State != "Leader" || st.LeaderID != n1.ID {
			return fmt.Errorf("recovered %s: state %s, leader %q, want Leader", n1, st.State, st.LeaderID)
		}
		return opsMembersAre(st, opsVoters(n1))
	})
	if _, err := os.Stat(filepath.Join(n1.DataDir, "peers.json")); !os.IsNotExist(err) {
		t.Errorf("peers.json still in the data dir after recovery (stat: %v); it must be renamed so a later restart does not recover again", err)
	}
	if _, err := os.Stat(filepath.Join(n1.DataDir, "peers.json.applied")); err != nil {
		t.Errorf("peers.json.applied: %v", err)
	}
	waitFor(t, opsTimeout, opsHasTopics(n1, "before_loss"))
	var cd channelsDoc
	if err := getJSON(n1.HTTPAddr(), "/channels?topic=before_loss", &cd); err != nil || !slices.Contains(cd.Channels, "ch") {
		t.Errorf("recovered %s: /channels?topic=before_loss = %v (err %v), want ch", n1, cd.Channels, err)
	}
	mustPost(t, n1.HTTPAddr(), "/topic/create?topic=after_recovery", nil)

	// Two fresh replacements (same ids, new machines) join through it.
	r2 := opsStartNode(t, "n2", nil, append([]string{"-join", n1.RaftAddr()}, wt...)...)
	r3 := opsStartNode(t, "n3", nil, append([]string{"-join", n1.RaftAddr()}, wt...)...)
	all := []*Node{n1, r2, r3}
	opsWaitMembers(t, "", all, opsVoters(all...))
	opsLeader(t, "", opsTimeout, all...)
	reads := []string{"/topics", "/channels?topic=before_loss", "/lookup?topic=after_recovery"}
	waitFor(t, opsTimeout, opsSameAnswers(n1, []*Node{r2, r3}, reads...))

	// The cluster is whole again: it survives the loss of n1.
	n1.Kill()
	opsLeader(t, "", failoverTimeout, r2, r3)
	mustPost(t, r3.HTTPAddr(), "/topic/create?topic=after_replacement", nil)
	for _, n := range []*Node{r2, r3} {
		waitFor(t, opsTimeout, opsHasTopics(n, "before_loss", "after_recovery", "after_replacement"))
	}
}

// TestOpsMetricsAndJSONLogs: /metrics is valid Prometheus text with the
// documented families, its values follow lookups and nsqd connections, and
// -log-format json writes one JSON object per line.
func TestOpsMetricsAndJSONLogs(t *testing.T) {
	t.Parallel()
	n := StartNode(t, "-log-format", "json")

	m := opsScrape(t, n)
	for _, name := range []string{
		"raftlookupd_raft_state", "raftlookupd_raft_term", "raftlookupd_raft_commit_index",
		"raftlookupd_raft_applied_index", "raftlookupd_raft_last_contact_seconds",
		"raftlookupd_raft_leader_changes_total", "raftlookupd_replication_queue_depth",
		"raftlookupd_replication_commit_seconds", "raftlookupd_registry_sessions",
		"raftlookupd_registry_topics", "raftlookupd_registry_channels", "raftlookupd_registry_producers",
		"raftlookupd_http_reads_total", "raftlookupd_http_read_seconds", "raftlookupd_tcp_connections",
		"raftlookupd_owned_sessions",
	} {
		if _, ok := m.types[name]; !ok {
			t.Errorf("/metrics lacks the family %s", name)
		}
	}
	for name, typ := range map[string]string{
		"raftlookupd_raft_leader_changes_total":  "counter",
		"raftlookupd_http_reads_total":           "counter",
		"raftlookupd_replication_commit_seconds": "histogram",
		"raftlookupd_http_read_seconds":          "histogram",
		"raftlookupd_raft_state":                 "gauge",
		"raftlookupd_tcp_connections":            "gauge",
		"raftlookupd_registry_sessions":          "gauge",
	} {
		if got := m.types[name]; got != typ {
			t.Errorf("%s has TYPE %q, want %s", name, got, typ)
		}
	}
	// A lone node leads, hears from itself, has committed its own entries.
	m.expect(t, `raftlookupd_raft_state{state="Leader"}`, 1)
	m.expect(t, `raftlookupd_raft_state{state="Follower"}`, 0)
	m.expect(t, `raftlookupd_raft_last_contact_seconds`, 0)
	for _, s := range []string{"raftlookupd_raft_term", "raftlookupd_raft_commit_index", "raftlookupd_raft_applied_index", "raftlookupd_raft_leader_changes_total"} {
		if v := m.value(t, s); v < 1 {
			t.Errorf("%s = %v, want at least 1", s, v)
		}
	}
	for _, s := range []string{"raftlookupd_replication_commit_seconds_count", "raftlookupd_replication_commit_seconds_sum",
		`raftlookupd_replication_commit_seconds_bucket{le="+Inf"}`, `raftlookupd_http_read_seconds_count{endpoint="lookup"}`,
		`raftlookupd_http_read_seconds_bucket{endpoint="lookup",le="+Inf"}`, "raftlookupd_replication_queue_depth"} {
		m.value(t, s)
	}

	// A lookup moves its counter and histogram by one.
	const topic = "metrics_a"
	mustPost(t, n.HTTPAddr(), "/topic/create?topic="+topic, nil)
	before := opsScrape(t, n)
	var ld lookupDoc
	if err := getJSON(n.HTTPAddr(), "/lookup?topic="+topic, &ld); err != nil {
		t.Fatal(err)
	}
	after := opsScrape(t, n)
	for _, s := range []string{`raftlookupd_http_reads_total{endpoint="lookup",outcome="ok"}`, `raftlookupd_http_read_seconds_count{endpoint="lookup"}`} {
		if b, a := before.value(t, s), after.value(t, s); a != b+1 {
			t.Errorf("%s went from %v to %v over one lookup, want +1", s, b, a)
		}
	}
	after.expect(t, "raftlookupd_registry_topics", 1)
	after.expect(t, "raftlookupd_registry_sessions", 0)
	after.expect(t, "raftlookupd_tcp_connections", 0)

	// An nsqd-like connection: IDENTIFY makes a session, REGISTER a
	// producer, closing it removes both.
	conn := opsIdentify(t, n.TCPAddr())
	waitFor(t, opsTimeout, opsMetricsAre(n, map[string]float64{
		"raftlookupd_tcp_connections": 1, "raftlookupd_registry_sessions": 1, "raftlookupd_owned_sessions": 1,
		"raftlookupd_registry_producers": 0,
	}))
	opsCommand(t, conn, "REGISTER "+topic+" ch_a", "OK")
	waitFor(t, opsTimeout, opsMetricsAre(n, map[string]float64{
		"raftlookupd_tcp_connections": 1, "raftlookupd_registry_sessions": 1,
		"raftlookupd_registry_topics": 1, "raftlookupd_registry_channels": 1, "raftlookupd_registry_producers": 2,
	}))
	conn.Close()
	waitFor(t, opsTimeout, opsMetricsAre(n, map[string]float64{
		"raftlookupd_tcp_connections": 0, "raftlookupd_registry_sessions": 0, "raftlookupd_owned_sessions": 0,
		"raftlookupd_registry_producers": 0, "raftlookupd_replication_queue_depth": 0,
	}))

	// JSON logs: every line the daemon wrote is one JSON object with
	// hclog's fields.
	b, err := os.ReadFile(n.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	lines, started := 0, false
	for i, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		if strings.HasPrefix(line, "==== ") { // the harness's own header
			continue
		}
		lines++
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("log line %d is not JSON: %v: %q", i+1, err, line)
			continue
		}
		for _, k := range []string{"@level", "@message", "@timestamp", "@module"} {
			if _, ok := rec[k]; !ok {
				t.Errorf("log line %d lacks %s: %q", i+1, k, line)
			}
		}
		started = started || rec["@message"] == "node started"
	}
	if lines < 5 || !started {
		t.Errorf("the JSON log has %d lines, node started logged: %v; want the start-up records", lines, started)
	}
}

// TestOpsBackupRestore: the two backup recipes. The newest snapshot
// directory copied from a running node, and the whole data dir of a stopped
// node, each placed in a fresh data dir with a peers.json naming the node
// alone at its new address, start a one-node cluster holding the topics.
func TestOpsBackupRestore(t *testing.T) {
	t.Parallel()
	snapFlags := []string{"-raft-snapshot-threshold", "16", "-raft-snapshot-interval", "200ms", "-orphan-grace", "2s"}
	c := StartCluster(t, 3, snapFlags...)
	leader := c.Leader(opsTimeout)
	followers := opsOthers(c.Nodes, leader)
	running, stopped := followers[0], followers[1]

	var topics []string
	for i := range 24 {
		tp := fmt.Sprintf("backup_%02d", i)
		topics = append(topics, tp)
		mustPost(t, leader.HTTPAddr(), "/topic/create?topic="+tp, nil)
	}
	mustPost(t, leader.HTTPAddr(), "/channel/create?topic=backup_00&channel=ch", nil)
	// An nsqd-like producer, registered through the leader, is in the
	// backups too.
	conn := opsIdentify(t, leader.TCPAddr())
	opsCommand(t, conn, "REGISTER backup_00 ch", "OK")
	for _, n := range c.Nodes {
		waitFor(t, opsTimeout, func() error {
			doc, err := lookupProducers(n.HTTPAddr(), "backup_00")
			if err == nil && len(doc.Producers) != 1 {
				err = fmt.Errorf("%s: /lookup?topic=backup_00 lists %+v, want the producer", n, doc.Producers)
			}
			return err
		})
	}
	st, err := opsStatus(leader, "")
	if err != nil {
		t.Fatal(err)
	}
	written := st.CommitIndex

	// Wait for a snapshot on the running follower that includes every
	// write (more writes make the log grow past the threshold sooner).
	var snap opsSnapshot
	filler, lastFiller := 0, time.Time{}
	waitFor(t, opsTimeout, func() error {
		s, err := opsNewestSnapshot(running.DataDir)
		if err == nil && s.index >= written {
			snap = s
			return nil
		}
		if time.Since(lastFiller) > 100*time.Millisecond {
			lastFiller = time.Now()
			filler++
			mustPost(t, leader.HTTPAddr(), fmt.Sprintf("/topic/create?topic=filler_%03d", filler), nil)
		}
		return fmt.Errorf("%s: newest snapshot %+v (err %v), want one at index >= %d", running, s, err, written)
	})
	t.Logf("%s: snapshot %s at index %d, size %d", running, filepath.Base(snap.dir), snap.index, snap.size)

	// Recipe 1: copy the newest snapshot directory while the node runs. It
	// may be replaced by a newer one while it is copied; then copy again.
	var copied opsSnapshot
	restoreFlags := []string{"-lease-timeout", "3s", "-lease-renew-interval", "500ms", "-orphan-grace", "2s"}
	fromSnapshot := opsStartNode(t, running.ID, func(dataDir, raftAddr string) error {
		var err error
		if copied, err = opsCopySnapshot(running.DataDir, dataDir, written); err != nil {
			return err
		}
		return opsWritePeers(dataDir, [2]string{running.ID, raftAddr})
	}, restoreFlags...)

	// Recipe 2: stop a node and copy its whole data dir.
	waitFor(t, opsTimeout, opsSameAnswers(leader, []*Node{stopped}, "/topics"))
	want, err := opsTopics(stopped, "/topics")
	if err != nil {
		t.Fatal(err)
	}
	stopped.Term()
	fromDataDir := opsStartNode(t, stopped.ID, func(dataDir, raftAddr string) error {
		if err := opsCopyDir(stopped.DataDir, dataDir); err != nil {
			return err
		}
		return opsWritePeers(dataDir, [2]string{stopped.ID, raftAddr})
	}, restoreFlags...)

	for _, r := range []*Node{fromSnapshot, fromDataDir} {
		waitFor(t, opsTimeout, func() error {
			if err := opsReady(r, ""); err != nil {
				return err
			}
			st, err := opsStatus(r, "")
			if err != nil {
				return err
			}
			if st.State != "Leader" || st.LeaderID != r.ID {
				return fmt.Errorf("restored %s: state %s, leader %q, want Leader", r, st.State, st.LeaderID)
			}
			return opsMembersAre(st, opsVoters(r))
		})
		waitFor(t, opsTimeout, opsHasTopics(r, topics...))
		var cd channelsDoc
		if err := getJSON(r.HTTPAddr(), "/channels?topic=backup_00", &cd); err != nil || !slices.Contains(cd.Channels, "ch") {
			t.Errorf("restored %s: /channels?topic=backup_00 = %v (err %v), want ch", r, cd.Channels, err)
		}
		mustPost(t, r.HTTPAddr(), "/topic/create?topic=after_restore", nil)
		waitFor(t, opsTimeout, opsHasTopics(r, "after_restore"))
		// The producer's node is not part of the restored cluster: its
		// session is orphaned once the restored leader sees its lease
		// lapse, and goes after the grace.
		waitFor(t, opsTimeout, noProducers(r.HTTPAddr(), "backup_00"))
	}
	got, err := opsTopics(fromDataDir, "/topics")
	if err != nil {
		t.Fatal(err)
	}
	if wantAll := append(slices.Clone(want), "after_restore"); !slices.Equal(got, opsSorted(wantAll)) {
		t.Errorf("restored from the data dir of %s: /topics = %v, want %v", stopped, got, opsSorted(wantAll))
	}

	// Raft needs the current term at least the term of everything in the
	// log and snapshot; a leader appending entries of a lower term after a
	// snapshot of a higher one lets a node holding only that snapshot win a
	// later election (its last term looks newer) and overwrite committed
	// entries.
	if st, err := opsStatus(fromSnapshot, ""); err != nil {
		t.Fatal(err)
	} else if st.Term < copied.term {
		t.Errorf("restored from a copied snapshot of term %d, %s leads in term %d: its new entries carry a term below "+
			"the snapshot's. raft.RecoverCluster leaves the stable store's CurrentTerm (0 in a fresh data dir) as it "+
			"is; cluster/recover.go recoverCluster should raise it to the recovery snapshot's term", copied.term, fromSnapshot, st.Term)
	}

	// A cluster restored from a snapshot alone takes a new member.
	joiner := opsStartNode(t, "n9", nil, "-join", fromSnapshot.RaftAddr())
	pair := []*Node{fromSnapshot, joiner}
	opsWaitMembers(t, "", pair, opsVoters(pair...))
	opsLeader(t, "", opsTimeout, pair...)
	waitFor(t, opsTimeout, opsSameAnswers(fromSnapshot, []*Node{joiner}, "/topics", "/channels?topic=backup_00"))
}

// ---------------------------------------------------------------------------
// helpers of this file

func opsSorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// opsPostTimed POSTs with a client more patient than any write timeout
// under test and returns the status, body and how long the answer took.
func opsPostTimed(t testing.TB, n *Node, pathq string) (int, string, time.Duration) {
	t.Helper()
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	start := time.Now()
	resp, err := client.Post("http://"+n.HTTPAddr()+pathq, "", nil)
	if err != nil {
		t.Fatalf("%s: POST %s: %v", n, pathq, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), time.Since(start)
}

// opsCopySnapshot copies the newest finished snapshot of srcDataDir, which
// must include index minIndex, into dstDataDir/snapshots/. A snapshot
// removed by retention while it was copied is copied again from the newer
// one; a copy is checked against the size its meta.json records.
func opsCopySnapshot(srcDataDir, dstDataDir string, minIndex uint64) (opsSnapshot, error) {
	var lastErr error
	for range 5 {
		s, err := opsNewestSnapshot(srcDataDir)
		if err != nil {
			return s, err
		}
		if s.index < minIndex {
			return s, fmt.Errorf("newest snapshot %s is at index %d, below %d", s.dir, s.index, minIndex)
		}
		dst := filepath.Join(dstDataDir, "snapshots", filepath.Base(s.dir))
		if lastErr = opsCopyDir(s.dir, dst); lastErr == nil {
			var fi os.FileInfo
			if fi, lastErr = os.Stat(filepath.Join(dst, "state.bin")); lastErr == nil && fi.Size() == s.size {
				return s, nil
			} else if lastErr == nil {
				lastErr = fmt.Errorf("%s/state.bin: copied %d bytes, meta.json says %d", dst, fi.Size(), s.size)
			}
		}
		os.RemoveAll(dst)
	}
	return opsSnapshot{}, fmt.Errorf("copying the newest snapshot: %w", lastErr)
}

// opsIdentify opens an nsqd-like TCP connection: magic, IDENTIFY, and checks
// the JSON answer.
func opsIdentify(t testing.TB, addr string) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	body := `{"broadcast_address":"127.0.0.1","hostname":"ops-nsqd","tcp_port":24150,"http_port":24151,"version":"1.3.0"}`
	if _, err := conn.Write([]byte("  V1" + identifyFrame(body))); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := readFrame(conn)
	if err != nil {
		t.Fatalf("IDENTIFY: %v", err)
	}
	var doc struct {
		TCPPort int    `json:"tcp_port"`
		Version string `json:"version"`
	}
	if err := json.Unmarshal(resp, &doc); err != nil || doc.TCPPort != portOf(addr) {
		t.Fatalf("IDENTIFY answered %q (%v), want JSON with tcp_port %d", resp, err, portOf(addr))
	}
	return conn
}

// opsCommand sends one command line and checks its framed answer.
func opsCommand(t testing.TB, conn net.Conn, line, want string) {
	t.Helper()
	if _, err := conn.Write([]byte(line + "\n")); err != nil {
		t.Fatal(err)
	}
	resp, err := readFrame(conn)
	if err != nil || string(resp) != want {
		t.Fatalf("%s: answered %q (%v), want %q", line, resp, err, want)
	}
}

// ---------------------------------------------------------------------------
// Prometheus text format

// opsMetrics is one parsed scrape: TYPE per family and value per series
// (name plus the label text exactly as written).
type opsMetrics struct {
	types  map[string]string
	series map[string]float64
	text   string
}

func opsScrape(t testing.TB, n *Node) *opsMetrics {
	t.Helper()
	res, err := httpDo("GET", "http://"+n.HTTPAddr()+"/metrics", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", res.Status, res.Body)
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") || !strings.Contains(ct, "version=0.0.4") {
		t.Errorf("GET /metrics: Content-Type %q, want text/plain; version=0.0.4", ct)
	}
	m, err := opsParseMetrics(string(res.Body))
	if err != nil {
		t.Fatalf("/metrics is not valid Prometheus text: %v\n%s", err, res.Body)
	}
	return m
}

func (m *opsMetrics) value(t testing.TB, series string) float64 {
	t.Helper()
	v, ok := m.series[series]
	if !ok {
		t.Fatalf("/metrics has no series %s", series)
	}
	return v
}

func (m *opsMetrics) expect(t testing.TB, series string, want float64) {
	t.Helper()
	if v := m.value(t, series); v != want {
		t.Errorf("%s = %v, want %v", series, v, want)
	}
}

// opsMetricsAre checks series values in a fresh scrape.
func opsMetricsAre(n *Node, want map[string]float64) func() error {
	return func() error {
		res, err := httpDo("GET", "http://"+n.HTTPAddr()+"/metrics", nil, nil)
		if err != nil {
			return err
		}
		m, err := opsParseMetrics(string(res.Body))
		if err != nil {
			return err
		}
		for s, w := range want {
			if v, ok := m.series[s]; !ok || v != w {
				return fmt.Errorf("%s = %v (present: %v), want %v", s, v, ok, w)
			}
		}
		return nil
	}
}

// opsParseMetrics is a strict parser of the text exposition format 0.0.4 as
// raftlookupd writes it: per family "# HELP name text" and "# TYPE name
// type" once, before its samples, which come together; samples are
// `name{label="value",...} value` with a float value and no timestamp. A
// histogram's buckets carry le, are cumulative and end with +Inf equal to
// _count.
func opsParseMetrics(text string) (*opsMetrics, error) {
	m := &opsMetrics{types: map[string]string{}, series: map[string]float64{}, text: text}
	if !strings.HasSuffix(text, "\n") {
		return nil, fmt.Errorf("does not end with a newline")
	}
	helps := map[string]bool{}
	done := map[string]bool{} // families whose samples are over
	current := ""
	sc := bufio.NewScanner(strings.NewReader(text))
	for ln := 1; sc.Scan(); ln++ {
		line := sc.Text()
		fail := func(format string, a ...any) error {
			return fmt.Errorf("line %d %q: %s", ln, line, fmt.Sprintf(format, a...))
		}
		if strings.HasPrefix(line, "#") {
			f := strings.SplitN(line, " ", 4)
			if len(f) < 4 || !opsMetricName(f[2]) {
				return nil, fail("want # HELP name text or # TYPE name type")
			}
			name := f[2]
			if done[name] || (current == name && m.types[name] != "" && f[1] == "HELP") {
				return nil, fail("family %s declared again", name)
			}
			switch f[1] {
			case "HELP":
				if helps[name] {
					return nil, fail("second HELP for %s", name)
				}
				helps[name] = true
			case "TYPE":
				if _, ok := m.types[name]; ok {
					return nil, fail("second TYPE for %s", name)
				}
				switch f[3] {
				case "counter", "gauge", "histogram", "summary", "untyped":
				default:
					return nil, fail("unknown type %q", f[3])
				}
				m.types[name] = f[3]
			default:
				return nil, fail("comment other than HELP or TYPE")
			}
			if current != "" && current != name {
				done[current] = true
			}
			current = name
			continue
		}
		name, labels, value, err := opsParseSample(line)
		if err != nil {
			return nil, fail("%v", err)
		}
		family := name
		suffixes := map[string][]string{"histogram": {"_bucket", "_sum", "_count"}, "summary": {"_sum", "_count"}}
		for _, suf := range suffixes[m.types[current]] {
			if name == current+suf {
				family = current
			}
		}
		if family != current || m.types[family] == "" || !helps[family] {
			return nil, fail("sample outside its family's HELP and TYPE (current family %q)", current)
		}
		if strings.HasSuffix(family, "_total") && m.types[family] != "counter" {
			return nil, fail("%s ends in _total but is a %s", family, m.types[family])
		}
		key := name + labels
		if _, dup := m.series[key]; dup {
			return nil, fail("duplicate series")
		}
		m.series[key] = value
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return m, opsCheckHistograms(m)
}

// opsParseSample splits `name{labels} value`; labels are returned as
// written (with braces), after checking their syntax.
func opsParseSample(line string) (name, labels string, value float64, err error) {
	i := strings.IndexAny(line, "{ ")
	if i <= 0 {
		return "", "", 0, fmt.Errorf("no metric name")
	}
	name, rest := line[:i], line[i:]
	if !opsMetricName(name) {
		return "", "", 0, fmt.Errorf("bad metric name %q", name)
	}
	if strings.HasPrefix(rest, "{") {
		end, err := opsLabelsEnd(rest)
		if err != nil {
			return "", "", 0, err
		}
		labels, rest = rest[:end], rest[end:]
	}
	if !strings.HasPrefix(rest, " ") || strings.Count(rest, " ") != 1 {
		return "", "", 0, fmt.Errorf("want exactly one space and a value after the series")
	}
	v := rest[1:]
	switch v {
	case "+Inf", "-Inf", "NaN":
	default:
		if strings.ContainsAny(v, "IiNn") { // no "inf"/"nan" spellings Prometheus would refuse
			return "", "", 0, fmt.Errorf("bad value %q", v)
		}
	}
	f, perr := opsParseFloat(v)
	if perr != nil {
		return "", "", 0, fmt.Errorf("bad value %q: %v", v, perr)
	}
	return name, labels, f, nil
}

// opsLabelsEnd returns the index just past the closing brace of a label set
// `{a="x",b="y\"z"}`, checking names, quoting and escapes.
func opsLabelsEnd(s string) (int, error) {
	i := 1
	if i < len(s) && s[i] == '}' {
		return 0, fmt.Errorf("empty label set")
	}
	for {
		j := i
		for j < len(s) && (s[j] == '_' || s[j] >= 'a' && s[j] <= 'z' || s[j] >= 'A' && s[j] <= 'Z' || j > i && s[j] >= '0' && s[j] <= '9') {
			j++
		}
		if j == i || j+1 >= len(s) || s[j] != '=' || s[j+1] != '"' {
			return 0, fmt.Errorf("bad label at %q", s[i:])
		}
		j += 2
		for ; j < len(s) && s[j] != '"'; j++ {
			if s[j] == '\\' {
				if j+1 >= len(s) || !strings.ContainsRune(`\"n`, rune(s[j+1])) {
					return 0, fmt.Errorf("bad escape in label value")
				}
				j++
			} else if s[j] == '\n' {
				return 0, fmt.Errorf("newline in label value")
			}
		}
		if j >= len(s) {
			return 0, fmt.Errorf("unterminated label value")
		}
		j++
		switch {
		case j < len(s) && s[j] == ',':
			i = j + 1
		case j < len(s) && s[j] == '}':
			return j + 1, nil
		default:
			return 0, fmt.Errorf("want , or } after a label")
		}
	}
}

func opsMetricName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if !(r == '_' || r == ':' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// opsCheckHistograms checks every histogram series: cumulative buckets
// ending at le="+Inf" equal to _count, and a _sum.
func opsCheckHistograms(m *opsMetrics) error {
	type hist struct {
		buckets []float64
		lastLe  float64
		inf     bool
	}
	hs := map[string]*hist{} // by family + labels without le
	for name, typ := range m.types {
		if typ != "histogram" {
			continue
		}
		for _, line := range strings.Split(m.text, "\n") {
			if !strings.HasPrefix(line, name+"_bucket{") {
				continue
			}
			sname, labels, v, err := opsParseSample(line)
			if err != nil || sname != name+"_bucket" {
				continue
			}
			le, rest, ok := opsCutLe(labels)
			if !ok {
				return fmt.Errorf("%s bucket without le: %s", name, line)
			}
			key := name + rest
			h := hs[key]
			if h == nil {
				h = &hist{lastLe: -1e308}
				hs[key] = h
			}
			if h.inf {
				return fmt.Errorf("%s: bucket after le=\"+Inf\": %s", key, line)
			}
			lv, err := opsParseFloat(le)
			if err != nil || lv <= h.lastLe {
				return fmt.Errorf("%s: le %q not increasing", key, le)
			}
			if len(h.buckets) > 0 && v < h.buckets[len(h.buckets)-1] {
				return fmt.Errorf("%s: buckets not cumulative at le %q", key, le)
			}
			h.lastLe, h.buckets, h.inf = lv, append(h.buckets, v), le == "+Inf"
		}
	}
	for key, h := range hs {
		name, labels, _ := strings.Cut(key, "{")
		if labels != "" {
			labels = "{" + labels
		}
		count, okc := m.series[name+"_count"+labels]
		_, oks := m.series[name+"_sum"+labels]
		if !h.inf || !okc || !oks || count != h.buckets[len(h.buckets)-1] {
			return fmt.Errorf("histogram %s: +Inf bucket %v, _count %v (%v), _sum present %v", key, h.inf, count, okc, oks)
		}
	}
	return nil
}

// opsCutLe removes the le label from a label set written by raftlookupd
// (le last) and returns its value and the rest.
func opsCutLe(labels string) (le, rest string, ok bool) {
	i := strings.LastIndex(labels, `le="`)
	if i < 0 || !strings.HasSuffix(labels, `"}`) {
		return "", "", false
	}
	le = labels[i+4 : len(labels)-2]
	rest = strings.TrimSuffix(labels[:i], ",")
	if rest == "{" {
		return le, "", true
	}
	return le, rest + "}", true
}

// TestOpsStatusShowsRegistryCounts: /cluster/status gives every member's
// registry size, so an operator sees at a glance that the nodes hold the
// same registry: two producers (one per follower and the leader) register
// topics and channels, and every member reports the same, exact counts.
func TestOpsStatusShowsRegistryCounts(t *testing.T) {
	t.Parallel()
	c := StartCluster(t, 3)
	leader := opsLeader(t, "", opsTimeout, c.Nodes...)
	follower := opsOthers(c.Nodes, leader)[0]
	a := haDialProducer(t, leader.TCPAddr(), haIdentity{"127.0.0.1", 24150, 24151})
	b := haDialProducer(t, follower.TCPAddr(), haIdentity{"127.0.0.1", 24152, 24153})
	for _, tc := range [][2]string{{"counts_a", "x"}, {"counts_a", "y"}, {"counts_b", ""}} {
		a.Register(t, tc[0], tc[1])
	}
	b.Register(t, "counts_a", "x")
	// a: topic counts_a with channels x and y, topic counts_b (4 records);
	// b: topic counts_a with channel x (2 records).
	want := wire.RegistryCounts{Sessions: 2, Topics: 2, Channels: 2, Producers: 6}
	for _, via := range []*Node{leader, follower} {
		waitFor(t, opsTimeout, func() error {
			st, err := opsStatus(via, "")
			if err != nil {
				return err
			}
			if len(st.Members) != 3 {
				return fmt.Errorf("%s lists %d members", via, len(st.Members))
			}
			if st.Registry != want {
				return fmt.Errorf("%s reports its registry as %+v, want %+v", via, st.Registry, want)
			}
			for _, m := range st.Members {
				if m.Registry == nil || *m.Registry != want {
					return fmt.Errorf("via %s: member %s registry %+v, want %+v", via, m.ID, m.Registry, want)
				}
			}
			return nil
		})
	}
	res := opsMustCtl(t, nil, "-addr", follower.HTTPAddr(), "status")
	if !strings.Contains(res.stdout, "SESSIONS  RECORDS") || strings.Count(res.stdout, "  2         6\n") != 3 {
		t.Errorf("raftlookupctl status does not show 2 sessions and 6 records for each member:\n%s", res.stdout)
	}
}
