package httpapi

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/raftlookupd/raftlookupd/fsm"
	"github.com/raftlookupd/raftlookupd/wire"
)

// wildcardTopic is the lookup wildcard (docs/COMPATIBILITY.md#wildcard). nsqlookupd lets
// it through /topic/delete (wiping every topic) and /topic/tombstone (one
// random topic per peer); raftlookupd refuses it there (docs/COMPATIBILITY.md#diff-wildcard).
const wildcardTopic = "*"

func (s *Server) handleCreateTopic(_ http.ResponseWriter, r *http.Request) (any, *apiError) {
	_, topic, apiErr := topicParam(r)
	if apiErr != nil {
		return nil, apiErr
	}
	if !fsm.ValidName(topic) {
		return nil, errInvalidTopic
	}
	return nil, s.propose(r, fsm.Command{Op: fsm.OpCreateTopic, Topic: topic})
}

// handleDeleteTopic, like nsqlookupd, does not refuse an invalid name and
// never answers 404: deleting what does not exist succeeds. A name that can
// never exist (not fsm.ValidName) is answered without touching the log.
func (s *Server) handleDeleteTopic(_ http.ResponseWriter, r *http.Request) (any, *apiError) {
	_, topic, apiErr := topicParam(r)
	if apiErr != nil {
		return nil, apiErr
	}
	if topic == wildcardTopic {
		return nil, errInvalidTopic
	}
	if !fsm.ValidName(topic) {
		return nil, nil
	}
	return nil, s.propose(r, fsm.Command{Op: fsm.OpDeleteTopic, Topic: topic})
}

func (s *Server) handleCreateChannel(_ http.ResponseWriter, r *http.Request) (any, *apiError) {
	topic, channel, apiErr := topicChannelArgs(r)
	if apiErr != nil {
		return nil, apiErr
	}
	return nil, s.propose(r, fsm.Command{Op: fsm.OpCreateChannel, Topic: topic, Channel: channel})
}

func (s *Server) handleDeleteChannel(_ http.ResponseWriter, r *http.Request) (any, *apiError) {
	topic, channel, apiErr := topicChannelArgs(r)
	if apiErr != nil {
		return nil, apiErr
	}
	return nil, s.propose(r, fsm.Command{Op: fsm.OpDeleteChannel, Topic: topic, Channel: channel})
}

// handleTombstone, like nsqlookupd, refuses neither topic nor node and never
// answers 404; an unknown topic or node is a no-op. A topic that can never
// exist, or a node longer than any producer's address, is answered without
// touching the log.
func (s *Server) handleTombstone(_ http.ResponseWriter, r *http.Request) (any, *apiError) {
	p, topic, apiErr := topicParam(r)
	if apiErr != nil {
		return nil, apiErr
	}
	if topic == wildcardTopic {
		return nil, errInvalidTopic
	}
	node, ok := p.get("node")
	if !ok {
		return nil, errMissingNode
	}
	if !fsm.ValidName(topic) || len(node) > fsm.MaxTombstoneNodeLen {
		return nil, nil
	}
	return nil, s.propose(r, fsm.Command{
		Op:    fsm.OpTombstone,
		Topic: topic,
		Node:  node,
		// Stamped once here: Apply must not read the clock.
		Time: time.Now().UnixNano(),
	})
}

// topicChannelArgs checks in nsqlookupd's order: missing topic, invalid
// topic, missing channel, invalid channel.
func topicChannelArgs(r *http.Request) (topic, channel string, apiErr *apiError) {
	p, topic, apiErr := topicParam(r)
	if apiErr != nil {
		return "", "", apiErr
	}
	if !fsm.ValidName(topic) {
		return "", "", errInvalidTopic
	}
	channel, ok := p.get("channel")
	if !ok {
		return "", "", errMissingChannel
	}
	if !fsm.ValidName(channel) {
		return "", "", errInvalidChannel
	}
	return topic, channel, nil
}

// propose commits cmd and waits for it to be applied locally, so the client's
// next read on this node sees it. A 503 is ambiguous, as with any consensus
// write that times out: the command may still commit later. Retrying is safe:
// creates, deletes and tombstones are idempotent (a retried /channel/delete
// whose first attempt did commit answers 404).
func (s *Server) propose(r *http.Request, cmd fsm.Command) *apiError {
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.WriteTimeout)
	defer cancel()
	err := s.cluster.Propose(ctx, cmd)
	switch {
	case err == nil:
		args := []any{"op", cmd.Op, "topic", cmd.Topic}
		if cmd.Channel != "" {
			args = append(args, "channel", cmd.Channel)
		}
		if cmd.Op == fsm.OpTombstone {
			args = append(args, "node", cmd.Node)
		}
		s.logger.Info("registry changed", append(args, "remote", r.RemoteAddr)...)
		return nil
	case errors.Is(err, fsm.ErrChannelNotFound):
		return errChannelNotFound
	case errors.Is(err, wire.ErrLimit):
		s.logger.Warn("registry change refused: cluster cap reached", "op", cmd.Op, "topic", cmd.Topic, "error", err)
		return errorf(http.StatusServiceUnavailable, err.Error())
	case errors.Is(err, wire.ErrShutdown):
		return errShuttingDown
	case errors.Is(err, wire.ErrNoLeader), errors.Is(err, wire.ErrNotLeader), errors.Is(err, fsm.ErrStaleIncarnation),
		errors.Is(err, wire.ErrNotServing),
		errors.Is(err, wire.ErrLeaderUnreachable), errors.Is(err, wire.ErrQueueFull),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		s.logger.Warn("registry change not committed", "op", cmd.Op, "topic", cmd.Topic, "error", err)
		return errNoLeader
	}
	s.logger.Error("registry change failed", "op", cmd.Op, "topic", cmd.Topic, "error", err)
	return errInternal
}
