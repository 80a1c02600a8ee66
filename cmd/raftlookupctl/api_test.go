package main

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/raftlookupd/raftlookupd/cluster"
)

// The CLI mirrors the admin API's types instead of linking package cluster
// (and raft with it); these tests catch the mirror drifting from the source.

func TestPathsMatchCluster(t *testing.T) {
	for _, p := range []struct{ ours, theirs string }{
		{pathStatus, cluster.PathStatus},
		{pathReady, cluster.PathReady},
		{pathJoin, cluster.PathJoin},
		{pathLeave, cluster.PathLeave},
		{pathTransfer, cluster.PathTransfer},
	} {
		if p.ours != p.theirs {
			t.Errorf("path %q, cluster has %q", p.ours, p.theirs)
		}
	}
}

// decodeStrict decodes b into v refusing unknown fields, as the server does.
func decodeStrict(t *testing.T, b []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("decoding %s into %T: %v", b, v, err)
	}
}

func TestStatusMatchesCluster(t *testing.T) {
	lag := uint64(4)
	src := cluster.Status{NodeID: "n1", State: "Leader", LeaderID: "n1", LeaderAddress: "a:1", Term: 2,
		LastLogIndex: 3, CommitIndex: 4, AppliedIndex: 5, Members: []cluster.MemberStatus{
			{ID: "n1", RaftAddress: "a:1", HTTPAddress: "a:2", TCPAddress: "a:3", Suffrage: "Voter", Leader: true, Lag: &lag},
			{ID: "n2", RaftAddress: "b:1", Suffrage: "Nonvoter"},
		}}
	want, err := json.Marshal(src)
	if err != nil {
		t.Fatal(err)
	}
	var st status
	decodeStrict(t, want, &st)
	got, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("status round trip:\n got %s\nwant %s", got, want)
	}
}

func TestRequestsMatchCluster(t *testing.T) {
	for _, voter := range []bool{true, false} {
		b, _ := json.Marshal(joinRequest{ID: "n4", RaftAddress: "h:1", Voter: voter})
		var req cluster.JoinRequest
		decodeStrict(t, b, &req)
		if req.ID != "n4" || req.RaftAddress != "h:1" || req.IsVoter() != voter {
			t.Errorf("join %s decoded as %+v", b, req)
		}
	}
	b, _ := json.Marshal(leaveRequest{ID: "n2"})
	var leave cluster.LeaveRequest
	decodeStrict(t, b, &leave)
	if leave.ID != "n2" {
		t.Errorf("leave %s decoded as %+v", b, leave)
	}
	b, _ = json.Marshal(transferRequest{ID: "n3"})
	var transfer cluster.TransferRequest
	decodeStrict(t, b, &transfer)
	if transfer.ID != "n3" {
		t.Errorf("transfer %s decoded as %+v", b, transfer)
	}
}
