package httpapi

import (
	"encoding/json"
	"math/rand"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/raftlookupd/raftlookupd/fsm"
)

// TestAppendLookupMatchesEncodingJSON: the hand-written /lookup encoder gives
// json.Marshal's bytes for any strings, escapes and invalid UTF-8 included.
func TestAppendLookupMatchesEncodingJSON(t *testing.T) {
	tricky := []string{"", "plain", `q"uote`, `back\slash`, "<b>&amp;", "tab\tnl\ncr\r", "\b\f\x00\x1f\x7f",
		"caf\u00e9", "\u2028\u2029", "\xff\xfe", "ok\xc3", "日本語", "a\u00a0b"}
	rnd := rand.New(rand.NewSource(1))
	randStr := func() string {
		if rnd.Intn(2) == 0 {
			return tricky[rnd.Intn(len(tricky))]
		}
		b := make([]byte, rnd.Intn(12))
		for i := range b {
			b[i] = byte(rnd.Intn(256))
		}
		return string(b)
	}
	for i := 0; i < 2000; i++ {
		var channels []string
		var peers []fsm.PeerInfo
		for range rnd.Intn(4) {
			channels = append(channels, randStr())
		}
		for range rnd.Intn(4) {
			peers = append(peers, fsm.PeerInfo{RemoteAddress: randStr(), Hostname: randStr(), BroadcastAddress: randStr(),
				TCPPort: rnd.Intn(1<<17) - 1000, HTTPPort: rnd.Int(), Version: randStr()})
		}
		ps := make([]lookupProducer, len(peers))
		for i, p := range peers {
			ps[i] = producerJSON(p)
		}
		want, err := json.Marshal(lookupResponse{Channels: nonNil(channels), Producers: ps})
		if err != nil {
			t.Fatal(err)
		}
		if got := appendLookup(nil, channels, peers); string(got) != string(want) {
			t.Fatalf("appendLookup(%q, %+v)\n got %s\nwant %s", channels, peers, got, want)
		}
	}
}

// TestLookupRemembered serves /lookup from the real registry: the answer is
// remembered on the first request, served from the memo on the next with
// the same status, headers and body, and replaced once the topic changes.
func TestLookupRemembered(t *testing.T) {
	f := fsm.New()
	var idx uint64
	apply := func(cmds ...fsm.Command) {
		for _, c := range cmds {
			idx++
			data, err := c.Encode()
			if err != nil {
				t.Fatal(err)
			}
			f.Apply(&raft.Log{Index: idx, Data: data})
		}
	}
	now := time.Now().UnixNano()
	sid := func(seq uint64) fsm.SessionID { return fsm.SessionID{Owner: "n1", Incarnation: 1, Seq: seq} }
	peer := func(host string) fsm.PeerInfo {
		return fsm.PeerInfo{RemoteAddress: host + ":1", Hostname: host, BroadcastAddress: host, TCPPort: 4150, HTTPPort: 4151, Version: "1.3.0"}
	}
	apply(fsm.Command{Op: fsm.OpRenewLease, Session: sid(0), Time: now},
		fsm.Command{Op: fsm.OpOpenSession, Session: sid(1), Peer: peer("a"), Time: now},
		fsm.Command{Op: fsm.OpOpenSession, Session: sid(2), Peer: peer("b"), Time: now},
		fsm.Command{Op: fsm.OpRegister, Session: sid(1), Topic: "t", Channel: "c"})
	reg := f.Registry()
	e := newServeEnv(t, newTestServer(t, reg, newFakeCluster(nil), nil))

	const one = `{"channels":["c"],"producers":[{"remote_address":"a:1","hostname":"a","broadcast_address":"a",` +
		`"tcp_port":4150,"http_port":4151,"version":"1.3.0"}]}`
	first := e.do(get("/lookup?topic=t"))
	if first.status != 200 || first.body != one {
		t.Fatalf("first /lookup = %d %s\nwant %s", first.status, first.body, one)
	}
	if reg.MemoBytes() != int64(len(one)) {
		t.Fatalf("MemoBytes = %d after the first lookup, want %d", reg.MemoBytes(), len(one))
	}
	second := e.do(get("/lookup?topic=t"))
	if second.status != first.status || second.body != first.body {
		t.Fatalf("remembered /lookup = %d %s, first %d %s", second.status, second.body, first.status, first.body)
	}
	for _, h := range []string{"Content-Type", "X-Nsq-Content-Type", "Content-Length", headerLeader, headerAppliedIndex, headerLastContact} {
		if g, w := second.header.Values(h), first.header.Values(h); len(g) != 1 || len(w) != 1 || g[0] != w[0] {
			t.Errorf("header %s: remembered %q, first %q", h, g, w)
		}
	}

	apply(fsm.Command{Op: fsm.OpRegister, Session: sid(2), Topic: "t", Channel: "d"})
	const two = `{"channels":["c","d"],"producers":[{"remote_address":"a:1","hostname":"a","broadcast_address":"a",` +
		`"tcp_port":4150,"http_port":4151,"version":"1.3.0"},{"remote_address":"b:1","hostname":"b",` +
		`"broadcast_address":"b","tcp_port":4150,"http_port":4151,"version":"1.3.0"}]}`
	if resp := e.do(get("/lookup?topic=t")); resp.status != 200 || resp.body != two {
		t.Fatalf("/lookup after a REGISTER = %d %s\nwant %s", resp.status, resp.body, two)
	}
	if resp := e.do(get("/lookup?topic=nope")); resp.status != 404 {
		t.Fatalf("/lookup of a missing topic = %d %s", resp.status, resp.body)
	}
}
