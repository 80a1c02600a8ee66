package deploy

import (
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestComposeDNS runs deploy/docker-compose.dns.yml: three services with one
// command (-join raftlookupd:4162 -bootstrap-expect 3) and one shared network
// alias form one cluster with one leader, with no static peer list; stopped
// and started again, they keep that cluster.
func TestComposeDNS(t *testing.T) {
	p := newDNSProject(t)

	p.run(t, nil, "up", "-d")
	p.waitHealthy(t, 2*time.Minute, nil, nodes...)

	// The services really are identical but for their names.
	var cmds []string
	for _, n := range nodes {
		id := p.container(t, nil, n)
		out, err := command(t, time.Minute, "", nil, "docker", "inspect", "-f", "{{json .Config.Cmd}}", id)
		if err != nil {
			t.Fatalf("inspect %s: %v %s", n, err, out)
		}
		cmds = append(cmds, strings.TrimSpace(out))
		if _, aliases := network(t, id); !slices.Contains(aliases, "raftlookupd") {
			t.Errorf("%s has aliases %v, want raftlookupd among them", n, aliases)
		}
	}
	if cmds[0] != cmds[1] || cmds[1] != cmds[2] || !strings.Contains(cmds[0], "-bootstrap-expect") || strings.Contains(cmds[0], "-peers") {
		t.Fatalf("commands %q: want one command with -bootstrap-expect and no -peers", cmds)
	}

	checkOneCluster(t, p)
	p.mustDo(t, http.MethodPost, p.url("node2", "/topic/create?topic=dns_topic"), "")
	waitFor(t, 10*time.Second, "dns_topic on every node", func() error {
		for _, n := range nodes {
			if err := hasTopic(p, n, "dns_topic"); err != nil {
				return err
			}
		}
		return nil
	})

	// Restarted with their volumes, the nodes have state: no discovery, the
	// same cluster, the same data.
	p.run(t, nil, "stop", "-t", "15")
	p.run(t, nil, "up", "-d")
	p.waitHealthy(t, 2*time.Minute, nil, nodes...)
	checkOneCluster(t, p)
	for _, n := range nodes {
		if err := hasTopic(p, n, "dns_topic"); err != nil {
			t.Error(err)
		}
	}
}

// checkOneCluster waits until the three nodes name one leader and each
// reports the same three voters.
func checkOneCluster(t *testing.T, p *project) {
	t.Helper()
	waitFor(t, 30*time.Second, "one leader and three voters on every node", func() error {
		leader, err := p.agreedLeader(nodes...)
		if err != nil {
			return err
		}
		leaders := 0
		for _, n := range nodes {
			st, err := p.status(n)
			if err != nil {
				return err
			}
			var voters []string
			for _, m := range st.Members {
				if m.Suffrage == "Voter" {
					voters = append(voters, m.ID)
				}
			}
			slices.Sort(voters)
			if !slices.Equal(voters, nodes) {
				return fmt.Errorf("%s: voters %v, want %v", n, voters, nodes)
			}
			if st.State == "Leader" {
				leaders++
			}
		}
		if leaders != 1 {
			return fmt.Errorf("%d nodes say they lead (agreed leader %s)", leaders, leader)
		}
		return nil
	})
}

// newDNSProject is a project on docker-compose.dns.yml. It builds the node
// image alone, under a name of its own, so that another build of
// raftlookupd:latest on the same engine cannot replace it mid-test.
func newDNSProject(t *testing.T) *project {
	t.Helper()
	for _, tool := range []string{"docker", "make", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: the compose test needs Docker, make and Go: %v", tool, err)
		}
	}
	if out, err := command(t, time.Minute, "", nil, "docker", "version", "--format", "{{.Server.Version}}"); err != nil {
		t.Fatalf("Docker engine unreachable: %v\n%s", err, out)
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	p := &project{
		name:  "rltest" + randomHex(t, 4),
		file:  filepath.Join(root, "deploy", "docker-compose.dns.yml"),
		token: randomHex(t, 16),
		ports: make(map[string]int),
		http:  &http.Client{Timeout: 3 * time.Second},
	}
	p.compose = detectCompose(t)
	image := p.name + "-node"
	t.Logf("project %s, image %s, compose %q", p.name, image, strings.Join(p.compose, " "))
	if out, err := command(t, 10*time.Minute, root, nil, "make", "--no-print-directory",
		"IMAGE="+image, "IMAGE_CTX="+t.TempDir(), "image"); err != nil {
		t.Fatalf("make image: %v\n%s", err, out)
	}
	// Cleanups run last first: the project goes down, then its image.
	t.Cleanup(func() {
		ids, _ := command(t, time.Minute, "", nil, "docker", "images", "-q", image)
		for _, id := range slices.Compact(strings.Fields(ids)) {
			if out, err := command(t, time.Minute, "", nil, "docker", "rmi", "-f", id); err != nil {
				t.Errorf("remove image %s: %v %s", id, err, out)
			}
		}
	})
	for i, port := range freePorts(t, len(portVars)) {
		p.ports[portVars[i]] = port
	}
	p.env = append(composeEnv(p), "RAFTLOOKUPD_IMAGE="+image+":latest")
	t.Cleanup(func() { p.cleanup(t) })
	return p
}
