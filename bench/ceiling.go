package main

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
	"unsafe"
)

// The ceiling is what this machine and load generator allow an HTTP server
// at all: a trivial net/http handler that writes a body as long as a /lookup
// answer, in its own process like the servers measured.

// serveCeiling is the ceiling process's main: it serves a body of size bytes
// on every path until killed. With distinct > 0 it holds that many bodies of
// that size and answers "?topic=tN" with the N-th: the same trivial handler
// with as many different answers as the registry has topics, so what
// reading them from memory costs shows apart from the server's own work.
//
// With ballast > 0 it also keeps that many small objects live, linked to
// each other like a registry's (see ballastNode), or with chunks as many
// bytes in a few large allocations without pointers.
func serveCeiling(addr string, size, distinct, ballast int, chunks bool) {
	bodies := [][]byte{bytes.Repeat([]byte("x"), size)}
	for i := 1; i < distinct; i++ {
		b := bytes.Repeat([]byte("x"), size)
		copy(b, strconv.Itoa(i))
		bodies = append(bodies, b)
	}
	var keep any
	if chunks {
		keep = makeChunkBallast(ballast)
	} else {
		keep = makeBallast(ballast)
	}
	defer runtime.KeepAlive(keep)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fatalf("ceiling: %v", err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["Content-Type"] = []string{"application/json; charset=utf-8"}
		h["X-Nsq-Content-Type"] = []string{"nsq; version=1.0"}
		w.Write(bodies[bodyIndex(r.URL.RawQuery, len(bodies))])
	}), ReadHeaderTimeout: 10 * time.Second}
	fatalf("ceiling: %v", srv.Serve(ln))
}

// bodyIndex reads N from a query ending in "topic=tN" (the load generator's),
// 0 for anything else.
func bodyIndex(query string, n int) int {
	i := strings.LastIndex(query, "topic=t")
	if n == 1 || i < 0 {
		return 0
	}
	k, err := strconv.Atoi(query[i+len("topic=t"):])
	if err != nil || k < 0 {
		return 0
	}
	return k % n
}

// startCeiling runs this binary again as a ceiling server (distinct: see
// serveCeiling).
func startCeiling(size, distinct, ballast int, chunks bool) (*proc, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	p := &proc{name: "ceiling", bin: self, http: addr(freePort())}
	p.args = []string{"-ceiling-serve", p.http, "-ceiling-body", strconv.Itoa(size), "-ceiling-distinct", strconv.Itoa(distinct), "-ceiling-ballast", strconv.Itoa(ballast),
		"-ceiling-ballast-chunks=" + strconv.FormatBool(chunks)}
	if err := p.start(); err != nil {
		return nil, err
	}
	return p, waitHTTP(p.http+"/ping", 10*time.Second)
}

// bodySize returns the length of one answer to path.
func bodySize(host, path string) (int, error) {
	cl, err := dialRaw(host)
	if err != nil {
		return 0, err
	}
	defer cl.conn.Close()
	status, n, err := cl.getSize(path)
	if err == nil && status != 200 {
		err = fmt.Errorf("GET %s: %d", path, status)
	}
	return n, err
}

// ballastNode is one object of a ceiling's ballast: a pointer to the next,
// a short string and a byte slice of 8 to 207 bytes, so that the ballast
// spreads over the small size classes a registry's objects use, and the
// collector has pointers to follow through all of it.
type ballastNode struct {
	next *ballastNode
	name string
	pad  []byte
}

func makeBallast(n int) *ballastNode {
	var head *ballastNode
	for i := 0; i < n; i++ {
		head = &ballastNode{next: head, name: strconv.Itoa(i), pad: make([]byte, ballastPadLen(i))}
	}
	return head
}

// ballastPadLen is the length of the i-th node's pad: 8 to 207 bytes.
func ballastPadLen(i int) int { return 8 + (i*37)%200 }

// makeChunkBallast holds the bytes makeBallast(n) asks for (its nodes,
// names and pads) in 180 kB chunks without pointers: the same heap, laid
// out as a slab allocator would.
func makeChunkBallast(n int) [][]byte {
	const chunk = 180 << 10
	total := 0
	for i := 0; i < n; i++ {
		total += int(unsafe.Sizeof(ballastNode{})) + len(strconv.Itoa(i)) + ballastPadLen(i)
	}
	var chunks [][]byte
	for ; total > 0; total -= chunk {
		b := make([]byte, min(total, chunk))
		for j := range b {
			b[j] = byte(j) // touched, so resident like the small objects
		}
		chunks = append(chunks, b)
	}
	return chunks
}
