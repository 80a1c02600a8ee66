// Command bench measures raftlookupd against nsqlookupd 1.3.0 on this
// machine, in one run, and prints every figure as a ratio to the reference.
//
// Both sides are real processes: the reference is nsqlookupd built from
// github.com/nsqio/nsq v1.3.0 (apps/nsqlookupd, a main around package
// nsqlookupd), raftlookupd a three-node cluster. Load comes from this
// process over loopback.
//
//	go run ./bench                 # everything, about ten minutes
//	go run ./bench -only lookup    # one scenario
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

var workDir string

type config struct {
	sizes    []int
	clients  int
	duration time.Duration
	trials   int
	dbFor    time.Duration
	dbRenew  time.Duration
	only     string
	out      io.Writer
}

func main() {
	var c config
	sizes := flag.String("sizes", "3000,30000,300000", "registrations per /lookup run (10 producers x N topics x 2 channels)")
	flag.IntVar(&c.clients, "clients", 32, "concurrent keep-alive /lookup clients")
	flag.DurationVar(&c.duration, "duration", 5*time.Second, "length of each throughput run")
	flag.IntVar(&c.trials, "trials", 5, "failover trials")
	flag.DurationVar(&c.dbFor, "db-duration", 240*time.Second, "how long to watch raft.db grow under 100 pinging producers")
	flag.DurationVar(&c.dbRenew, "db-renew", 5*time.Millisecond, "lease renew interval in the raft.db run; below 2s it compresses hours of log entries into the run (5ms: a day in about 4 minutes)")
	flag.StringVar(&c.only, "only", "", "run one scenario: lookup, storm, failover, latency, db")
	outPath := flag.String("out", "", "also write the report to this file")
	flag.Parse()
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 20 {
			fatalf("bad -sizes entry %q", s)
		}
		c.sizes = append(c.sizes, n)
	}
	var err error
	if workDir, err = os.MkdirTemp("", "raftlookupd-bench-"); err != nil {
		fatalf("%v", err)
	}
	defer os.RemoveAll(workDir)
	var report strings.Builder
	c.out = io.MultiWriter(os.Stdout, &report)

	ref, raft := buildBinaries()
	fmt.Fprintf(c.out, "# raftlookupd vs nsqlookupd 1.3.0\n\n%s, %d cores, %s; %d /lookup clients, %v per run.\n\n",
		cpuModel(), runtime.NumCPU(), runtime.Version(), c.clients, c.duration)
	run := func(name string, f func(config, string, string) error) {
		if c.only != "" && c.only != name {
			return
		}
		if err := f(c, ref, raft); err != nil {
			fatalf("%s: %v", name, err)
		}
	}
	run("lookup", benchLookup)
	run("storm", benchStorm)
	run("failover", benchFailover)
	run("latency", benchLatency)
	run("db", benchDBGrowth)
	if *outPath != "" {
		if err := os.WriteFile(*outPath, []byte(report.String()), 0o644); err != nil {
			fatalf("%v", err)
		}
	}
}

func buildBinaries() (ref, raft string) {
	ref = filepath.Join(workDir, "nsqlookupd")
	raft = filepath.Join(workDir, "raftlookupd")
	for _, b := range [][2]string{{ref, "github.com/nsqio/nsq/apps/nsqlookupd"}, {raft, "github.com/raftlookupd/raftlookupd/cmd/raftlookupd"}} {
		cmd := exec.Command("go", "build", "-o", b[0], b[1])
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fatalf("build %s: %v", b[1], err)
		}
	}
	return ref, raft
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "model name"); ok {
			return strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
		}
	}
	return runtime.GOARCH
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
	os.Exit(1)
}

func killAll(ps ...*proc) {
	for _, p := range ps {
		if p != nil {
			p.kill()
		}
	}
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
