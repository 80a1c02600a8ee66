package e2e

// The differential script: nsqlookupd 1.3.0's own 16 tests in black-box form
// plus the observed behaviours of docs/COMPATIBILITY.md, run against
// the real nsqlookupd and a subject, answer by answer.
//
// Not in the script (deliberate differences, see deviations_test.go): IDENTIFY
// with a negative or huge body length, over-long lines, `*` in /topic/delete
// and /topic/tombstone, and two connections with identical IDENTIFY bodies
// being live at the same time (nsqlookupd lists them twice, raftlookupd
// once). Every connection of the script that is live alongside another has
// its own broadcast_address/tcp_port/http_port identity.

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// fixture is an IDENTIFY body like the one nsqlookupd's tests send.
func fixture(broadcast string, tcpPort, httpPort int) string {
	return fmt.Sprintf(`{"broadcast_address":%q,"hostname":%q,"http_port":%d,"tcp_port":%d,"version":"fake-version"}`,
		broadcast, broadcast, httpPort, tcpPort)
}

// fx is the identity of nsqlookupd's test fixture (ip.address, 5000, 5555).
var fx = fixture("ip.address", 5000, 5555)

// tombstoneLifetime of the main script: long enough to observe a tombstone
// through a few polled steps, short enough to wait out.
const tombstoneLifetime = 2 * time.Second

var mainScript = script{
	name: "main",
	opts: timeouts{Inactive: 300 * time.Second, Tombstone: tombstoneLifetime},
	steps: concat(
		basicLookupdSteps(),
		channelUnregisterSteps(),
		tombstoneSteps(),
		httpAPISteps(),
		protocolSteps(),
		identifySteps(),
		nameSteps(),
		unregisterSteps(),
		wildcardSteps(),
	),
}

// inactiveScript runs with a short inactive-producer-timeout, which would
// hide the producers of every other step, so it gets targets of its own.
var inactiveScript = script{
	name:  "inactive",
	opts:  timeouts{Inactive: 2 * time.Second, Tombstone: 45 * time.Second},
	steps: inactiveNodesSteps(),
}

var allScripts = []script{mainScript, inactiveScript}

func concat(parts ...[]step) []step {
	var out []step
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// nsqlookupd test 1 of 16, TestBasicLookupd.
func basicLookupdSteps() []step {
	return []step{
		section("TestBasicLookupd"),
		get("/topics"),
		get("/debug"),
		get("/nodes"),
		dial("a"),
		identify("a", fx),
		cmd("a", "REGISTER connectmsg channel1"),
		get("/nodes"),
		get("/debug"),
		get("/topics"),
		get("/lookup?topic=connectmsg"),
		hangup("a"),
		get("/lookup?topic=connectmsg"), // 1 channel, 0 producers
		get("/nodes"),
	}
}

// nsqlookupd test 2 of 16, TestChannelUnregister.
func channelUnregisterSteps() []step {
	return []step{
		section("TestChannelUnregister"),
		dial("b"),
		identify("b", fx),
		cmd("b", "REGISTER channel_unregister ch1"),
		get("/debug"),
		cmd("b", "UNREGISTER channel_unregister ch1"),
		get("/debug"), // channel key kept but empty: absent from /debug
		get("/channels?topic=channel_unregister"),
		get("/lookup?topic=channel_unregister"), // topic producer untouched
		hangup("b"),
	}
}

// nsqlookupd tests 3, 4 and 6 of 16 (TestTombstoneRecover, TestTombstoneUnregister,
// TestTombstonedNodes) and the per-registration tombstones of test 16
// (TestRegistrationDB), with two peers c (ip.address:5555) and d.
func tombstoneSteps() []step {
	return []step{
		section("TestTombstoneRecover/Unregister/TombstonedNodes"),
		dial("c"),
		identify("c", fx),
		dial("d"),
		identify("d", fixture("ip.address2", 5001, 5556)),
		cmd("c", "REGISTER tombstone_recover channel1"),
		cmd("c", "REGISTER tombstone_recover2 channel2"),
		cmd("c", "REGISTER tombstone_unregister channel1"),
		cmd("d", "REGISTER tombstone_recover channel1"),
		get("/lookup?topic=tombstone_recover"), // c and d
		get("/debug"),
		post("/topic/tombstone?topic=tombstone_unregister&node=ip.address:5555"),
		post("/topic/tombstone?topic=tombstone_recover&node=ip.address:5555"),
		get("/lookup?topic=tombstone_recover"),  // d only
		get("/lookup?topic=tombstone_recover2"), // c: tombstones are per topic
		get("/nodes"),                           // c listed, tombstones true
		get("/debug"),                           // raw tombstoned flags
		cmd("c", "REGISTER tombstone_recover channel1"),
		get("/lookup?topic=tombstone_recover"), // re-REGISTER keeps the tombstone
		cmd("c", "UNREGISTER tombstone_unregister"),
		get("/lookup?topic=tombstone_unregister"),
		get("/debug"), // c's records for tombstone_unregister are gone
		get("/lookup?topic=tombstone_recover").waitUntil(producerCount(2)),
		get("/lookup?topic=tombstone_unregister"), // removed, not hidden: still 0
		get("/nodes").waitUntil(noTombstones),
		post("/topic/tombstone?topic=tombstone_recover2&node=nope:1"), // unknown node: 200, no effect
		post("/topic/tombstone?topic=no_such_topic&node=ip.address:5555"),
		post("/topic/tombstone"),
		post("/topic/tombstone?topic=tombstone_recover"),
		get("/lookup?topic=tombstone_recover2"),
		post("/topic/tombstone?topic=tombstone_recover2&node=ip.address:5555"),
		get("/lookup?topic=tombstone_recover2"), // hidden
		cmd("c", "UNREGISTER tombstone_recover2"),
		cmd("c", "REGISTER tombstone_recover2"),
		get("/lookup?topic=tombstone_recover2"), // fresh record: visible at once
		hangup("c"),
		hangup("d"),
		get("/nodes"),
	}
}

// nsqlookupd tests 7-13 of 16 (http_test.go) and docs/COMPATIBILITY.md#http-common.
func httpAPISteps() []step {
	form := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	acceptV1 := http.Header{"Accept": {"application/vnd.nsq; version=1.0"}}
	return []step{
		section("TestPing/TestInfo"),
		get("/ping"),
		request("HEAD", "/ping", nil, nil),
		get("/info"),

		section("TestCreateTopic"),
		post("/topic/create"),
		post("/topic/create?topic=sampletopicA1700000000$"),
		post("/topic/create?topic=sampletopicA1700000000"),
		post("/topic/create?topic=sampletopicA1700000000"),
		get("/topics"),
		get("/lookup?topic=sampletopicA1700000000"), // 200 with no producers

		section("TestDeleteTopic"),
		post("/topic/delete"),
		post("/topic/delete?topic=sampletopicA1700000000"),
		post("/channel/create?topic=sampletopicB1700000000&channel=foobar"),
		post("/topic/delete?topic=sampletopicB1700000000"),
		get("/channels?topic=sampletopicB1700000000"),
		get("/topics"),
		post("/topic/delete?topic=never_existed"),

		section("TestGetChannels"),
		request("GET", "/channels", nil, acceptV1),
		post("/topic/create?topic=sampletopicC1700000000"),
		request("GET", "/channels?topic=sampletopicC1700000000", nil, acceptV1),
		post("/channel/create?topic=sampletopicC1700000000&channel=foobar"),
		request("GET", "/channels?topic=sampletopicC1700000000", nil, acceptV1),

		section("TestCreateChannel"),
		post("/channel/create"),
		post("/channel/create?topic=sampletopicD1700000000$"),
		post("/channel/create?topic=sampletopicD1700000000"),
		post("/channel/create?topic=sampletopicD1700000000&channel=foobar$"),
		post("/channel/create?topic=sampletopicD1700000000&channel=foobar"),
		get("/lookup?topic=sampletopicD1700000000"),

		section("TestDeleteChannel"),
		post("/channel/delete"),
		post("/channel/delete?topic=sampletopicE1700000000$"),
		post("/channel/delete?topic=sampletopicE1700000000"),
		post("/channel/delete?topic=sampletopicE1700000000&channel=foobar$"),
		post("/channel/delete?topic=sampletopicE1700000000&channel=foobar"), // 404
		post("/channel/create?topic=sampletopicE1700000000&channel=foobar"),
		post("/channel/delete?topic=sampletopicE1700000000&channel=foobar"),
		get("/channels?topic=sampletopicE1700000000"),
		get("/lookup?topic=sampletopicE1700000000"), // topic untouched

		section("HTTP quirks (docs/COMPATIBILITY.md#http-common)"),
		get("/lookup"),
		get("/lookup?topic="),
		get("/lookup?topic=no_such_topic"),
		get("/lookup?topic=%zz"),
		get("/channels?topic=a;b"),
		get("/channels?topic=no_such_topic"),
		post("/lookup?topic=sampletopicC1700000000"), // 405 + Allow
		get("/topic/create?topic=x"),
		request("OPTIONS", "/lookup", nil, nil),
		get("/no/such/path"),
		post("/create_topic?topic=legacy_alias"), // removed alias: 404
		request("POST", "/topic/create", []byte("topic=formbody"), form),
		post("/topic/create?topic=first_wins&topic=second_loses"),
		get("/lookup?topic=second_loses"),
		request("GET", "/topics", nil, acceptV1),
		get("/lookup/?topic=first_wins"),
		get("/LOOKUP?topic=first_wins"),
	}
}

// nsqlookupd tests 14/15 of 16 and docs/COMPATIBILITY.md#tcp-framing.
func protocolSteps() []step {
	return []step{
		section("magic, framing, commands"),
		dialRaw("m1"),
		sendFatal("m1", "  V2"),
		dialRaw("m2"),
		sendFatal("m2", "GET "),
		dial("p"),
		cmd("p", "PING"), // allowed before IDENTIFY
		send("p", "PING\nPING\n", 2),
		send("p", "  PING\r\n", 1),
		cmdFatal("p", "REGISTER before_identify"),
		dial("p2"),
		cmdFatal("p2", "UNREGISTER before_identify"),
		dial("p3"),
		cmdFatal("p3", "ping"),
		dial("p4"),
		cmdFatal("p4", ""),
		dial("p5"),
		cmdFatal("p5", "INVALID_COMMAND"), // TestIOLoopReturnsClientErrWhen*
	}
}

// IDENTIFY errors and accepted variants (docs/COMPATIBILITY.md#tcp-identify).
func identifySteps() []step {
	bad := []string{
		`{"hostname":"h","http_port":5555,"tcp_port":5000,"version":"v"}`,                      // no broadcast_address
		`{"broadcast_address":"b","hostname":"h","http_port":5555,"version":"v"}`,              // no tcp_port
		`{"broadcast_address":"b","hostname":"h","http_port":0,"tcp_port":5000,"version":"v"}`, // http_port 0
		`{"broadcast_address":"b","hostname":"h","http_port":5555,"tcp_port":5000}`,            // no version
		`null`,     // passes decoding
		`not json`, // decode error
		``,         // empty body
		`{"broadcast_address":"b","hostname":"h","http_port":5555,"tcp_port":"5000","version":"v"}`, // string port
		`{"broadcast_address":"b","hostname":"h","http_port":5555,"tcp_port":5000.5,"version":"v"}`, // fractional port
	}
	steps := []step{section("IDENTIFY")}
	for i, body := range bad {
		c := fmt.Sprintf("i%d", i)
		steps = append(steps, dial(c), identifyFatal(c, body))
	}
	steps = append(steps,
		dial("short-body"),
		sendHalfClose("short-body", "IDENTIFY\n\x00\x00\x00\x64{\"broadcast"),
		dial("short-size"),
		sendHalfClose("short-size", "IDENTIFY\n\x00\x00"),
		dial("twice"),
		identify("twice", fixture("twice", 5600, 5601)),
		// the second IDENTIFY is rejected before its body is read: send the line only
		sendFatal("twice", "IDENTIFY\n"),
		get("/nodes"), // every connection above is gone
		dial("upper"),
		identify("upper", `{"BROADCAST_ADDRESS":"upper.case","TCP_PORT":5100,"HTTP_PORT":5101,"VERSION":"1.3.0","unknown":[1,2]}`),
		dial("neg"),
		identify("neg", `{"broadcast_address":"neg.port","hostname":"","http_port":5201,"tcp_port":-1,"version":"1.3.0"}`),
		get("/nodes"), // no hostname / empty hostname, negative tcp_port
		hangup("upper"),
		hangup("neg"),
		get("/nodes"),
	)
	return steps
}

// Topic and channel names and parameter handling (docs/COMPATIBILITY.md#tcp-framing, #tcp-register, #names).
func nameSteps() []step {
	t64 := strings.Repeat("t", 64)
	t65 := strings.Repeat("t", 65)
	return []step{
		section("names and params"),
		dial("n"),
		identify("n", fixture("names", 5300, 5301)),
		cmd("n", "REGISTER "+t64),
		cmd("n", "REGISTER extra_params ch extra"),
		cmd("n", "UNREGISTER never_registered"),
		cmd("n", "UNREGISTER never_registered ch"),
		cmd("n", "REGISTER . .."),
		cmd("n", "REGISTER Dotted.Name-_x ch-1_.X"),
		cmd("n", "REGISTER a#ephemeral b#ephemeral"),
		get("/topics"),
		get("/lookup?topic=extra_params"),
		get("/lookup?topic=."),
		get("/channels?topic=Dotted.Name-_x"),
		cmdFatal("n", "REGISTER "+t65),
		get("/nodes"), // n is gone
		get("/lookup?topic=" + t64),
		dial("n1"), identify("n1", fx), cmdFatal("n1", "REGISTER  double_space"),
		dial("n2"), identify("n2", fx), cmdFatal("n2", "REGISTER"),
		dial("n3"), identify("n3", fx), cmdFatal("n3", "REGISTER "),
		dial("n4"), identify("n4", fx), cmdFatal("n4", "REGISTER goodtopic bad$chan"),
		dial("n5"), identify("n5", fx), cmdFatal("n5", "UNREGISTER #ephemeral"),
		dial("n6"), identify("n6", fx), cmdFatal("n6", "UNREGISTER goodtopic #ephemeral"),
		dial("n7"), identify("n7", fx), cmdFatal("n7", "UNREGISTER"),
		dial("n8"), identify("n8", fx), cmdFatal("n8", "REGISTER bad\ttab"),
		get("/nodes"),
		get("/topics"),
	}
}

// UNREGISTER semantics: topic-only UNREGISTER strips channels; ephemeral
// keys go on UNREGISTER but stay on disconnect (docs/COMPATIBILITY.md#tcp-unregister, #tcp-close).
func unregisterSteps() []step {
	return []step{
		section("UNREGISTER and ephemeral"),
		dial("u"),
		identify("u", fixture("unreg", 5400, 5401)),
		cmd("u", "REGISTER strip c1"),
		cmd("u", "REGISTER strip c2"),
		get("/lookup?topic=strip"),
		cmd("u", "UNREGISTER strip"),
		get("/debug"),
		get("/channels?topic=strip"),
		get("/lookup?topic=strip"),
		cmd("u", "REGISTER e1#ephemeral ch#ephemeral"),
		get("/lookup?topic=e1%23ephemeral"),
		cmd("u", "UNREGISTER e1#ephemeral ch#ephemeral"),
		get("/channels?topic=e1%23ephemeral"), // ephemeral channel key deleted
		cmd("u", "UNREGISTER e1#ephemeral"),
		get("/lookup?topic=e1%23ephemeral"), // ephemeral topic key deleted: 404
		cmd("u", "REGISTER e2#ephemeral c#ephemeral"),
		cmd("u", "UNREGISTER e2#ephemeral"),
		get("/lookup?topic=e2%23ephemeral"),
		get("/channels?topic=e2%23ephemeral"), // its channel key stays
		cmd("u", "REGISTER e3#ephemeral c#ephemeral"),
		cmd("u", "REGISTER e3#ephemeral plain"),
		hangup("u"),
		get("/lookup?topic=e3%23ephemeral"), // disconnect deletes no key
		get("/topics"),
		get("/nodes"),
		get("/debug"),
	}
}

// The wildcard reads (docs/COMPATIBILITY.md#wildcard) (`*` as topic in /lookup and /channels), last
// so that a difference here hides nothing else.
func wildcardSteps() []step {
	return []step{
		section("wildcard reads"),
		dial("w"),
		identify("w", fixture("wild", 5500, 5501)),
		cmd("w", "REGISTER wild_topic wild_ch"),
		get("/lookup?topic=*"),
		get("/channels?topic=*"),
		hangup("w"),
		get("/lookup?topic=*"),
	}
}

// nsqlookupd test 5 of 16, TestInactiveNodes (and "an inactive peer reappears when it
// PINGs again", docs/COMPATIBILITY.md#active-filter).
func inactiveNodesSteps() []step {
	return []step{
		section("TestInactiveNodes"),
		dial("a"),
		identify("a", fx),
		cmd("a", "REGISTER inactive_nodes channel1"),
		get("/nodes"),
		get("/lookup?topic=inactive_nodes"),
		get("/nodes").waitUntil(producerCount(0)),
		get("/lookup?topic=inactive_nodes"),
		get("/topics"),
		get("/debug"), // unfiltered: the records are still there
		cmd("a", "PING"),
		// raftlookupd replicates PINGs with its periodic lease renewal
		get("/nodes").waitUntil(producerCount(1)).within(10 * time.Second),
		hangup("a"),
		get("/nodes"),
	}
}

// TestDiffReferenceVsReference validates the script and the normalizer:
// two independent nsqlookupds must give identical normalized answers.
func TestDiffReferenceVsReference(t *testing.T) {
	t.Parallel()
	for _, sc := range allScripts {
		t.Run(sc.name, func(t *testing.T) {
			ref := newReferenceSession(t, "nsqlookupd A", startReference(t, sc.opts))
			sub := newSession(t, "nsqlookupd B", startReference(t, sc.opts))
			runScript(t, sc.steps, ref, sub)
		})
	}
}

// TestDiffSingleNode runs the script against a single-node raftlookupd.
func TestDiffSingleNode(t *testing.T) {
	t.Parallel()
	for _, sc := range allScripts {
		t.Run(sc.name, func(t *testing.T) {
			node := StartNode(t, sc.opts.flags()...)
			ref := newReferenceSession(t, "nsqlookupd 1.3.0", startReference(t, sc.opts))
			sub := newSession(t, node.String(), node)
			runScript(t, sc.steps, ref, sub)
		})
	}
}

// TestDiffFollower runs the script against a follower of a 3-node cluster:
// its TCP and HTTP mutations are forwarded to the leader, its reads are local.
func TestDiffFollower(t *testing.T) {
	t.Parallel()
	for _, sc := range allScripts {
		t.Run(sc.name, func(t *testing.T) {
			c := StartCluster(t, 3, sc.opts.flags()...)
			follower := c.Followers(clusterReadyTimeout)[0]
			ref := newReferenceSession(t, "nsqlookupd 1.3.0", startReference(t, sc.opts))
			sub := newSession(t, "follower "+follower.String(), follower)
			runScript(t, sc.steps, ref, sub)
		})
	}
}
