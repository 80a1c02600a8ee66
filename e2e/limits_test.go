package e2e

// The TCP limit flags reach the server (docs/COMPATIBILITY.md#diff-max-connections,
// #diff-max-registrations): tcpproto's own tests pin the limits, this pins
// the wiring from raftlookupd's command line.

import "testing"

// TestLimitFlags: with -max-connections 2 a third connection is turned away
// at once, and with -max-registrations 3 the REGISTER that would add a fourth
// key closes its connection; connections within the limits keep working.
func TestLimitFlags(t *testing.T) {
	node := StartNode(t, "-max-connections", "2", "-max-registrations", "3")
	s := newSession(t, node.String(), node)

	s.dial("a", true)
	mustTCP(t, s, "a", "PING\n", 1, false, "frame: OK", "")
	s.dial("b", true)
	mustTCP(t, s, "b", "PING\n", 1, false, "frame: OK", "")
	s.dial("over", false)
	mustTCP(t, s, "over", "", 1, true, "frame: E_INVALID too many connections (max 2)\n", "then: closed")
	mustTCP(t, s, "b", "PING\n", 1, false, "frame: OK", "")

	mustTCP(t, s, "a", identifyFrame(fixture("limits.example", 7700, 7701)), 1, false, "frame: {", "")
	mustTCP(t, s, "a", "REGISTER t1 c1\n", 1, false, "frame: OK", "") // t1, t1/c1
	mustTCP(t, s, "a", "REGISTER t2\n", 1, false, "frame: OK", "")    // t2: 3 keys
	mustTCP(t, s, "a", "REGISTER t1 c1\n", 1, false, "frame: OK", "") // nothing new
	mustTCP(t, s, "a", "REGISTER t3\n", 1, true,
		"frame: E_INVALID too many registrations on this connection (max 3)\n", "then: closed")
	mustTCP(t, s, "b", "PING\n", 1, false, "frame: OK", "")
}
