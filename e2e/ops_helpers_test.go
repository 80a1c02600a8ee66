package e2e

// Helpers of ops_test.go: the raftlookupctl binary, nodes started one at a
// time (joining, waiting to be added, restored from a copied data dir),
// admin requests with a token, membership checks and data-dir copies.
// Every name starts with "ops" so that other files of the package are free
// to use the plain ones.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	raftlookupctlPkg = "github.com/raftlookupd/raftlookupd/cmd/raftlookupctl"
	// opsCtlTimeout bounds one raftlookupctl run (its own request timeout
	// is 5 s).
	opsCtlTimeout = 20 * time.Second
	// opsTimeout bounds the membership and replication waits of ops_test.go.
	opsTimeout = 20 * time.Second
)

// opsCtl is the raftlookupctl binary, built at most once per `go test` run
// into the directory TestMain owns, like raftlookupd.
var opsCtl struct {
	once sync.Once
	path string
	err  error
}

// opsCtlBinary returns the path of raftlookupctl (E2E_RAFTLOOKUPCTL_BIN
// names a prebuilt one). A failed build fails the test.
func opsCtlBinary(t testing.TB) string {
	t.Helper()
	opsCtl.once.Do(func() {
		opsCtl.path, opsCtl.err = buildBinary("E2E_RAFTLOOKUPCTL_BIN", "raftlookupctl", raftlookupctlPkg)
	})
	if opsCtl.err != nil {
		t.Fatalf("raftlookupctl binary unavailable: %v", opsCtl.err)
	}
	return opsCtl.path
}

// ctlResult is one raftlookupctl run.
type ctlResult struct {
	args           []string
	code           int
	stdout, stderr string
}

func (r ctlResult) String() string {
	return fmt.Sprintf("raftlookupctl %s: exit %d\nstdout: %q\nstderr: %q", strings.Join(r.args, " "), r.code, r.stdout, r.stderr)
}

// opsRunCtl runs raftlookupctl with args; env entries (KEY=VALUE) are added
// to the test's environment without RAFTLOOKUPD_* variables. A run that
// cannot start or hangs fails the test; its exit status is the caller's.
func opsRunCtl(t testing.TB, env []string, args ...string) ctlResult {
	t.Helper()
	return opsCtlRun(t, true, env, args...)
}

// opsCtlRun is opsRunCtl; log=false keeps polls out of the test log.
func opsCtlRun(t testing.TB, log bool, env []string, args ...string) ctlResult {
	t.Helper()
	bin := opsCtlBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), opsCtlTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(childEnv(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := ctlResult{args: args, stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case ctx.Err() != nil:
		t.Fatalf("raftlookupctl %s did not finish within %v", strings.Join(args, " "), opsCtlTimeout)
	case errors.As(err, &ee):
		res.code = ee.ExitCode()
	default:
		t.Fatalf("raftlookupctl %s: %v", strings.Join(args, " "), err)
	}
	if log {
		t.Logf("%s", res)
	}
	return res
}

// opsMustCtl runs raftlookupctl and fails the test unless it exits 0.
func opsMustCtl(t testing.TB, env []string, args ...string) ctlResult {
	t.Helper()
	res := opsRunCtl(t, env, args...)
	if res.code != 0 {
		t.Fatalf("want exit 0: %s", res)
	}
	return res
}

// opsCtlFails checks that a failed raftlookupctl run exited with status 1
// and printed exactly one line on stderr containing every one of want.
func opsCtlFails(t testing.TB, res ctlResult, want ...string) {
	t.Helper()
	if res.code != 1 {
		t.Errorf("want exit 1 (request failed): %s", res)
	}
	if res.stdout != "" {
		t.Errorf("want nothing on stdout: %s", res)
	}
	if !strings.HasSuffix(res.stderr, "\n") || strings.Count(res.stderr, "\n") != 1 {
		t.Errorf("want exactly one line on stderr: %s", res)
	}
	for _, w := range want {
		if !strings.Contains(res.stderr, w) {
			t.Errorf("stderr lacks %q: %s", w, res)
		}
	}
}

// ---------------------------------------------------------------------------
// admin API with an optional token

func opsAuth(token string) http.Header {
	if token == "" {
		return nil
	}
	return http.Header{"Authorization": {"Bearer " + token}}
}

// opsStatus is GET /cluster/status with the token (if any).
func opsStatus(n *Node, token string) (clusterStatus, error) {
	var st clusterStatus
	res, err := httpDo("GET", "http://"+n.HTTPAddr()+"/cluster/status", nil, opsAuth(token))
	if err != nil {
		return st, fmt.Errorf("%s: %w", n, err)
	}
	if res.Status != http.StatusOK {
		return st, fmt.Errorf("%s: GET /cluster/status: %d %s", n, res.Status, res.Body)
	}
	if err := json.Unmarshal(res.Body, &st); err != nil {
		return st, fmt.Errorf("%s: /cluster/status: %w: %s", n, err, res.Body)
	}
	return st, nil
}

// opsReady: the node runs, /cluster/ready answers 200 and its status names a
// leader.
func opsReady(n *Node, token string) error {
	if err := n.exitError(); err != nil {
		return err
	}
	res, err := httpDo("GET", "http://"+n.HTTPAddr()+"/cluster/ready", nil, opsAuth(token))
	if err != nil {
		return fmt.Errorf("%s: %w", n, err)
	}
	if res.Status != http.StatusOK {
		return fmt.Errorf("%s: GET /cluster/ready: %d %s", n, res.Status, res.Body)
	}
	st, err := opsStatus(n, token)
	if err != nil {
		return err
	}
	if st.LeaderID == "" {
		return fmt.Errorf("%s: no leader in /cluster/status", n)
	}
	return nil
}

// opsLeader waits until every given node is ready, all name the same leader
// and that leader, one of nodes, reports state Leader. It returns the leader.
func opsLeader(t testing.TB, token string, timeout time.Duration, nodes ...*Node) *Node {
	t.Helper()
	var leader *Node
	waitFor(t, timeout, func() error {
		leader = nil
		id := ""
		for _, n := range nodes {
			if err := opsReady(n, token); err != nil {
				return err
			}
			st, err := opsStatus(n, token)
			if err != nil {
				return err
			}
			if id == "" {
				id = st.LeaderID
			} else if st.LeaderID != id {
				return fmt.Errorf("nodes disagree on the leader: %q vs %q (%s)", id, st.LeaderID, n)
			}
		}
		for _, n := range nodes {
			if n.ID != id {
				continue
			}
			st, err := opsStatus(n, token)
			if err != nil {
				return err
			}
			if st.State != "Leader" {
				return fmt.Errorf("%s is named leader but reports state %s", n, st.State)
			}
			leader = n
			return nil
		}
		return fmt.Errorf("the leader %q is none of the given nodes", id)
	})
	return leader
}

// opsOthers returns nodes without the excluded ones.
func opsOthers(nodes []*Node, exclude ...*Node) []*Node {
	var out []*Node
	for _, n := range nodes {
		if !slices.Contains(exclude, n) {
			out = append(out, n)
		}
	}
	return out
}

// opsMember is what a test expects of one entry of /cluster/status members.
// Empty address fields are not checked.
type opsMember struct {
	id, raft, http, tcp, suffrage string
}

// opsMemberOf describes a running node as a member with its addresses.
func opsMemberOf(n *Node, suffrage string) opsMember {
	return opsMember{id: n.ID, raft: n.RaftAddr(), http: n.HTTPAddr(), tcp: n.TCPAddr(), suffrage: suffrage}
}

// opsVoters describes nodes as voters.
func opsVoters(nodes ...*Node) []opsMember {
	var out []opsMember
	for _, n := range nodes {
		out = append(out, opsMemberOf(n, "Voter"))
	}
	return out
}

// opsMembersAre checks that a status lists exactly the wanted members, each
// once, with the wanted addresses and suffrage.
func opsMembersAre(st clusterStatus, want []opsMember) error {
	var got []string
	for _, m := range st.Members {
		got = append(got, fmt.Sprintf("%s raft=%s http=%s tcp=%s %s", m.ID, m.RaftAddress, m.HTTPAddress, m.TCPAddress, m.Suffrage))
	}
	sort.Strings(got)
	if len(st.Members) != len(want) {
		return fmt.Errorf("node %s lists %d members, want %d: %v", st.NodeID, len(st.Members), len(want), got)
	}
	for _, w := range want {
		n := 0
		for _, m := range st.Members {
			if m.ID != w.id {
				continue
			}
			n++
			if (w.raft != "" && m.RaftAddress != w.raft) || (w.http != "" && m.HTTPAddress != w.http) ||
				(w.tcp != "" && m.TCPAddress != w.tcp) || (w.suffrage != "" && m.Suffrage != w.suffrage) {
				return fmt.Errorf("node %s: member %s is not %+v: %v", st.NodeID, w.id, w, got)
			}
		}
		if n != 1 {
			return fmt.Errorf("node %s lists member %s %d times: %v", st.NodeID, w.id, n, got)
		}
	}
	return nil
}

// opsWaitMembers waits until the status of every one of nodes lists exactly
// the wanted members.
func opsWaitMembers(t testing.TB, token string, nodes []*Node, want []opsMember) {
	t.Helper()
	waitFor(t, opsTimeout, func() error {
		for _, n := range nodes {
			st, err := opsStatus(n, token)
			if err != nil {
				return err
			}
			if err := opsMembersAre(st, want); err != nil {
				return err
			}
		}
		return nil
	})
}

// ---------------------------------------------------------------------------
// registry reads

// opsTopics returns /topics of a node (pathq may add ?consistency=...).
func opsTopics(n *Node, pathq string) ([]string, error) {
	var td topicsDoc
	if err := getJSON(n.HTTPAddr(), pathq, &td); err != nil {
		return nil, fmt.Errorf("%s: %w", n, err)
	}
	return td.Topics, nil
}

// opsHasTopics checks that /topics of a node lists every one of topics.
func opsHasTopics(n *Node, topics ...string) func() error {
	return func() error {
		got, err := opsTopics(n, "/topics")
		if err != nil {
			return err
		}
		for _, tp := range topics {
			if !slices.Contains(got, tp) {
				return fmt.Errorf("%s: /topics = %v lacks %s", n, got, tp)
			}
		}
		return nil
	}
}

// opsSameAnswers checks that every one of nodes answers each GET exactly
// (status and body) as ref does. Lists are sorted, so bodies compare as bytes.
func opsSameAnswers(ref *Node, nodes []*Node, paths ...string) func() error {
	return func() error {
		for _, p := range paths {
			want, err := httpDo("GET", "http://"+ref.HTTPAddr()+p, nil, nil)
			if err != nil {
				return fmt.Errorf("%s: GET %s: %w", ref, p, err)
			}
			if want.Status != http.StatusOK {
				return fmt.Errorf("%s: GET %s: %d %s", ref, p, want.Status, want.Body)
			}
			for _, n := range nodes {
				got, err := httpDo("GET", "http://"+n.HTTPAddr()+p, nil, nil)
				if err != nil {
					return fmt.Errorf("%s: GET %s: %w", n, p, err)
				}
				if got.Status != want.Status || !bytes.Equal(got.Body, want.Body) {
					return fmt.Errorf("GET %s: %s answers %d %s, %s answers %d %s", p, n, got.Status, got.Body, ref, want.Status, want.Body)
				}
			}
		}
		return nil
	}
}

// opsPostStatus POSTs and returns the status (an error when the request
// itself failed).
func opsPostStatus(n *Node, pathq string, body []byte, hdr http.Header) (*httpResult, error) {
	res, err := httpDo("POST", "http://"+n.HTTPAddr()+pathq, body, hdr)
	if err != nil {
		return nil, fmt.Errorf("%s: POST %s: %w", n, pathq, err)
	}
	return res, nil
}

// ---------------------------------------------------------------------------
// nodes started one by one

// opsStartNode starts one raftlookupd node with fresh ports and directory
// (no -peers: extra says how it enters a cluster) and waits until its HTTP
// listener answers /ping; it does not wait for it to be ready. prepare, if
// not nil, fills the data dir before the start, knowing the node's Raft
// address. A start that lost a port race is retried with new ports and a
// freshly prepared directory.
func opsStartNode(t testing.TB, id string, prepare func(dataDir, raftAddr string) error, extra ...string) *Node {
	t.Helper()
	bin := raftlookupdBinary(t)
	for attempt := 1; ; attempt++ {
		ports := freePorts(t, 3)
		dir := filepath.Join(t.TempDir(), id)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		n := newNode(t, bin, id, ports[0], ports[1], ports[2], dir, extra)
		if prepare != nil {
			if err := os.MkdirAll(n.DataDir, 0o750); err != nil {
				t.Fatal(err)
			}
			if err := prepare(n.DataDir, n.RaftAddr()); err != nil {
				t.Fatalf("preparing the data dir of %s: %v", n, err)
			}
		}
		if err := n.start(); err != nil {
			t.Fatal(err)
		}
		err := eventually(clusterReadyTimeout, func() error {
			if err := n.exitError(); err != nil {
				return err
			}
			res, err := httpDo("GET", "http://"+n.HTTPAddr()+"/ping", nil, nil)
			if err != nil {
				return err
			}
			if res.Status != http.StatusOK {
				return fmt.Errorf("%s: GET /ping: %d %s", n, res.Status, res.Body)
			}
			return nil
		})
		if err == nil {
			return n
		}
		if !n.Running() && logShowsBindFailure(n.LogPath) && attempt < maxStartAttempts {
			t.Logf("start of %s lost a port race, retrying: %v", n, err)
			continue
		}
		t.Fatalf("%s did not start: %v", n, err)
	}
}

// opsLogCount counts the lines of the nodes' logs that contain every one of
// subs.
func opsLogCount(t testing.TB, nodes []*Node, subs ...string) int {
	t.Helper()
	count := 0
	for _, n := range nodes {
		b, err := os.ReadFile(n.LogPath)
		if err != nil {
			t.Fatalf("log of %s: %v", n, err)
		}
	lines:
		for _, line := range strings.Split(string(b), "\n") {
			for _, s := range subs {
				if !strings.Contains(line, s) {
					continue lines
				}
			}
			count++
		}
	}
	return count
}

// ---------------------------------------------------------------------------
// data dirs

// opsWritePeers writes the peers.json recovery file into a data dir: every
// server a voter.
func opsWritePeers(dataDir string, servers ...[2]string) error {
	type peer struct {
		ID      string `json:"id"`
		Address string `json:"address"`
	}
	var ps []peer
	for _, s := range servers {
		ps = append(ps, peer{ID: s[0], Address: s[1]})
	}
	b, err := json.Marshal(ps)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dataDir, "peers.json"), b, 0o640)
}

// opsCopyDir copies the regular files and directories under src into dst
// (which may exist), keeping modes.
func opsCopyDir(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.MkdirAll(target, info.Mode().Perm()|0o700)
		case info.Mode().IsRegular():
			return opsCopyFile(path, target, info.Mode().Perm())
		default:
			return fmt.Errorf("%s: not a regular file or directory", path)
		}
	})
}

func opsCopyFile(src, dst string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// opsSnapshot is one finished snapshot of a data dir (snapshots/<id>/).
type opsSnapshot struct {
	dir         string
	index, term uint64
	size        int64
}

// opsNewestSnapshot returns the finished snapshot with the highest index in
// dataDir/snapshots (directories ending in .tmp are being written).
func opsNewestSnapshot(dataDir string) (opsSnapshot, error) {
	root := filepath.Join(dataDir, "snapshots")
	entries, err := os.ReadDir(root)
	if err != nil {
		return opsSnapshot{}, err
	}
	var best opsSnapshot
	for _, e := range entries {
		if !e.IsDir() || strings.HasSuffix(e.Name(), ".tmp") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(root, e.Name(), "meta.json"))
		if err != nil {
			continue // removed by retention while we looked
		}
		var meta struct {
			Index, Term uint64
			Size        int64
		}
		if err := json.Unmarshal(b, &meta); err != nil {
			return opsSnapshot{}, fmt.Errorf("%s/meta.json: %w", e.Name(), err)
		}
		if meta.Index > best.index {
			best = opsSnapshot{dir: filepath.Join(root, e.Name()), index: meta.Index, term: meta.Term, size: meta.Size}
		}
	}
	if best.dir == "" {
		return best, fmt.Errorf("no finished snapshot in %s", root)
	}
	return best, nil
}

func opsParseFloat(s string) (float64, error) { return strconv.ParseFloat(s, 64) }
