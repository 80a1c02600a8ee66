package httpapi

import (
	"io"
	"net/http"

	"github.com/julienschmidt/httprouter"
)

// Probes for orchestrators and load balancers. They sit outside /cluster/ so
// that no admin token is ever needed, say nothing about the cluster beyond
// one word, and cost no Raft round trip.

// handleHealthz is liveness: the process is up and serving HTTP. It never
// depends on the cluster, so a node cut off from its peers is not restarted
// for it.
func (s *Server) handleHealthz(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	writeProbe(w, r, http.StatusOK, "OK")
}

// handleReadyz is readiness: 200 once the node knows a leader and has
// applied everything committed (what bounded reads need), else 503.
func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	if !s.cluster.Ready() {
		writeProbe(w, r, http.StatusServiceUnavailable, "NOT_READY")
		return
	}
	writeProbe(w, r, http.StatusOK, "OK")
}

func writeProbe(w http.ResponseWriter, r *http.Request, status int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = io.WriteString(w, body+"\n")
	}
}
