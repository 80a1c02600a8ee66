// Command probe polls one URL until the answer matches, from inside another
// container's network namespace or a compose network:
//
//	docker run --rm --network container:ID PROBE_IMAGE -url http://127.0.0.1:4161/topics -contains foo
//	docker run --rm --network NETWORK PROBE_IMAGE -resolve raftlookupd -addrs 3
//
// With -resolve it polls a DNS lookup instead, until the name has -addrs
// addresses.
//
// The compose test uses it where the host cannot reach a node (a container
// disconnected from its network keeps only its loopback interface). It prints
// one JSON line: whether it matched, the last status and body, and the wall
// clock time of the first matching answer (the host and the container share
// the kernel's clock). Exit status 0 when it matched, 1 when it timed out,
// 2 on bad flags.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strings"
	"time"
)

type result struct {
	Matched   bool   `json:"matched"`
	Status    int    `json:"status"`
	Body      string `json:"body"`
	Error     string `json:"error,omitempty"`
	Attempts  int    `json:"attempts"`
	MatchedAt int64  `json:"matched_at_unix_nano,omitempty"`
}

func main() {
	fs := flag.NewFlagSet("probe", flag.ContinueOnError)
	url := fs.String("url", "", "URL to GET")
	resolve := fs.String("resolve", "", "host name to look up instead of a GET")
	addrs := fs.Int("addrs", 1, "with -resolve: number of addresses to wait for")
	status := fs.Int("status", http.StatusOK, "status code to wait for")
	contains := fs.String("contains", "", "substring the body must hold")
	timeout := fs.Duration("timeout", 10*time.Second, "give up after this long")
	interval := fs.Duration("interval", 50*time.Millisecond, "pause between requests")
	if err := fs.Parse(os.Args[1:]); err != nil || (*url == "") == (*resolve == "") {
		fmt.Fprintln(os.Stderr, "usage: probe {-url URL [-status N] [-contains S] | -resolve NAME [-addrs N]} [-timeout D] [-interval D]")
		os.Exit(2)
	}
	client := &http.Client{Timeout: time.Second}
	try := func() (int, string, string) { return get(client, *url) }
	if *resolve != "" {
		try = func() (int, string, string) { return lookup(*resolve) }
		*status, *contains = *addrs, ""
	}
	deadline := time.Now().Add(*timeout)
	var r result
	for {
		r.Attempts++
		r.Status, r.Body, r.Error = try()
		if r.Error == "" && r.Status == *status && strings.Contains(r.Body, *contains) {
			r.Matched, r.MatchedAt = true, time.Now().UnixNano()
			break
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(*interval)
	}
	json.NewEncoder(os.Stdout).Encode(r)
	if !r.Matched {
		os.Exit(1)
	}
}

func get(c *http.Client, url string) (int, string, string) {
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err.Error()
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return resp.StatusCode, string(b), err.Error()
	}
	return resp.StatusCode, string(b), ""
}

// lookup reports the number of addresses as the status and the sorted
// addresses as the body.
func lookup(name string) (int, string, string) {
	addrs, err := net.LookupHost(name)
	if err != nil {
		return 0, "", err.Error()
	}
	sort.Strings(addrs)
	return len(addrs), strings.Join(addrs, " "), ""
}
