package e2e

// TestHostileClients: a live three-node cluster with the default flags under
// thousands of random HTTP requests, nsqd protocol frames, Raft-port bytes
// and forged node-to-node requests (generators in hostile_*_test.go),
// while a legitimate client makes known writes. Afterwards no node has
// crashed, every node answers, the registry holds only what legitimate
// requests (and hostile requests that were legitimate in form) made, no
// forged session or member exists, and every node restarts from its log
// to the same state.
//
// E2E_HOSTILE_SEED=N repeats a run's requests (their interleaving across
// workers is the scheduler's).

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nsqio/go-nsq"
)

// How much each hostile class sends, and with how many workers.
const (
	hostileHTTP       = 3000
	hostileHTTPRaw    = 150
	hostileTCP        = 1000
	hostileRaft       = 800
	hostileRemote     = 200
	hostileWorkers    = 4 // per class
	hostileSettleWait = 30 * time.Second
)

func TestHostileClients(t *testing.T) {
	seed := hostileSeed()
	t.Logf("seed %d (E2E_HOSTILE_SEED=%d repeats the requests)", seed, seed)
	// The restart at the end orphans the raw nsqds' sessions; a short grace
	// lets them go within the settle wait.
	c := StartCluster(t, 3, "-orphan-grace", "3s")
	src := nonLoopbackIP()
	if src == nil {
		t.Logf("no non-loopback source address on this host: the remote class is not sent")
	}
	h := newHostile(c.Nodes, src, rand.New(rand.NewPCG(seed, 0)))

	lg := newLegit(t, c.Nodes)
	legitDone := make(chan struct{})
	stopLegit := make(chan struct{})
	go func() {
		defer close(legitDone)
		lg.run(rand.New(rand.NewPCG(seed, 1)), stopLegit)
	}()

	start := time.Now()
	var wg sync.WaitGroup
	stream := uint64(2)
	spawn := func(total int, one func(*rand.Rand)) {
		for w := range hostileWorkers {
			r := rand.New(rand.NewPCG(seed, stream))
			stream++
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := w; i < total; i += hostileWorkers {
					one(r)
				}
			}()
		}
	}
	spawn(hostileHTTP, h.httpOne)
	spawn(hostileHTTPRaw, h.rawHTTPOne)
	spawn(hostileTCP, h.tcpOne)
	spawn(hostileRaft, h.raftOne)
	if src != nil {
		spawn(hostileRemote, h.remoteOne)
	}
	wg.Wait()
	hostileTook := time.Since(start)
	close(stopLegit)
	<-legitDone

	tally, total := h.summary()
	t.Logf("%d hostile requests in %v, by class and outcome:\n%s", total, hostileTook.Round(time.Millisecond), tally)
	t.Logf("legitimate client: %s", lg.summary())
	for _, smp := range h.samples {
		t.Logf("no answer: %s", smp)
	}
	for _, v := range h.violations {
		t.Errorf("violation: %s", v)
	}
	if lg.err != nil {
		t.Errorf("legitimate client: %v", lg.err)
	}
	for _, n := range c.Nodes {
		if err := n.exitError(); err != nil {
			t.Fatalf("after the hostile clients: %v", err)
		}
		if res, err := httpDo("GET", "http://"+n.HTTPAddr()+"/ping", nil, nil); err != nil || res.Status != http.StatusOK {
			t.Fatalf("%s does not answer /ping after the hostile clients: %v %v", n, httpSummary(res), err)
		}
	}
	c.WaitReady(failoverTimeout, c.Nodes...)

	// Every node holds the same registry, and it holds only what was
	// asked for in legitimate form.
	var state regState
	waitFor(t, hostileSettleWait, func() error {
		var err error
		state, err = sameState(c.Nodes)
		return err
	})
	if err := lg.check(state, h); err != nil {
		t.Error(err)
	}
	t.Logf("registry after the run: %d topics (%d legitimate), %d channels", len(state.topics), lg.topicCount(), state.channelCount())

	// No forged session or member: the three legitimate producers are the
	// only ones listed and the only sessions, the members are the three.
	waitFor(t, hostileSettleWait, func() error {
		for _, n := range c.Nodes {
			if err := lg.onlyProducers(n); err != nil {
				return err
			}
		}
		return haSessions(c.Nodes, len(c.Nodes), 1)()
	})
	for _, n := range c.Nodes {
		st, err := n.Status()
		if err != nil {
			t.Fatal(err)
		}
		if err := opsMembersAre(st, opsVoters(c.Nodes...)); err != nil {
			t.Errorf("after the hostile clients: %v", err)
		}
	}

	// Every node restarts from its log to the same registry.
	for _, n := range c.Nodes {
		n.Term()
	}
	for _, n := range c.Nodes {
		n.Restart()
	}
	restarted := time.Now()
	c.WaitReady(restartTimeout, c.Nodes...)
	waitFor(t, hostileSettleWait, func() error {
		got, err := sameState(c.Nodes)
		if err != nil {
			return err
		}
		if d := state.diff(got); d != "" {
			return fmt.Errorf("after SIGTERM and restart of every node: %s", d)
		}
		return nil
	})
	waitFor(t, hostileSettleWait, haSessions(c.Nodes, 0, 0))
	t.Logf("every node SIGTERMed, restarted from its log and serving the same registry after %dms", haMillis(time.Since(restarted)))
}

// ---------------------------------------------------------------------------
// registry state

// regState is what /topics and /channels list.
type regState struct {
	topics   []string
	channels map[string][]string
}

func (s regState) channelCount() int {
	n := 0
	for _, cs := range s.channels {
		n += len(cs)
	}
	return n
}

func (s regState) String() string {
	var b strings.Builder
	for _, tp := range s.topics {
		fmt.Fprintf(&b, "%s%v;", tp, s.channels[tp])
	}
	return b.String()
}

// diff describes how other differs from s ("" when equal).
func (s regState) diff(other regState) string {
	var out []string
	for _, tp := range s.topics {
		if !slices.Contains(other.topics, tp) {
			out = append(out, "lost topic "+tp)
		} else if !slices.Equal(s.channels[tp], other.channels[tp]) {
			out = append(out, fmt.Sprintf("topic %s channels %v, were %v", tp, other.channels[tp], s.channels[tp]))
		}
	}
	for _, tp := range other.topics {
		if !slices.Contains(s.topics, tp) {
			out = append(out, "new topic "+tp)
		}
	}
	if len(out) > 20 {
		out = append(out[:20], fmt.Sprintf("... %d more", len(out)-20))
	}
	return strings.Join(out, "; ")
}

// readState reads a node's topics and each topic's channels.
func readState(n *Node) (regState, error) {
	s := regState{channels: map[string][]string{}}
	var td topicsDoc
	if err := getJSON(n.HTTPAddr(), "/topics", &td); err != nil {
		return s, err
	}
	s.topics = slices.Sorted(slices.Values(td.Topics))
	for _, tp := range s.topics {
		var cd channelsDoc
		if err := getJSON(n.HTTPAddr(), "/channels?topic="+url.QueryEscape(tp), &cd); err != nil {
			return s, err
		}
		s.channels[tp] = slices.Sorted(slices.Values(cd.Channels))
	}
	return s, nil
}

// sameState returns the registry once every node lists the same one.
func sameState(nodes []*Node) (regState, error) {
	first, err := readState(nodes[0])
	if err != nil {
		return first, err
	}
	for _, n := range nodes[1:] {
		s, err := readState(n)
		if err != nil {
			return first, err
		}
		if d := first.diff(s); d != "" {
			return first, fmt.Errorf("%s differs from %s: %s", n.ID, nodes[0].ID, d)
		}
	}
	return first, nil
}

// ---------------------------------------------------------------------------
// the legitimate client

// legit makes known writes through every node while the hostile clients
// run: topics and channels over HTTP (created and deleted), and
// registrations from one nsqd impostor per node that stays connected.
type legit struct {
	nodes     []*Node
	producers []*haRawProducer

	// Touched by run only, read after it returned.
	topics   map[string]bool
	channels map[string]bool // "topic/channel"
	ops      int
	retries  int
	reads    map[string]int
	err      error
}

func newLegit(t *testing.T, nodes []*Node) *legit {
	lg := &legit{nodes: nodes, topics: map[string]bool{}, channels: map[string]bool{}, reads: map[string]int{}}
	for i, n := range nodes {
		p := haDialProducer(t, n.TCPAddr(), haIdentity{"legit." + n.ID, 9100 + i, 9200 + i})
		p.Register(t, "legit_tcp_"+n.ID, "legit_ch")
		lg.topics["legit_tcp_"+n.ID] = true
		lg.channels["legit_tcp_"+n.ID+"/legit_ch"] = true
		lg.producers = append(lg.producers, p)
	}
	return lg
}

// legitWriteTimeout bounds the retries of one legitimate write; elections
// provoked by garbage on the Raft ports may refuse a few.
const legitWriteTimeout = 30 * time.Second

// post retries one idempotent write until it is answered 200 (or, for a
// delete, 404: an earlier attempt may have committed before it failed).
func (lg *legit) post(r *rand.Rand, pathq string, notFoundOK bool) error {
	deadline := time.Now().Add(legitWriteTimeout)
	for {
		n := lg.nodes[r.IntN(len(lg.nodes))]
		res, err := httpDo("POST", "http://"+n.HTTPAddr()+pathq, nil, nil)
		if err == nil && (res.Status == http.StatusOK || (notFoundOK && res.Status == http.StatusNotFound)) {
			lg.ops++
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("POST %s via %s: %v %v (retried for %v)", pathq, n.ID, httpSummary(res), err, legitWriteTimeout)
		}
		lg.retries++
		time.Sleep(50 * time.Millisecond)
	}
}

func (lg *legit) run(r *rand.Rand, stop <-chan struct{}) {
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		tp, ch := fmt.Sprintf("legit_t%d", i), fmt.Sprintf("legit_c%d", i%3)
		steps := []func() error{
			func() error {
				lg.topics[tp] = true
				return lg.post(r, "/topic/create?topic="+tp, false)
			},
			func() error {
				lg.channels[tp+"/"+ch] = true
				return lg.post(r, "/channel/create?topic="+tp+"&channel="+ch, false)
			},
		}
		if i%5 == 4 {
			steps = append(steps, func() error {
				delete(lg.channels, tp+"/"+ch)
				return lg.post(r, "/channel/delete?topic="+tp+"&channel="+ch, true)
			})
		}
		if i%7 == 6 {
			old := fmt.Sprintf("legit_t%d", i-3)
			steps = append(steps, func() error {
				delete(lg.topics, old)
				for k := range lg.channels {
					if strings.HasPrefix(k, old+"/") {
						delete(lg.channels, k)
					}
				}
				return lg.post(r, "/topic/delete?topic="+old, true)
			})
		}
		if i%4 == 3 {
			k := r.IntN(len(lg.producers))
			rt := fmt.Sprintf("legit_tcp_%d", i)
			steps = append(steps, func() error {
				lg.topics[rt] = true
				lg.channels[rt+"/legit_ch"] = true
				reply, _, err := lg.producers[k].roundTrip("REGISTER " + rt + " legit_ch\n")
				if err != nil || string(reply) != "OK" {
					return fmt.Errorf("legitimate REGISTER %s on %s: %q %v", rt, lg.nodes[k].ID, reply, err)
				}
				lg.ops++
				return nil
			})
		}
		for _, step := range steps {
			if err := step(); err != nil {
				lg.err = err
				return
			}
		}
		n := lg.nodes[r.IntN(len(lg.nodes))]
		if err := haListedOnce(n.HTTPAddr(), lg.producers[0].ID, "legit_tcp_n1", "", false); err != nil {
			lg.reads["failed"]++
		} else {
			lg.reads["ok"]++
		}
	}
}

func (lg *legit) summary() string {
	return fmt.Sprintf("%d writes (%d retried attempts), lookups %d ok / %d failed", lg.ops, lg.retries, lg.reads["ok"], lg.reads["failed"])
}

func (lg *legit) topicCount() int { return len(lg.topics) }

// check compares the registry with the two models: every legitimate topic
// and channel is there, no deleted one is, and every other name is one a
// hostile request asked to create in valid form.
func (lg *legit) check(s regState, h *hostile) error {
	var errs []string
	for tp := range lg.topics {
		if !slices.Contains(s.topics, tp) {
			errs = append(errs, "legitimate topic missing: "+tp)
		}
	}
	for k := range lg.channels {
		tp, ch, _ := strings.Cut(k, "/")
		if !slices.Contains(s.channels[tp], ch) {
			errs = append(errs, "legitimate channel missing: "+k)
		}
	}
	for _, tp := range s.topics {
		legitName := strings.HasPrefix(tp, "legit_")
		switch {
		case legitName && !lg.topics[tp]:
			errs = append(errs, "topic listed that the legitimate client deleted or never made: "+tp)
		case !legitName && !nsq.IsValidTopicName(tp):
			// What reaches the log must be valid. Which hostile request
			// made a valid name is not attributed: pipelined TCP bytes and
			// unfinished lines make that guesswork (h.topics is only
			// reported).
			errs = append(errs, fmt.Sprintf("invalid topic %q listed", tp))
		}
		for _, ch := range s.channels[tp] {
			k := tp + "/" + ch
			if (legitName && !lg.channels[k]) || (!legitName && !nsq.IsValidChannelName(ch)) {
				errs = append(errs, fmt.Sprintf("channel %q listed that is invalid (or the legitimate client deleted)", k))
			}
		}
	}
	if len(errs) == 0 {
		return nil
	}
	slices.Sort(errs)
	if len(errs) > 30 {
		errs = append(errs[:30], fmt.Sprintf("... %d more", len(errs)-30))
	}
	return fmt.Errorf("registry after the hostile run:\n  %s", strings.Join(errs, "\n  "))
}

// onlyProducers checks that /nodes lists exactly the legitimate producers.
func (lg *legit) onlyProducers(n *Node) error {
	var nd nodesDoc
	if err := getJSON(n.HTTPAddr(), "/nodes", &nd); err != nil {
		return err
	}
	var got, want []string
	for _, p := range nd.Producers {
		got = append(got, haIdentity{p.BroadcastAddress, p.TCPPort, p.HTTPPort}.String())
	}
	for _, p := range lg.producers {
		want = append(want, p.ID.String())
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		if len(got) > 10 {
			got = append(got[:10], fmt.Sprintf("... %d in all", len(got)))
		}
		return fmt.Errorf("%s /nodes lists %v, want only the legitimate %v", n, got, want)
	}
	return nil
}
