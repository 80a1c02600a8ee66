package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
)

// leaderHTTP returns the HTTP address of the current leader, from the
// replicated member records.
func (n *Node) leaderHTTP() (string, error) {
	_, id := n.raft.LeaderWithID()
	if id == "" {
		return "", ErrNoLeader
	}
	m, ok := n.Registry().Member(string(id))
	if !ok || m.HTTPAddress == "" {
		return "", fmt.Errorf("%w: leader %s has not published its HTTP address yet", ErrNoLeader, id)
	}
	return m.HTTPAddress, nil
}

// forwardApply sends a batch to the leader's /cluster/apply.
func (n *Node) forwardApply(ctx context.Context, data []byte) (ApplyResult, error) {
	addr, err := n.leaderHTTP()
	if err != nil {
		return ApplyResult{}, err
	}
	ctx, cancel := n.untilLeaderChanges(ctx)
	defer cancel()
	var res ApplyResult
	err = n.call(ctx, http.MethodPost, addr, PathApply, "application/octet-stream", data, &res)
	return res, err
}

// untilLeaderChanges returns a context that also ends when the leader
// changes.
func (n *Node) untilLeaderChanges(ctx context.Context) (context.Context, context.CancelFunc) {
	n.leaderChange.Lock()
	changed := n.leaderChanged
	n.leaderChange.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	go func() {
		select {
		case <-changed:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// forwardJSON sends an admin request to the leader.
func (n *Node) forwardJSON(ctx context.Context, path string, body, out any) error {
	addr, err := n.leaderHTTP()
	if err != nil {
		return err
	}
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	return n.call(ctx, http.MethodPost, addr, path, "application/json", b, out)
}

// remoteError is a non-2xx answer from another node. It unwraps to the
// sentinel its status stands for, so errors.Is works across the hop, while
// its text stays the remote node's own (which already names the reason).
type remoteError struct {
	Status   int
	Message  string
	sentinel error
}

func (e *remoteError) Error() string {
	if e.sentinel != nil && e.Message != "" {
		return e.Message
	}
	return fmt.Sprintf("remote node answered %d: %s", e.Status, e.Message)
}

func (e *remoteError) Unwrap() error { return e.sentinel }

// call makes one node-to-node request with the admin token and decodes a
// JSON answer into out (if not nil). Status 409 maps to ErrNotLeader, 503 to
// ErrNoLeader, 400 to ErrBadRequest and 404 to ErrUnknownMember.
func (n *Node) call(ctx context.Context, method, addr, path, ctype string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, "http://"+addr+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if n.cfg.AdminToken != "" {
		req.Header.Set("Authorization", "Bearer "+n.cfg.AdminToken)
	}
	resp, err := n.client.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNoLeader, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("%w: read answer: %v", ErrNoLeader, err)
	}
	if resp.StatusCode/100 != 2 {
		var msg struct {
			Message string `json:"message"`
		}
		_ = json.Unmarshal(raw, &msg)
		re := &remoteError{Status: resp.StatusCode, Message: msg.Message}
		switch resp.StatusCode {
		case http.StatusConflict:
			re.sentinel = ErrNotLeader
		case http.StatusServiceUnavailable:
			re.sentinel = ErrNoLeader
		case http.StatusBadRequest:
			re.sentinel = ErrBadRequest
		case http.StatusNotFound:
			re.sentinel = ErrUnknownMember
		}
		return re
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("decode answer from %s%s: %w", addr, path, err)
		}
	}
	return nil
}

// callJoin asks the member at addr to add this node.
func (n *Node) callJoin(ctx context.Context, addr string, req JoinRequest) error {
	b, err := json.Marshal(req)
	if err != nil {
		return err
	}
	return n.call(ctx, http.MethodPost, addr, PathJoin, "application/json", b, nil)
}
