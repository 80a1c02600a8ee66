// Command bench measures raftlookupd against nsqlookupd 1.3.0 on this
// machine, in one run, and prints every figure as a ratio to the reference.
//
// Both sides are real processes: the reference is nsqlookupd built from
// github.com/nsqio/nsq v1.3.0 (apps/nsqlookupd, a main around package
// nsqlookupd), raftlookupd a three-node cluster. Load comes from this
// process over loopback.
//
//	go run ./bench                   # everything, 20 to 30 minutes
//	go run ./bench -only lookup      # one scenario
//	go run ./bench -only scale -scale-producers 300 -scale-topics 10  # a small check
//	go run ./bench -only scale -profile-dir /tmp/prof  # CPU and heap profiles of the nodes
//	go run ./bench -only storm -idle 0 -profile-dir /tmp/prof  # node profiles over 20 s of storms
//	go run ./bench -only lookup -idle 0 -ceiling-ballast 1000000  # ceilings holding a registry-sized heap
//	go run ./bench -only lookup -idle 0 -ceiling-ballast 1000000 -ceiling-ballast-chunks  # the same bytes in large pointer-free chunks
//
// Every figure of one run goes to stdout and -out; with -readme, and when
// every scenario ran, the README's performance table is rewritten from it.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

var workDir string

type config struct {
	sizes          []int
	clients        int
	duration       time.Duration
	trials         int
	idle           time.Duration
	stormProducers int
	scaleProducers int
	scaleTopics    int
	dbFor          time.Duration
	dbRenew        time.Duration
	only           string
	profileDir     string
	ceilingBallast int
	ballastChunks  bool
	out            io.Writer
	fig            *figures
}

var scenarios = []struct {
	name string
	run  func(config, string, string) error
}{
	{"lookup", benchLookup},
	{"storm", benchStorm},
	{"storm-every", benchStormEverywhere},
	{"scale", benchScale},
	{"failover", benchFailover},
	{"latency", benchLatency},
	{"writes", benchWrites},
	{"db", benchDBGrowth},
}

func main() {
	var c config
	sizes := flag.String("sizes", "3000,30000,300000,900000", "registrations per /lookup run (10 producers x N topics x 2 channels)")
	flag.IntVar(&c.clients, "clients", 32, "concurrent keep-alive /lookup clients")
	flag.DurationVar(&c.duration, "duration", 6*time.Second, "length of each throughput run (in 3 turns per target for /lookup)")
	flag.IntVar(&c.trials, "trials", 5, "failover trials")
	flag.DurationVar(&c.idle, "idle", 10*time.Minute, "how long an idle cluster with the default flags is watched for leader changes (0: not at all)")
	flag.IntVar(&c.stormProducers, "storm-producers", 100, "producers in the equal-footing storm, each connected to all three lookupds")
	flag.IntVar(&c.scaleProducers, "scale-producers", 9000, "producer identities in the scale run")
	flag.IntVar(&c.scaleTopics, "scale-topics", 100, "topics each scale producer registers")
	flag.DurationVar(&c.dbFor, "db-duration", 240*time.Second, "how long to watch raft.db grow under 100 pinging producers")
	flag.DurationVar(&c.dbRenew, "db-renew", 5*time.Millisecond, "lease renew interval in the raft.db run; below 2s it compresses hours of log entries into the run (5ms: a day in about 4 minutes)")
	var names []string
	for _, s := range scenarios {
		names = append(names, s.name)
	}
	flag.StringVar(&c.only, "only", "", "run one scenario: "+strings.Join(names, ", "))
	outPath := flag.String("out", "", "also write the report to this file")
	flag.StringVar(&c.profileDir, "profile-dir", "", "write profiles here: the follower's CPU under /lookup load (its last turn, when its remembered answers are warm, at each size), every node's CPU during the scale storm and heap after it, every node's CPU over 20 s of repeated reconnect storms")
	readmePath := flag.String("readme", "", "rewrite this README's performance table when every scenario ran")
	extraFlags := flag.String("node-flags", "", "flags added to every raftlookupd node's command line, space-separated (to try a setting; the report names them)")
	ceilingAddr := flag.String("ceiling-serve", "", "internal: serve the HTTP ceiling on this address")
	ceilingBody := flag.Int("ceiling-body", 0, "internal: the ceiling's body length")
	ceilingDistinct := flag.Int("ceiling-distinct", 0, "internal: how many different bodies the ceiling serves (0: one)")
	flag.IntVar(&c.ceilingBallast, "ceiling-ballast", 0, "a diagnostic: both ceilings keep this many small linked objects (about 180 bytes each, mixed sizes) live, a heap shaped like the registry's, to show what holding one costs any Go server here")
	flag.BoolVar(&c.ballastChunks, "ceiling-ballast-chunks", false, "with -ceiling-ballast: hold the same bytes in 180 kB chunks without pointers instead (a slab-allocated heap), to tell the cost of many small objects from that of the bytes")
	flag.Parse()
	if *ceilingAddr != "" {
		serveCeiling(*ceilingAddr, *ceilingBody, *ceilingDistinct, c.ceilingBallast, c.ballastChunks)
		return
	}
	nodeFlags = strings.Fields(*extraFlags)
	for _, s := range strings.Split(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 20 {
			fatalf("bad -sizes entry %q", s)
		}
		c.sizes = append(c.sizes, n)
	}
	if c.only != "" && !slices.Contains(names, c.only) {
		fatalf("unknown scenario %q (have %s)", c.only, strings.Join(names, ", "))
	}
	if c.scaleProducers < 3 || c.scaleTopics < 1 || c.stormProducers < 1 {
		fatalf("-scale-producers must be at least 3, -scale-topics and -storm-producers at least 1")
	}
	var err error
	if workDir, err = os.MkdirTemp("", "raftlookupd-bench-"); err != nil {
		fatalf("%v", err)
	}
	defer os.RemoveAll(workDir)
	var report strings.Builder
	c.out = io.MultiWriter(os.Stdout, &report)
	c.fig = &figures{}

	ref, raft := buildBinaries()
	fmt.Fprintf(c.out, "# raftlookupd vs nsqlookupd 1.3.0\n\n%s, %d cores, %s; %d /lookup clients, %v per run.\n\n",
		cpuModel(), runtime.NumCPU(), runtime.Version(), c.clients, c.duration)
	if len(nodeFlags) > 0 {
		fmt.Fprintf(c.out, "Every raftlookupd node also ran with `%s`.\n\n", strings.Join(nodeFlags, " "))
	}
	if c.ceilingBallast > 0 {
		if c.ballastChunks {
			fmt.Fprintf(c.out, "Both HTTP ceilings kept the bytes of a ballast of %d small linked objects live in 180 kB chunks without pointers (-ceiling-ballast -ceiling-ballast-chunks).\n\n", c.ceilingBallast)
		} else {
			fmt.Fprintf(c.out, "Both HTTP ceilings kept a ballast of %d small linked objects live (-ceiling-ballast).\n\n", c.ceilingBallast)
		}
	}
	for _, s := range scenarios {
		if c.only != "" && c.only != s.name {
			continue
		}
		start := time.Now()
		if err := s.run(c, ref, raft); err != nil {
			fatalf("%s: %v", s.name, err)
		}
		fmt.Fprintf(os.Stderr, "bench: %s took %v\n", s.name, time.Since(start).Round(time.Second))
	}
	if *outPath != "" {
		if err := os.WriteFile(*outPath, []byte(report.String()), 0o644); err != nil {
			fatalf("%v", err)
		}
	}
	if *readmePath != "" {
		if c.only != "" {
			fmt.Fprintf(os.Stderr, "bench: %s not rewritten: only %s ran\n", *readmePath, c.only)
			return
		}
		if len(nodeFlags) > 0 || c.ceilingBallast > 0 {
			fmt.Fprintf(os.Stderr, "bench: %s not rewritten: the nodes ran with -node-flags or the ceilings with -ceiling-ballast\n", *readmePath)
			return
		}
		if err := rewriteReadme(*readmePath, c.fig.table()); err != nil {
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
