package e2e

// The Raft-port half of TestHostileClients' generators: unknown stream
// kinds, garbage on raft and RPC streams, forged /rpc/apply batches and the
// other RPC paths from loopback, and, from a non-member source, requests
// loopback would be allowed to make.

import (
	"encoding/binary"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/raftlookupd/raftlookupd/fsm"
)

// raftOne connects to a random node's Raft port from loopback.
func (h *hostile) raftOne(r *rand.Rand) {
	n := h.node(r)
	switch p := r.IntN(100); {
	case p < 15:
		kind := byte(r.IntN(256))
		for kind == muxRaft || kind == muxRPC {
			kind = byte(r.IntN(256))
		}
		h.count("raft-kind", rawPortExchange(n.RaftAddr(), append([]byte{kind}, h.bytes(r, size(r, 64<<10))...)))
	case p < 30:
		h.count("raft-stream", rawPortExchange(n.RaftAddr(), append([]byte{muxRaft}, h.bytes(r, size(r, 64<<10))...)))
	case p < 40:
		h.count("rpc-garbage", rawPortExchange(n.RaftAddr(), append([]byte{muxRPC}, h.bytes(r, 1+size(r, 64<<10))...)))
	case p < 85:
		h.forgedApply(r, n)
	default:
		h.rpcOther(r, n)
	}
}

// rawPortExchange writes b (stream-kind byte included) to a Raft port and
// reports what came back.
func rawPortExchange(addr string, b []byte) string {
	c, err := net.DialTimeout("tcp", addr, rawTimeout)
	if err != nil {
		return "dial-error"
	}
	defer c.Close()
	out := rawWriteRead(c, b, time.Second)
	if out == "answered-closed" {
		// An HTTP 400 from the RPC server, or raft's error reply.
		return "answered"
	}
	return out
}

// forgedBatch returns a forged /rpc/apply body and its kind. Every one of
// them is a batch the leader must refuse; none of them names only the
// origin's own sessions (those the RPC admits from loopback by design).
func (h *hostile) forgedBatch(r *rand.Rand) ([]byte, string) {
	members := []string{"n1", "n2", "n3"}
	origin := members[r.IntN(3)]
	other := members[r.IntN(3)]
	for other == origin {
		other = members[r.IntN(3)]
	}
	inc, seq := r.Uint64(), r.Uint64()
	own := fsm.SessionID{Owner: origin, Incarnation: inc, Seq: r.Uint64N(100)}
	foreign := fsm.SessionID{Owner: other, Incarnation: r.Uint64(), Seq: r.Uint64N(100)}
	peer := fsm.PeerInfo{RemoteAddress: "127.0.0.1:1", BroadcastAddress: "forged", TCPPort: 1, HTTPPort: 2, Version: "1.3.0"}
	// Innocent commands mixed in: a forged batch is refused whole.
	filler := []fsm.Command{
		{Op: fsm.OpCreateTopic, Topic: "hforged"},
		{Op: fsm.OpCreateChannel, Topic: "hforged", Channel: "c0"},
		{Op: fsm.OpOpenSession, Session: own, Peer: peer, Time: 1},
		{Op: fsm.OpRegister, Session: own, Topic: "hforged"},
	}
	var bad fsm.Command
	kind := ""
	switch r.IntN(12) {
	case 0:
		kind, bad = "foreign-open", fsm.Command{Op: fsm.OpOpenSession, Session: foreign, Peer: peer, Time: 1}
	case 1:
		kind, bad = "foreign-register", fsm.Command{Op: fsm.OpRegister, Session: foreign, Topic: "hforged", Channel: "c1"}
	case 2:
		kind, bad = "foreign-close", fsm.Command{Op: fsm.OpCloseSession, Session: foreign}
	case 3:
		kind, bad = "foreign-close-owner", fsm.Command{Op: fsm.OpCloseOwner, Session: fsm.SessionID{Owner: other, Incarnation: r.Uint64()}}
	case 4:
		kind, bad = "foreign-renew", fsm.Command{Op: fsm.OpRenewLease, Session: fsm.SessionID{Owner: other, Incarnation: r.Uint64()}, Time: 1}
	case 5:
		kind, bad = "foreign-member", fsm.Command{Op: fsm.OpSetMember, Member: fsm.Member{ID: other, RaftAddress: "127.0.0.1:1", HTTPAddress: "127.0.0.1:2", TCPAddress: "127.0.0.1:3"}}
	case 6:
		kind, bad = "expire-lease", fsm.Command{Op: fsm.OpExpireLease, Session: fsm.SessionID{Owner: other, Incarnation: r.Uint64()}, RenewIndex: r.Uint64()}
	case 7:
		kind, bad = "expire-owner", fsm.Command{Op: fsm.OpExpireOwner, Session: fsm.SessionID{Owner: other, Incarnation: r.Uint64()}}
	case 8:
		kind, bad = "remove-member", fsm.Command{Op: fsm.OpRemoveMember, Member: fsm.Member{ID: other}}
	case 9:
		inner := fsm.Command{Op: fsm.OpBatch, Session: fsm.SessionID{Owner: origin, Incarnation: inc}, BatchSeq: seq,
			Batch: []fsm.Command{{Op: fsm.OpCreateTopic, Topic: "hnested"}}}
		return nestedBatch(origin, inner), "nested"
	case 10:
		// Not a batch at all.
		cmds := []fsm.Command{{Op: fsm.OpCreateTopic, Topic: "hforged"}, {Op: fsm.OpRemoveMember, Member: fsm.Member{ID: other}},
			{Op: fsm.OpExpireLease, Session: fsm.SessionID{Owner: other, Incarnation: 1}}}
		return mustEncode(cmds[r.IntN(len(cmds))]), "not-a-batch"
	default:
		// Garbage that claims to be a batch: truncated, trailing bytes, a
		// wrong version, a count far beyond the bytes.
		b := mustEncode(fsm.Command{Op: fsm.OpBatch, Session: own, BatchSeq: seq, Batch: filler[:1]})
		switch r.IntN(4) {
		case 0:
			return b[:r.IntN(len(b))], "truncated"
		case 1:
			return append(b, h.bytes(r, 1+r.IntN(100))...), "trailing"
		case 2:
			b = append([]byte(nil), b...)
			b[0] = byte(2 + r.IntN(250))
			return b, "version"
		default:
			hdr := []byte{fsm.Version, byte(fsm.OpBatch), 2, 'n', '1', 1, 1}
			hdr = binary.AppendUvarint(hdr, 1<<62)
			return append(hdr, h.bytes(r, r.IntN(1000))...), "count"
		}
	}
	cmds := append([]fsm.Command(nil), filler[:r.IntN(len(filler)+1)]...)
	cmds = slices.Insert(cmds, r.IntN(len(cmds)+1), bad)
	b, err := (&fsm.Command{Op: fsm.OpBatch, Session: fsm.SessionID{Owner: origin, Incarnation: inc}, BatchSeq: seq, Batch: cmds}).Encode()
	if err != nil {
		// The encoder refuses what can never apply; its refusal is not
		// the leader's, so send the bytes of a plain forgery instead.
		return mustEncode(fsm.Command{Op: fsm.OpBatch, Session: fsm.SessionID{Owner: origin, Incarnation: inc}, BatchSeq: seq,
			Batch: []fsm.Command{{Op: fsm.OpRemoveMember, Member: fsm.Member{ID: other}}}}), "remove-member"
	}
	return b, kind
}

// forgedApply POSTs a forged batch on an RPC stream; anything but a
// refusal is a violation.
func (h *hostile) forgedApply(r *rand.Rand, n *Node) {
	body, kind := h.forgedBatch(r)
	if r.IntN(40) == 0 {
		body, kind = h.bytes(r, fsm.MaxEntryBytes+1+r.IntN(1<<20)), "oversized"
	}
	res := rpcCall(n.RaftAddr(), nil, nil, "POST", "/rpc/apply", body)
	outcome := "no-answer"
	if res.Err == nil {
		outcome = strconv.Itoa(res.Status)
	}
	h.count("rpc-forged", kind+":"+outcome)
	if res.Err == nil && res.Status/100 == 2 {
		h.violate("forged batch (%s) accepted by %s: %s", kind, n.ID, res)
	}
}

// rpcOther: the other RPC paths with bodies they refuse, reads, and unknown
// paths and methods.
func (h *hostile) rpcOther(r *rand.Rand, n *Node) {
	method, path := "GET", ""
	var body []byte
	switch r.IntN(5) {
	case 0:
		method, path = "POST", []string{"/rpc/join", "/rpc/leave", "/rpc/transfer"}[r.IntN(3)]
		body = h.badAdminBody(r)
	case 1:
		path = []string{"/rpc/status", "/rpc/read-index"}[r.IntN(2)]
	case 2:
		method, path = httpMethods[r.IntN(len(httpMethods))], []string{"/rpc/apply", "/rpc/status", "/rpc/join"}[r.IntN(3)]
		if method == "POST" || method == "GET" || method == "HEAD" || method == "get" {
			method = "PUT"
		}
	default:
		path = h.randomPath(r)
		if len(path) > 8<<10 {
			path = path[:8<<10]
		}
	}
	res := rpcCall(n.RaftAddr(), nil, nil, method, path, body)
	outcome := "no-answer"
	if res.Err == nil {
		outcome = strconv.Itoa(res.Status)
	}
	class := "rpc-read"
	if method != "GET" {
		class = "rpc-other"
	}
	h.count(class, outcome)
	if method == "POST" && res.Err == nil && res.Status/100 == 2 {
		h.violate("POST %s with a malformed body accepted by %s: %s", path, n.ID, res)
	}
}

// ---------------------------------------------------------------------------
// from a non-member, non-loopback address

// remoteOne sends, from h.src, requests that loopback would be allowed to
// make: each must be refused.
func (h *hostile) remoteOne(r *rand.Rand) {
	n := h.node(r)
	switch r.IntN(5) {
	case 4:
		// A leader's AppendEntries of a higher term: raft would write it.
		st, err := n.Status()
		if err != nil {
			h.count("remote-raft", "no-status")
			return
		}
		resp, err := forgedAppend(n.RaftAddr(), h.src, st.Term+1, st.LastLogIndex, st.Term,
			mustEncode(fsm.Command{Op: fsm.OpCreateTopic, Topic: "hremote_raft"}))
		if err == nil {
			h.count("remote-raft", "answered")
			h.violate("remote AppendEntries answered by %s: %+v", n.ID, resp)
			return
		}
		h.count("remote-raft", "refused")
	case 0:
		res := rpcCall(n.RaftAddr(), h.src, nil, "POST", "/rpc/apply", forgedCreate("hremote"))
		h.count("remote-rpc", res.statusOr())
		if res.Err != nil || res.Status != http.StatusForbidden {
			h.violate("remote forged batch on %s: %s; want 403", n.ID, res)
		}
	case 1:
		path := []string{"/rpc/leave", "/rpc/transfer", "/rpc/status", "/rpc/read-index"}[r.IntN(4)]
		method := "POST"
		if strings.HasSuffix(path, "status") || strings.HasSuffix(path, "index") {
			method = "GET"
		}
		res := rpcCall(n.RaftAddr(), h.src, nil, method, path, []byte(`{"id":"n2"}`))
		h.count("remote-rpc", res.statusOr())
		if res.Err != nil || res.Status != http.StatusForbidden {
			h.violate("remote %s %s on %s: %s; want 403", method, path, n.ID, res)
		}
	case 2:
		path := []string{"/cluster/join", "/cluster/leave", "/cluster/transfer-leadership"}[r.IntN(3)]
		body := []string{`{"id":"evil","raft_address":"127.0.0.1:1"}`, `{"id":"n2"}`, ``}[r.IntN(3)]
		res, err := httpFrom(h.src, "POST", "http://"+n.HTTPAddr()+path, []byte(body), nil)
		h.count("remote-admin", outcomeOf(res, err))
		if err != nil || res.Status != http.StatusForbidden {
			h.violate("remote POST %s %s on %s: %s %v; want 403", path, body, n.ID, httpSummary(res), err)
		}
	default:
		path := httpPrivate[r.IntN(len(httpPrivate))]
		res, err := httpFrom(h.src, "GET", "http://"+n.HTTPAddr()+path, nil, nil)
		h.count("remote-pprof", outcomeOf(res, err))
		if err != nil || res.Status == http.StatusOK {
			h.violate("remote GET %s on %s: %s %v; want it refused", path, n.ID, httpSummary(res), err)
		}
	}
}

func (r rpcResult) statusOr() string {
	if r.Err != nil {
		return "no-answer"
	}
	return strconv.Itoa(r.Status)
}

// hostileSeed is E2E_HOSTILE_SEED, or a fresh seed.
func hostileSeed() uint64 {
	if s := os.Getenv("E2E_HOSTILE_SEED"); s != "" {
		if v, err := strconv.ParseUint(s, 10, 64); err == nil {
			return v
		}
	}
	return uint64(time.Now().UnixNano())
}
