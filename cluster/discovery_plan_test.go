package cluster

import (
	"fmt"
	"strings"
	"testing"
)

func TestPlanDiscovery(t *testing.T) {
	self := hello{ID: "n2", RaftAddress: "10.0.0.2:4162", Expect: 3}
	fresh := func(id string, found ...string) hello {
		return hello{ID: id, RaftAddress: "10.0.0." + id[1:] + ":4162", Expect: 3, Found: found}
	}
	all := []string{"n1", "n2", "n3"}
	for _, tc := range []struct {
		name  string
		peers map[string]hello
		// want: "join ADDRS", "bootstrap SERVERS", or "wait"; problem:
		// a part of the problem text, "" for none.
		want, problem string
	}{
		{"alone", nil, "wait", ""},
		{"two of three", map[string]hello{"10.0.0.1:4162": fresh("n1", "n1", "n2")}, "wait", ""},
		{"three, one has not found all yet", map[string]hello{
			"10.0.0.1:4162": fresh("n1", all...), "10.0.0.3:4162": fresh("n3", "n2", "n3")}, "wait", ""},
		{"three, all found all", map[string]hello{
			"10.0.0.3:4162": fresh("n3", all...), "10.0.0.1:4162": fresh("n1", all...)},
			"bootstrap n1=10.0.0.1:4162 n2=10.0.0.2:4162 n3=10.0.0.3:4162", ""},
		{"one node behind two addresses", map[string]hello{
			"10.0.0.3:4162": fresh("n3", all...), "n3.example:4162": fresh("n3", all...), "10.0.0.1:4162": fresh("n1", all...)},
			"bootstrap n1=10.0.0.1:4162 n2=10.0.0.2:4162 n3=10.0.0.3:4162", ""},
		{"four fresh nodes", map[string]hello{
			"10.0.0.1:4162": fresh("n1"), "10.0.0.3:4162": fresh("n3"), "10.0.0.4:4162": fresh("n4")}, "wait", "more than expected"},
		{"another expectation", map[string]hello{
			"10.0.0.1:4162": {ID: "n1", RaftAddress: "10.0.0.1:4162", Expect: 2, Found: all},
			"10.0.0.3:4162": fresh("n3", all...)}, "wait", "expects 2 nodes, this one 3"},
		{"one id, two nodes", map[string]hello{
			"10.0.0.1:4162": fresh("n1", all...), "10.0.0.9:4162": {ID: "n1", RaftAddress: "10.0.0.9:4162", Expect: 3, Found: all},
			"10.0.0.3:4162": fresh("n3", all...)}, "wait", `node id "n1" is used at`},
		{"this node's id elsewhere", map[string]hello{
			"10.0.0.1:4162": fresh("n1", all...), "10.0.0.9:4162": {ID: "n2", RaftAddress: "10.0.0.9:4162", Expect: 3, Found: all},
			"10.0.0.3:4162": fresh("n3", all...)}, "wait", `node id "n2" is used at`},
		{"a member", map[string]hello{
			"10.0.0.1:4162": fresh("n1", all...), "10.0.0.5:4162": {ID: "n5", HasState: true}, "10.0.0.4:4162": {ID: "n4", HasState: true}},
			"join 10.0.0.4:4162 10.0.0.5:4162", ""},
		{"a member expecting nothing", map[string]hello{"10.0.0.5:4162": {ID: "n5", HasState: true, Expect: 0}},
			"join 10.0.0.5:4162", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := planDiscovery(self, tc.peers)
			got := "wait"
			switch {
			case len(p.join) > 0 && len(p.bootstrap) > 0:
				got = "join and bootstrap"
			case len(p.join) > 0:
				got = "join " + strings.Join(p.join, " ")
			case len(p.bootstrap) > 0:
				var s []string
				for _, srv := range p.bootstrap {
					s = append(s, fmt.Sprintf("%s=%s", srv.ID, srv.Address))
					if srv.Suffrage.String() != "Voter" {
						t.Errorf("%s is a %s", srv.ID, srv.Suffrage)
					}
				}
				got = "bootstrap " + strings.Join(s, " ")
			}
			if got != tc.want {
				t.Errorf("plan %s, want %s", got, tc.want)
			}
			if (tc.problem == "") != (p.problem == "") || !strings.Contains(p.problem, tc.problem) {
				t.Errorf("problem %q, want one containing %q", p.problem, tc.problem)
			}
		})
	}
}
