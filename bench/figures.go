package main

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"time"
)

// figures collects what the README table shows, from the same run as
// RESULTS.md. A nil entry is a scenario that did not run.
type figures struct {
	lookup     []lookupFigure
	storm      *stormFigure
	stormEvery *stormFigure
	scale      *scaleFigure
	failover   *failoverFigure
	idle       *idleFigure
	latency    *latencyFigure
	writes     *writeFigure
	// loadElections counts elections during the loaded phases of the
	// lookup, storm and scale runs (loadWatched: some were watched).
	loadElections int
	loadWatched   bool
	db            *dbFigure
}

type lookupFigure struct {
	size               int
	ceiling, ref, raft float64 // req/s
	distinct           float64 // req/s of the distinct-body ceiling
	refRSS, raftRSS    int64
	elections          int
	// cpuPerReq is each target's CPU time per answered request, in
	// lookupTargets' order: steadier than the rates for comparing builds.
	cpuPerReq [4]time.Duration
}

type stormFigure struct {
	n             int
	ref, ack, all time.Duration
	ratio         float64
	// maxRatio is the ratio the CPU time spent allows on this machine
	// (cpuWatch.spent): the figure cannot exceed it until the processes spend
	// less. Zero when not measured.
	maxRatio float64
	// The same storm again on the same processes (single-endpoint storm
	// only; zero elsewhere).
	refWarm, allWarm time.Duration
	warmRatio        float64
}

type scaleFigure struct {
	producers, topics int
	ref, ack, all     time.Duration
	refRSS, raftRSS   int64 // raftRSS: the largest of the three nodes
	restart           time.Duration
	restartRegs       int
	raftDB, snapshot  int64
}

type failoverFigure struct{ median, max time.Duration }

type idleFigure struct {
	watched time.Duration
	changes int
}

type latencyFigure struct {
	refP50, refP99, raftP50, raftP99, electP50, electP99 time.Duration
}

type dbFigure struct {
	hours float64
	size  int64
}

const (
	readmeBegin = "<!-- bench:table (written by go run ./bench -readme README.md; edits are overwritten) -->"
	readmeEnd   = "<!-- /bench:table -->"
)

// table renders the README's performance table.
func (f *figures) table() string {
	var b strings.Builder
	row := func(cells ...string) { fmt.Fprintf(&b, "| %s |\n", strings.Join(cells, " | ")) }
	row("measure", "nsqlookupd 1.3.0", "raftlookupd", "ratio", "goal")
	row("---", "---", "---", "---", "---")
	for _, l := range f.lookup {
		ratio := fmt.Sprintf("%.2fx ceiling, %.2fx nsqlookupd", l.raft/l.ceiling, l.raft/l.ref)
		if l.distinct > 0 {
			ratio += fmt.Sprintf(" (%.2fx the distinct-body ceiling)", l.raft/l.distinct)
		}
		row(fmt.Sprintf("`/lookup` req/s on a follower, %s registrations (HTTP ceiling %s)", count(l.size), count(int(l.ceiling))),
			fmt.Sprintf("%s (%.2f of ceiling)", count(int(l.ref)), l.ref/l.ceiling),
			fmt.Sprintf("%s (%.2f of ceiling)", count(int(l.raft)), l.raft/l.ceiling),
			ratio, ">= 0.9x ceiling, >= nsqlookupd")
	}
	if n := len(f.lookup); n > 0 {
		l := f.lookup[n-1]
		row(fmt.Sprintf("RSS after the %s-registration `/lookup` run", count(l.size)), mib(l.refRSS), mib(l.raftRSS)+" (follower)",
			fmt.Sprintf("%.2fx", float64(l.raftRSS)/float64(l.refRSS)), "<= 2x")
	}
	if s := f.storm; s != nil {
		row("reconnect storm, 100 conns x 50 REGISTER, one endpoint each", ms(s.ref)+" to acknowledge",
			ms(s.all)+" until visible on all 3 nodes", s.ratioCell(), ">= 1.0x")
		if s.allWarm > 0 {
			row("the same storm again on the same processes", ms(s.refWarm)+" to acknowledge",
				ms(s.allWarm)+" until visible on all 3 nodes", fmt.Sprintf("%.2fx", s.warmRatio), "")
		}
	}
	if s := f.stormEvery; s != nil {
		row(fmt.Sprintf("storm on equal footing, %d producers x 3 lookupds x 50 REGISTER", s.n), ms(s.ref)+" until all 3 list everything",
			ms(s.all)+" until all 3 nodes hold everything", s.ratioCell(), ">= 1.0x")
	}
	if s := f.scale; s != nil {
		regs := count(s.producers * s.topics)
		row(fmt.Sprintf("%s producers x %d topics (%s registrations) over the 3 nodes", count(s.producers), s.topics, regs),
			ms(s.ref)+" to acknowledge", ms(s.all)+" until visible on all 3 nodes",
			fmt.Sprintf("%.2fx", s.ref.Seconds()/s.all.Seconds()), ">= 1.0x")
		row(fmt.Sprintf("RSS at %s registrations", regs), mib(s.refRSS), mib(s.raftRSS)+" (largest node)",
			fmt.Sprintf("%.2fx", float64(s.raftRSS)/float64(s.refRSS)), "<= 1.5x")
		row("restarted follower serving the whole registry again", "", fmt.Sprintf("%s (%s registrations)", ms(s.restart), count(s.restartRegs)), "", "< 1 s")
		row(fmt.Sprintf("raft.db and snapshot at %s registrations", regs), "", fmt.Sprintf("%s, snapshot %s", mib(s.raftDB), mib(s.snapshot)), "", "")
	}
	if x := f.failover; x != nil {
		row("failover: SIGKILL leader -> registration visible on every survivor", "", fmt.Sprintf("median %s, max %s", ms(x.median), ms(x.max)), "", "median < 0.5 s")
	}
	if x := f.idle; x != nil {
		row(fmt.Sprintf("leader changes, idle cluster with default flags, %v", x.watched), "", fmt.Sprint(x.changes), "", "0")
	}
	if f.loadWatched {
		row("elections during the `/lookup`, storm and scale loads", "", fmt.Sprint(f.loadElections), "", "0")
	}
	if x := f.latency; x != nil {
		row("TCP reply p50 / p99 under `/lookup` load", fmt.Sprintf("%s / %s", ms(x.refP50), ms(x.refP99)),
			fmt.Sprintf("%s / %s (follower)", ms(x.raftP50), ms(x.raftP99)), "", "p99 < 50 ms")
		row("TCP reply p50 / p99 during 3 leader elections", "", fmt.Sprintf("%s / %s", ms(x.electP50), ms(x.electP99)), "", "")
	}
	if x := f.writes; x != nil {
		row("`POST /topic/create` p50 / p99, one at a time", fmt.Sprintf("%s / %s", ms(x.refP50), ms(x.refP99)),
			fmt.Sprintf("leader %s / %s; follower %s / %s", ms(x.leaderP50), ms(x.leaderP99), ms(x.followerP50), ms(x.followerP99)), "", "")
	}
	if x := f.db; x != nil {
		row(fmt.Sprintf("raft.db after %.1f h worth of log (100 pinging conns)", x.hours), "", mib(x.size), "", "< 64 MB")
	}
	return b.String()
}

// rewriteReadme replaces the text between the table markers.
func rewriteReadme(path, table string) error {
	old, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	i := bytes.Index(old, []byte(readmeBegin))
	j := bytes.Index(old, []byte(readmeEnd))
	if i < 0 || j < i {
		return fmt.Errorf("%s has no %q ... %q markers", path, readmeBegin, readmeEnd)
	}
	var out bytes.Buffer
	out.Write(old[:i+len(readmeBegin)])
	out.WriteString("\n" + table)
	out.Write(old[j:])
	return os.WriteFile(path, out.Bytes(), 0o644)
}

// count renders 31381 as "31,381".
func count(n int) string {
	s := fmt.Sprint(n)
	var out []byte
	for i := range s {
		if i > 0 && (len(s)-i)%3 == 0 && s[i-1] != '-' {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}

func ms(d time.Duration) string {
	if d >= 10*time.Second {
		return fmt.Sprintf("%.1f s", d.Seconds())
	}
	if d >= time.Second {
		return fmt.Sprintf("%.2f s", d.Seconds())
	}
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}

// ratioCell is the storm's ratio, with the most this machine's CPU allowed.
func (s *stormFigure) ratioCell() string {
	if s.maxRatio == 0 {
		return fmt.Sprintf("%.2fx", s.ratio)
	}
	return fmt.Sprintf("%.2fx (CPU time allowed at most %.2fx here)", s.ratio, s.maxRatio)
}
