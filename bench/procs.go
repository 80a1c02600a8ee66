package main

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// proc is one server process under test.
type proc struct {
	name            string
	bin             string
	args            []string
	tcp, http, raft string
	dataDir         string
	cmd             *exec.Cmd
	log             *os.File
}

func (p *proc) start() error {
	f, err := os.OpenFile(filepath.Join(workDir, p.name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	p.log = f
	p.cmd = exec.Command(p.bin, p.args...)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return p.cmd.Start()
}

func (p *proc) kill() {
	if p.cmd != nil && p.cmd.Process != nil {
		p.cmd.Process.Kill()
		p.cmd.Wait()
	}
	if p.log != nil {
		p.log.Close()
	}
	p.cmd = nil
}

// rss returns the process's resident set size in bytes.
func (p *proc) rss() (int64, error) {
	v, err := p.status("VmRSS")
	return v["VmRSS"], err
}

// rssParts describes p's resident memory as anonymous (heap, stacks) and
// file-backed (mapped files: the binary, bolt's mmap of raft.db) parts.
func (p *proc) rssParts() string {
	v, err := p.status("RssAnon", "RssFile")
	if err != nil {
		return "?"
	}
	return fmt.Sprintf("anon %s, file %s", mib(v["RssAnon"]), mib(v["RssFile"]))
}

// status reads the named kB fields of /proc/PID/status, in bytes.
func (p *proc) status(names ...string) (map[string]int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]int64{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ":")
		if !ok || !slices.Contains(names, name) {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s of %s: %w", name, p.name, err)
		}
		out[name] = kb * 1024
	}
	for _, n := range names {
		if _, ok := out[n]; !ok {
			return nil, fmt.Errorf("no %s for %s", n, p.name)
		}
	}
	return out, sc.Err()
}

func freePort() int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func addr(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

func startReference(bin string) (*proc, error) { return startReferenceNamed(bin, "nsqlookupd") }

func startReferenceNamed(bin, name string) (*proc, error) {
	p := &proc{name: name, bin: bin, tcp: addr(freePort()), http: addr(freePort())}
	p.args = []string{"-tcp-address", p.tcp, "-http-address", p.http, "-broadcast-address", "127.0.0.1", "-log-level", "warn"}
	if err := p.start(); err != nil {
		return nil, err
	}
	return p, waitHTTP(p.http+"/ping", 10*time.Second)
}

// startCluster starts three raftlookupd processes with static peers and
// waits until each is ready; when it fails, it kills what it started.
// nodeFlags are added to every node's command line (-node-flags), to try
// a setting against the defaults.
var nodeFlags []string

func startCluster(bin string, extra ...string) ([]*proc, error) {
	nodes := make([]*proc, 3)
	var peers []string
	for i := range nodes {
		n := &proc{name: fmt.Sprintf("n%d", i+1), bin: bin, tcp: addr(freePort()), http: addr(freePort()), raft: addr(freePort())}
		n.dataDir = filepath.Join(workDir, n.name+"-data")
		os.RemoveAll(n.dataDir)
		peers = append(peers, n.name+"="+n.raft)
		nodes[i] = n
	}
	for _, n := range nodes {
		n.args = append([]string{"-node-id", n.name, "-data-dir", n.dataDir, "-broadcast-address", "127.0.0.1",
			"-tcp-address", n.tcp, "-http-address", n.http, "-raft-address", n.raft,
			"-peers", strings.Join(peers, ","), "-log-level", "warn"}, append(slices.Clone(nodeFlags), extra...)...)
		if err := n.start(); err != nil {
			killAll(nodes...)
			return nil, err
		}
	}
	for _, n := range nodes {
		if err := waitHTTP(n.http+"/cluster/ready", 20*time.Second); err != nil {
			killAll(nodes...)
			return nil, err
		}
	}
	return nodes, nil
}

// startSingle starts a single-node cluster (what README's first command
// runs) and waits until it is ready.
func startSingle(bin, name string) (*proc, error) {
	n := &proc{name: name, bin: bin, tcp: addr(freePort()), http: addr(freePort()), raft: addr(freePort())}
	n.dataDir = filepath.Join(workDir, n.name+"-data")
	os.RemoveAll(n.dataDir)
	n.args = append([]string{"-node-id", n.name, "-data-dir", n.dataDir, "-broadcast-address", "127.0.0.1",
		"-tcp-address", n.tcp, "-http-address", n.http, "-raft-address", n.raft, "-log-level", "warn"},
		slices.Clone(nodeFlags)...)
	if err := n.start(); err != nil {
		return n, err
	}
	return n, waitHTTP(n.http+"/cluster/ready", 20*time.Second)
}

func waitHTTP(url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		resp, err := http.Get("http://" + url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready within %v (last: %v)", url, timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func leaderOf(nodes []*proc) (*proc, []*proc, error) {
	var st struct {
		LeaderID string `json:"leader_id"`
	}
	for _, n := range nodes {
		if n.cmd == nil {
			continue
		}
		if err := getJSON(n.http, "/cluster/status", &st); err == nil && st.LeaderID != "" {
			var leader *proc
			var others []*proc
			for _, m := range nodes {
				if m.name == st.LeaderID {
					leader = m
				} else if m.cmd != nil {
					others = append(others, m)
				}
			}
			if leader != nil {
				return leader, others, nil
			}
		}
	}
	return nil, nil, fmt.Errorf("no leader known")
}

// cpuTime is how much CPU time p's threads have used so far, from the
// scheduler's per-thread accounting (/proc/PID/task/*/schedstat, in
// nanoseconds; the clock-tick counters of /proc/PID/stat are too coarse
// for a storm of a tenth of a second). 0 where it cannot be read.
func cpuTime(p *proc) time.Duration {
	if p == nil || p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return cpuTimeOf(p.cmd.Process.Pid)
}

// selfCPU is cpuTime of this process: the load generator.
func selfCPU() time.Duration { return cpuTimeOf(os.Getpid()) }

func cpuTimeOf(pid int) time.Duration {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	var total time.Duration
	for _, t := range tasks {
		b, err := os.ReadFile(filepath.Join(dir, t.Name(), "schedstat"))
		if err != nil {
			continue // the thread ended meanwhile
		}
		if f := strings.Fields(string(b)); len(f) > 0 {
			if ns, err := strconv.ParseInt(f[0], 10, 64); err == nil {
				total += time.Duration(ns)
			}
		}
	}
	return total
}

// cpuWatch measures the CPU time some processes, and this process (the
// load generator), spend from watchCPU on.
type cpuWatch struct {
	ps     []*proc
	before []time.Duration
	gen    time.Duration
}

func watchCPU(ps ...*proc) cpuWatch {
	w := cpuWatch{ps: ps, gen: selfCPU()}
	for _, p := range ps {
		w.before = append(w.before, cpuTime(p))
	}
	return w
}

// spent formats the CPU time each process used since watchCPU, with their
// sum. It also gives the least wall time the processes' and the load
// generator's CPU time could have taken on this machine's cores, however
// it was scheduled: a run whose processes keep the cores busy cannot
// finish sooner, so its ratio is bounded by this machine until they spend
// less.
func (w cpuWatch) spent() (each, floorText string, floor time.Duration) {
	var parts []string
	var sum time.Duration
	for i, p := range w.ps {
		d := cpuTime(p) - w.before[i]
		sum += d
		parts = append(parts, fmt.Sprintf("%s %v", p.name, d.Round(100*time.Microsecond)))
	}
	each = parts[0]
	if len(parts) > 1 {
		each = fmt.Sprintf("%s (sum %v)", strings.Join(parts, ", "), sum.Round(100*time.Microsecond))
	}
	gen := selfCPU() - w.gen
	cores := runtime.NumCPU()
	floor = (sum + gen) / time.Duration(cores)
	floorText = fmt.Sprintf("%v (servers %v + load generator %v, over %d cores)", floor.Round(100*time.Microsecond),
		sum.Round(100*time.Microsecond), gen.Round(100*time.Microsecond), cores)
	return each, floorText, floor
}
