package fsm

import "testing"

// A leader that observed a lease lapse proposes OpExpireLease with the
// renewal index it saw. A renewal committed in between (the lease was not
// lapsed; the leader's view was stale, e.g. it had been paused) wins.
func TestExpireLeaseOnlyIfNotRenewedSince(t *testing.T) {
	h := newHarness(t)
	h.apply(renew("n1", 1, 100), open(s1, peerA, 100), register(s1, "t", ""))
	seen, _ := h.reg().Owner("n1")

	h.apply(renew("n1", 1, 200)) // the node is alive after all
	h.apply(Command{Op: OpExpireLease, Session: SessionID{Owner: "n1", Incarnation: 1}, RenewIndex: seen.RenewIndex})
	if o, _ := h.reg().Owner("n1"); o.Expired || o.Sessions != 1 {
		t.Fatalf("stale expiry applied: %+v", o)
	}

	now, _ := h.reg().Owner("n1")
	h.apply(Command{Op: OpExpireLease, Session: SessionID{Owner: "n1", Incarnation: 1}, RenewIndex: now.RenewIndex})
	if o, _ := h.reg().Owner("n1"); !o.Expired || o.Sessions != 0 {
		t.Fatalf("expiry of a lapsed lease not applied: %+v", o)
	}
	if _, ps, _ := h.reg().Lookup("t", Filter{InactiveTimeout: 1 << 62}); len(ps) != 0 {
		t.Fatalf("producers of an expired owner still listed: %v", ps)
	}
}
