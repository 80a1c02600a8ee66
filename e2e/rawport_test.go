package e2e

// Raw clients for the trust-boundary tests (hostile_test.go, tls_test.go,
// nonmember_test.go): a node's Raft port spoken to directly (the stream-kind
// byte, then raft or the node-to-node RPC, optionally behind TLS), HTTP from
// a chosen source address, and forged node-to-node batches.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/hashicorp/raft"

	"github.com/raftlookupd/raftlookupd/fsm"
)

// The first byte a dialer writes on a Raft port (after the TLS handshake
// when TLS is on) picks the stream: raft's own or the node-to-node RPC.
// Repeated here, not imported: the tests speak the wire format as an
// outsider would.
const (
	muxRaft byte = 0xA1
	muxRPC  byte = 0xA2
)

// rawTimeout bounds one raw exchange (dial, handshake, request, answer).
const rawTimeout = 10 * time.Second

// dialFrom connects to addr from the source IP src (nil: the kernel picks).
func dialFrom(ctx context.Context, addr string, src net.IP) (net.Conn, error) {
	d := net.Dialer{Timeout: rawTimeout}
	if src != nil {
		d.LocalAddr = &net.TCPAddr{IP: src}
	}
	return d.DialContext(ctx, "tcp", addr)
}

// nonLoopbackIP returns an IPv4 address of this host that is not loopback,
// or nil. A connection from it to 127.0.0.1 reaches the server with that
// source address: a client that is neither loopback nor a member.
func nonLoopbackIP() net.IP {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || ipn.IP.IsLoopback() || ipn.IP.To4() == nil || ipn.IP.IsLinkLocalUnicast() {
			continue
		}
		// The address must be usable as a source right now.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil
		}
		c, err := dialFrom(context.Background(), ln.Addr().String(), ipn.IP)
		ln.Close()
		if err == nil {
			c.Close()
			return ipn.IP
		}
	}
	return nil
}

// rpcResult is the answer to one raw RPC request; Err is set when no HTTP
// answer came (refused handshake, connection closed).
type rpcResult struct {
	Status int
	Body   []byte
	Err    error
}

func (r rpcResult) String() string {
	if r.Err != nil {
		return "no answer: " + r.Err.Error()
	}
	return fmt.Sprintf("%d %s", r.Status, bytes.TrimSpace(r.Body))
}

// rpcCall sends one HTTP request on an RPC stream of the Raft port at
// raftAddr, from src (nil: any), over TLS when cfg is not nil.
func rpcCall(raftAddr string, src net.IP, cfg *tls.Config, method, path string, body []byte) rpcResult {
	ctx, cancel := context.WithTimeout(context.Background(), rawTimeout)
	defer cancel()
	c, err := rawStream(ctx, raftAddr, src, cfg, muxRPC)
	if err != nil {
		return rpcResult{Err: err}
	}
	defer c.Close()
	req, err := http.NewRequestWithContext(ctx, method, "http://"+raftAddr+path, bytes.NewReader(body))
	if err != nil {
		return rpcResult{Err: err}
	}
	req.Close = true
	if err := req.Write(c); err != nil {
		// The server may answer and close before reading a large body.
		if res, rerr := readRPCAnswer(c, req); rerr == nil {
			return res
		}
		return rpcResult{Err: fmt.Errorf("write request: %w", err)}
	}
	res, err := readRPCAnswer(c, req)
	if err != nil {
		return rpcResult{Err: err}
	}
	return res
}

func readRPCAnswer(c net.Conn, req *http.Request) (rpcResult, error) {
	resp, err := http.ReadResponse(bufio.NewReader(c), req)
	if err != nil {
		return rpcResult{}, fmt.Errorf("read answer: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return rpcResult{}, fmt.Errorf("read answer body: %w", err)
	}
	return rpcResult{Status: resp.StatusCode, Body: b}, nil
}

// rawStream dials a Raft port, completes the TLS handshake when cfg is set,
// and writes the stream-kind byte. The connection's deadline is ctx's.
func rawStream(ctx context.Context, raftAddr string, src net.IP, cfg *tls.Config, kind byte) (net.Conn, error) {
	c, err := dialFrom(ctx, raftAddr, src)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	if cfg != nil {
		tc := tls.Client(c, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			c.Close()
			return nil, fmt.Errorf("TLS handshake: %w", err)
		}
		c = tc
	}
	if _, err := c.Write([]byte{kind}); err != nil {
		c.Close()
		return nil, fmt.Errorf("write stream kind: %w", err)
	}
	return c, nil
}

// httpFrom sends one HTTP request from the source IP src.
func httpFrom(src net.IP, method, url string, body []byte, hdr http.Header) (*httpResult, error) {
	hc := &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{
			DisableKeepAlives: true,
			DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
				return dialFrom(ctx, addr, src)
			},
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, err
	}
	return &httpResult{Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

// ---------------------------------------------------------------------------
// forged batches

// mustEncode encodes a command the encoder accepts (the forgeries below are
// well-formed commands; what makes them forged is who they name).
func mustEncode(c fsm.Command) []byte {
	b, err := c.Encode()
	if err != nil {
		panic(fmt.Sprintf("encode %v: %v", c.Op, err))
	}
	return b
}

// nestedBatch returns the bytes of a batch from origin whose only command
// is inner, itself a batch: the encoder refuses to write it, so it is
// built from inner's encoding (the version byte dropped) behind a batch
// header written by hand.
func nestedBatch(origin string, inner fsm.Command) []byte {
	in := mustEncode(inner)[1:]
	hdr := mustEncode(fsm.Command{Op: fsm.OpBatch, Session: fsm.SessionID{Owner: origin, Incarnation: 1}, BatchSeq: 1,
		Batch: []fsm.Command{{Op: fsm.OpCreateTopic, Topic: "x"}}})
	// hdr ends with count 1 and the create-topic command: op byte, length 1, "x".
	return append(hdr[:len(hdr)-3], in...)
}

// ---------------------------------------------------------------------------
// raft streams

// rawStreamLayer dials raft streams (kind byte 0xA1) from src, without TLS,
// for hashicorp/raft's own client: a forged AppendEntries is then exactly
// what a leader sends.
type rawStreamLayer struct {
	net.Listener
	src net.IP
}

func (l rawStreamLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c, err := rawStream(ctx, string(addr), l.src, nil, muxRaft)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

// forgedAppend sends one AppendEntries as a leader "evil" of the given term
// would, from src, to the Raft port at addr: entries appended after
// prevIndex (whose term is prevTerm) and committed at once.
func forgedAppend(addr string, src net.IP, term, prevIndex, prevTerm uint64, data ...[]byte) (raft.AppendEntriesResponse, error) {
	var resp raft.AppendEntriesResponse
	ln, err := net.Listen("tcp", "127.0.0.1:0") // the transport wants one; nothing dials it
	if err != nil {
		return resp, err
	}
	tr := raft.NewNetworkTransport(rawStreamLayer{ln, src}, 1, rawTimeout, io.Discard)
	defer tr.Close()
	req := &raft.AppendEntriesRequest{
		RPCHeader:         raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: []byte("evil"), Addr: []byte(ln.Addr().String())},
		Term:              term,
		PrevLogEntry:      prevIndex,
		PrevLogTerm:       prevTerm,
		LeaderCommitIndex: prevIndex + uint64(len(data)),
	}
	for i, d := range data {
		req.Entries = append(req.Entries, &raft.Log{Index: prevIndex + 1 + uint64(i), Term: term, Type: raft.LogCommand, Data: d})
	}
	err = tr.AppendEntries("evil-target", raft.ServerAddress(addr), req, &resp)
	return resp, err
}
