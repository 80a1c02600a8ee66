package chaos

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// nsPrefix starts the name of every namespace the suite creates:
// rlc-<pid>-<run>-<role>. The pid lets a later test remove what a killed
// one left behind without touching the namespaces of a live one.
const nsPrefix = "rlc-"

// subnet is the /24 inside the run's namespaces; nothing in the root
// namespace gets an address.
const subnet = "10.77.0."

// clientHost is the last octet of the client namespace's address.
const clientHost = 100

// network is one run's namespaces: a hub holding the bridge, one namespace
// per node and one for the test's clients, each joined to the bridge by a
// veth pair ("eth0" inside, "vN" in the hub).
type network struct {
	base   string // rlc-<pid>-<run>
	hub    string
	client string
	nodes  []string // namespace of node i+1
	// clientNS is an open handle on the client namespace, for setns.
	clientNS *os.File
	// netem says whether the kernel has the netem qdisc (some VM kernels
	// are built without it); without it the delay fault is a flaky link.
	netem bool
}

// registry of namespaces alive in this process, so a signal handler can
// remove them.
var live = struct {
	sync.Mutex
	names map[string]bool
	procs map[*os.Process]bool
}{names: map[string]bool{}, procs: map[*os.Process]bool{}}

func liveAdd(name string)    { live.Lock(); live.names[name] = true; live.Unlock() }
func liveRemove(name string) { live.Lock(); delete(live.names, name); live.Unlock() }

// cleanupAll kills every node process and removes every namespace of this
// process. It is what SIGINT and SIGTERM run.
func cleanupAll() {
	live.Lock()
	procs := make([]*os.Process, 0, len(live.procs))
	for p := range live.procs {
		procs = append(procs, p)
	}
	names := make([]string, 0, len(live.names))
	for n := range live.names {
		names = append(names, n)
	}
	live.Unlock()
	for _, p := range procs {
		_ = p.Kill()
	}
	for _, n := range names {
		_ = ipCmd("netns", "del", n)
	}
}

// ipCmd runs ip(8) and returns its output in the error.
func ipCmd(args ...string) error {
	return run("ip", args...)
}

func run(name string, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// nsRun runs a command inside namespace ns.
func nsRun(ns string, name string, args ...string) error {
	return run("ip", append([]string{"netns", "exec", ns, name}, args...)...)
}

// sweepLeftovers removes namespaces with our prefix whose creating process
// is gone (a test killed before its cleanup ran).
func sweepLeftovers() error {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return fmt.Errorf("ip netns list: %w", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || !strings.HasPrefix(f[0], nsPrefix) {
			continue
		}
		pidStr, _, _ := strings.Cut(strings.TrimPrefix(f[0], nsPrefix), "-")
		pid, err := strconv.Atoi(pidStr)
		if err != nil || pid == os.Getpid() || processAlive(pid) {
			continue
		}
		if err := ipCmd("netns", "del", f[0]); err != nil {
			return fmt.Errorf("the chaos suite needs root and ip(8): %w", err)
		}
	}
	return nil
}

// processAlive: signal 0 reaches a live process, or is refused (EPERM)
// for another user's.
func processAlive(pid int) bool {
	err := unix.Kill(pid, 0)
	return err == nil || errors.Is(err, unix.EPERM)
}

// newNetwork creates the namespaces of one run with n nodes. On error what
// was made is removed.
func newNetwork(run, n int) (*network, error) {
	base := fmt.Sprintf("%s%d-%d", nsPrefix, os.Getpid(), run)
	nw := &network{base: base, hub: base + "-hub", client: base + "-cl"}
	if err := nw.build(n); err != nil {
		nw.close()
		return nil, err
	}
	return nw, nil
}

func (nw *network) build(n int) error {
	base := nw.base
	if err := nw.addNS(nw.hub); err != nil {
		return err
	}
	for _, args := range [][]string{
		{"-n", nw.hub, "link", "add", "br0", "type", "bridge"},
		{"-n", nw.hub, "link", "set", "br0", "up"},
	} {
		if err := ipCmd(args...); err != nil {
			return err
		}
	}
	for i := 1; i <= n; i++ {
		ns := fmt.Sprintf("%s-n%d", base, i)
		nw.nodes = append(nw.nodes, ns)
		if err := nw.attach(ns, "v"+strconv.Itoa(i), subnet+strconv.Itoa(i)); err != nil {
			return err
		}
	}
	if err := nw.attach(nw.client, "vc", subnet+strconv.Itoa(clientHost)); err != nil {
		return err
	}
	f, err := os.Open("/run/netns/" + nw.client)
	if err != nil {
		return err
	}
	nw.clientNS = f
	// Probe netem on the hub's bridge (no traffic of the run crosses it
	// there, the qdisc goes away again at once).
	if ipCmd("netns", "exec", nw.hub, "tc", "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms") == nil {
		nw.netem = true
		_ = nsRun(nw.hub, "tc", "qdisc", "del", "dev", "lo", "root")
	}
	return nil
}

func (nw *network) addNS(ns string) error {
	if err := ipCmd("netns", "add", ns); err != nil {
		return fmt.Errorf("cannot create network namespaces (the chaos suite needs root and ip(8)): %w", err)
	}
	liveAdd(ns)
	return ipCmd("-n", ns, "link", "set", "lo", "up")
}

// attach creates namespace ns with eth0 at addr, its peer hubIf on the
// bridge.
func (nw *network) attach(ns, hubIf, addr string) error {
	if err := nw.addNS(ns); err != nil {
		return err
	}
	for _, args := range [][]string{
		{"-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", hubIf, "netns", nw.hub},
		{"-n", nw.hub, "link", "set", hubIf, "master", "br0", "up"},
		{"-n", ns, "addr", "add", addr + "/24", "dev", "eth0"},
		{"-n", ns, "link", "set", "eth0", "up"},
	} {
		if err := ipCmd(args...); err != nil {
			return err
		}
	}
	return nil
}

// close removes every namespace of the run (their veths go with them).
func (nw *network) close() error {
	if nw.clientNS != nil {
		nw.clientNS.Close()
	}
	var first error
	for _, ns := range append(append([]string{nw.client}, nw.nodes...), nw.hub) {
		live.Lock()
		ok := live.names[ns]
		live.Unlock()
		if !ok {
			continue
		}
		if err := ipCmd("netns", "del", ns); err != nil && first == nil {
			first = err
		}
		liveRemove(ns)
	}
	return first
}

// nodeIP is the address of node i (1-based).
func nodeIP(i int) string { return subnet + strconv.Itoa(i) }

// dial connects from the client namespace. The socket is made on a thread
// that entered the namespace; that goroutine never unlocks its thread, so
// the runtime ends the thread with it instead of reusing it elsewhere.
func (nw *network) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Setns(int(nw.clientNS.Fd()), unix.CLONE_NEWNET); err != nil {
			ch <- result{nil, fmt.Errorf("setns %s: %w", nw.client, err)}
			return
		}
		var d net.Dialer
		c, err := d.DialContext(ctx, network, addr)
		ch <- result{c, err}
	}()
	r := <-ch
	return r.c, r.err
}
