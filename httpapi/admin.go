package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/julienschmidt/httprouter"
	"github.com/raftlookupd/raftlookupd/wire"
)

const (
	// maxAdminBody bounds the small JSON documents of join, leave and
	// transfer-leadership.
	maxAdminBody = 64 << 10
)

// adminHandler is a /cluster/* endpoint: it returns the JSON document to send
// with 200, or an error that adminError maps to a status.
type adminHandler func(ctx context.Context, w http.ResponseWriter, r *http.Request) (any, error)

type emptyObject struct{}

// withStatus lets an adminHandler answer a document with a status other
// than 200.
type withStatus struct {
	status int
	doc    any
}

// admin adapts an adminHandler to the router. The token is checked again
// here, not only in front of the router, so an admin handler can never be
// reached without it whatever path rewriting happens before. A change of
// membership or leadership (change) without a configured token is accepted
// from loopback only: with the default flags, no remote client can reshape
// the cluster.
func (s *Server) admin(change bool, h adminHandler) httprouter.Handle {
	return func(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
		if !s.authorized(r) {
			writeUnauthorized(w)
			return
		}
		if change && s.cfg.AdminToken == "" && !fromLoopback(r) {
			writeJSON(w, http.StatusForbidden, messageBody{"membership and leadership changes need -admin-token, or a request from loopback"})
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.WriteTimeout)
		defer cancel()
		v, err := h(ctx, w, r)
		s.setReadHeaders(w)
		if err != nil {
			e := s.adminError(r, err)
			writeJSON(w, e.status, messageBody{e.message})
			return
		}
		if ws, ok := v.(withStatus); ok {
			writeJSON(w, ws.status, ws.doc)
			return
		}
		writeJSON(w, http.StatusOK, v)
	}
}

// adminError maps cluster errors to statuses through the one table in
// package wire; the message is the error's own text, for operators.
func (s *Server) adminError(r *http.Request, err error) *apiError {
	var apiErr *apiError
	if errors.As(err, &apiErr) {
		return apiErr
	}
	st := wire.StatusOf(err)
	if st == http.StatusInternalServerError {
		s.logger.Error("admin request failed", "path", r.URL.Path, "error", err)
	}
	return errorf(st, err.Error())
}

func (s *Server) handleStatus(ctx context.Context, _ http.ResponseWriter, r *http.Request) (any, error) {
	// local=true: this node alone (what nodes ask each other for lag).
	st, err := s.cluster.Status(ctx, r.URL.Query().Get("local") == "true")
	if err != nil {
		return nil, err
	}
	st.Members = nonNil(st.Members)
	return st, nil
}

// handleReady is for load balancers and orchestrators: 503 takes a node out
// of rotation until it has a leader and has caught up.
func (s *Server) handleReady(context.Context, http.ResponseWriter, *http.Request) (any, error) {
	if !s.cluster.Ready() {
		return withStatus{http.StatusServiceUnavailable, wire.Ready{Ready: false, Message: "NOT_READY"}}, nil
	}
	return wire.Ready{Ready: true}, nil
}

func (s *Server) handleJoin(ctx context.Context, w http.ResponseWriter, r *http.Request) (any, error) {
	var req wire.JoinRequest
	if err := decodeBody(w, r, &req); err != nil {
		return nil, err
	}
	if req.ID == "" {
		return nil, errorf(http.StatusBadRequest, "id is required")
	}
	if req.RaftAddress == "" {
		return nil, errorf(http.StatusBadRequest, "raft_address is required")
	}
	if err := s.cluster.Join(ctx, req); err != nil {
		return nil, err
	}
	s.logger.Info("join accepted", "id", req.ID, "raft_address", req.RaftAddress,
		"voter", req.IsVoter(), "remote", r.RemoteAddr)
	return emptyObject{}, nil
}

func (s *Server) handleLeave(ctx context.Context, w http.ResponseWriter, r *http.Request) (any, error) {
	var req wire.LeaveRequest
	if err := decodeBody(w, r, &req); err != nil {
		return nil, err
	}
	if req.ID == "" {
		return nil, errorf(http.StatusBadRequest, "id is required")
	}
	if err := s.cluster.Leave(ctx, req.ID); err != nil {
		return nil, err
	}
	s.logger.Info("leave accepted", "id", req.ID, "remote", r.RemoteAddr)
	return emptyObject{}, nil
}

func (s *Server) handleTransfer(ctx context.Context, w http.ResponseWriter, r *http.Request) (any, error) {
	var req wire.TransferRequest
	if err := decodeBody(w, r, &req); err != nil {
		return nil, err
	}
	if err := s.cluster.TransferLeadership(ctx, req.ID); err != nil {
		return nil, err
	}
	s.logger.Info("leadership transfer requested", "to", req.ID, "remote", r.RemoteAddr)
	return emptyObject{}, nil
}

// decodeBody reads one JSON object into v. An empty body counts as {} so
// that optional-only requests (transfer-leadership) need none. Unknown fields
// are refused: a misspelt "voter" must not silently add a voter.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) error {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxAdminBody))
	if err != nil {
		return bodyError(err)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errorf(http.StatusBadRequest, fmt.Sprintf("invalid JSON body: %v", err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return errorf(http.StatusBadRequest, "invalid JSON body: data after the object")
	}
	return nil
}

func bodyError(err error) *apiError {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return errorf(http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", tooBig.Limit))
	}
	return errorf(http.StatusBadRequest, fmt.Sprintf("reading request body: %v", err))
}
