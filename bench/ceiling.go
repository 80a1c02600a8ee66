package main

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"
)

// The ceiling is what this machine and load generator allow an HTTP server
// at all: a trivial net/http handler that writes a body as long as a /lookup
// answer, in its own process like the servers measured.

// serveCeiling is the ceiling process's main: it serves a body of size bytes
// on every path until killed.
func serveCeiling(addr string, size int) {
	body := bytes.Repeat([]byte("x"), size)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fatalf("ceiling: %v", err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		h := w.Header()
		h["Content-Type"] = []string{"application/json; charset=utf-8"}
		h["X-Nsq-Content-Type"] = []string{"nsq; version=1.0"}
		w.Write(body)
	}), ReadHeaderTimeout: 10 * time.Second}
	fatalf("ceiling: %v", srv.Serve(ln))
}

// startCeiling runs this binary again as a ceiling server.
func startCeiling(size int) (*proc, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	p := &proc{name: "ceiling", bin: self, http: addr(freePort())}
	p.args = []string{"-ceiling-serve", p.http, "-ceiling-body", strconv.Itoa(size)}
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
