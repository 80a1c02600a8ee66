package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// backupRestoreTimeout bounds how long the restored keys and the nsqd's
// registrations take to show on every node: nsqd reconnects to a lookupd on
// its next 15 s tick.
const backupRestoreTimeout = 60 * time.Second

// TestBackupWipeRestore: snapshot save from a loaded three-node cluster (keys
// made through HTTP and by a real nsqd), every node wiped (fresh data dirs,
// same flags), snapshot restore through a follower: every node answers
// /topics and /channels as before the wipe, and the nsqd registers its
// producers again.
func TestBackupWipeRestore(t *testing.T) {
	const token = "backup-e2e-token"
	env := []string{"RAFTLOOKUPD_ADMIN_TOKEN=" + token}
	c := StartCluster(t, 3, "-admin-token", token)
	d := StartNSQD(t, haTCPAddrs(c.Nodes)...)

	// Load: HTTP keys through every node, and nsqd's own registrations.
	var topics []string
	for i := range 30 {
		n := c.Nodes[i%3]
		topic := fmt.Sprintf("backup_%02d", i)
		topics = append(topics, topic)
		mustPost(t, n.HTTPAddr(), fmt.Sprintf("/channel/create?topic=%s&channel=ch_%d", topic, i%4), nil)
	}
	mustPost(t, c.Nodes[0].HTTPAddr(), "/topic/create?topic=backup_bare", nil)
	mustPost(t, d.HTTPAddr, "/topic/create?topic=from_nsqd", nil)
	mustPost(t, d.HTTPAddr, "/channel/create?topic=from_nsqd&channel=nsqd_ch", nil)
	topics = append(topics, "backup_bare", "from_nsqd")
	slices.Sort(topics)
	waitFor(t, registerTimeout, func() error {
		for _, n := range c.Nodes {
			if err := backupNSQDListed(n, "from_nsqd", "nsqd_ch"); err != nil {
				return err
			}
			if err := opsHasTopics(n, topics...)(); err != nil {
				return err
			}
		}
		return nil
	})
	paths := []string{"/topics"}
	for _, tp := range topics {
		paths = append(paths, "/channels?topic="+tp)
	}
	waitFor(t, registerTimeout, opsSameAnswers(c.Nodes[0], c.Nodes[1:], paths...))
	want := map[string]string{}
	for _, p := range paths {
		res, err := httpDo("GET", "http://"+c.Nodes[0].HTTPAddr()+p, nil, nil)
		if err != nil || res.Status != 200 {
			t.Fatalf("GET %s: %v %+v", p, err, res)
		}
		want[p] = string(res.Body)
	}

	// Save through a follower; the file says what it holds.
	file := filepath.Join(t.TempDir(), "cluster.snapshot")
	follower := c.Followers(clusterReadyTimeout)[0]
	opsMustCtl(t, env, "-addr", follower.HTTPAddr(), "snapshot", "save", file)
	inspect := opsMustCtl(t, nil, "snapshot", "inspect", file)
	for _, line := range []string{"topics     32\n", "channels   31\n"} {
		if !strings.Contains(inspect.stdout, line) {
			t.Errorf("snapshot inspect lacks %q:\n%s", line, inspect.stdout)
		}
	}
	if strings.Contains(inspect.stdout, "sessions   0\n") {
		t.Errorf("snapshot inspect shows no nsqd session:\n%s", inspect.stdout)
	}

	// Wipe: every node killed, its data dir removed, started again with
	// the same flags: a new, empty cluster.
	for _, n := range c.Nodes {
		n.Kill()
		if err := os.RemoveAll(n.DataDir); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range c.Nodes {
		n.Restart()
	}
	c.WaitReady(clusterReadyTimeout)
	for _, n := range c.Nodes {
		if got, err := opsTopics(n, "/topics"); err != nil || slices.Contains(got, "backup_00") {
			t.Fatalf("%s after the wipe: /topics %v (%v), want no backup_00", n, got, err)
		}
	}

	// A restore without the token is refused and changes nothing.
	res := opsRunCtl(t, nil, "-addr", c.Nodes[2].HTTPAddr(), "snapshot", "restore", file)
	opsCtlFails(t, res, "401")

	// Restore through a follower of the new cluster.
	follower = c.Followers(clusterReadyTimeout)[0]
	out := opsMustCtl(t, env, "-addr", follower.HTTPAddr(), "snapshot", "restore", file)
	if !strings.Contains(out.stdout, "32 topics, 31 channels") {
		t.Errorf("restore printed %q", out.stdout)
	}
	waitFor(t, backupRestoreTimeout, func() error {
		for _, n := range c.Nodes {
			for _, p := range paths {
				r, err := httpDo("GET", "http://"+n.HTTPAddr()+p, nil, nil)
				if err != nil {
					return fmt.Errorf("%s: GET %s: %w", n, p, err)
				}
				if r.Status != 200 || string(r.Body) != want[p] {
					return fmt.Errorf("%s: GET %s = %d %s, want %s", n, p, r.Status, r.Body, want[p])
				}
			}
			if err := backupNSQDListed(n, "from_nsqd", "nsqd_ch"); err != nil {
				return err
			}
		}
		return nil
	})
	// The cluster still takes writes, on every node.
	mustPost(t, c.Nodes[1].HTTPAddr(), "/topic/create?topic=after_restore", nil)
	waitFor(t, registerTimeout, func() error {
		for _, n := range c.Nodes {
			if err := opsHasTopics(n, "after_restore")(); err != nil {
				return err
			}
		}
		return nil
	})
}

// backupNSQDListed checks that node n lists one producer (the nsqd) and the
// channel for topic.
func backupNSQDListed(n *Node, topic, channel string) error {
	doc, err := lookupProducers(n.HTTPAddr(), topic)
	if err != nil {
		return fmt.Errorf("%s: %w", n, err)
	}
	if len(doc.Producers) != 1 || !slices.Contains(doc.Channels, channel) {
		return fmt.Errorf("%s: /lookup?topic=%s = %+v, want the nsqd and channel %s", n, topic, doc, channel)
	}
	return nil
}
