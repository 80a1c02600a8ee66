package httpapi

import (
	"net/http"
	"net/http/pprof"
	"runtime/debug"

	"github.com/julienschmidt/httprouter"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/raftlookupd/raftlookupd/wire"
)

// routes builds the handler: nsqlookupd's routes on httprouter configured as
// nsqlookupd configures it (defaults plus 405 handling), the admin API on the
// same router, and the middleware in front.
func (s *Server) routes(reg *prometheus.Registry) http.Handler {
	r := httprouter.New()
	// httprouter's defaults (trailing-slash and case-fixing redirects,
	// automatic OPTIONS) are part of nsqlookupd's observable behaviour.
	r.HandleMethodNotAllowed = true
	r.NotFound = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeV1Error(w, errNotFound)
	})
	r.MethodNotAllowed = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeV1Error(w, errMethodNotAllowed)
	})
	r.PanicHandler = s.recoverPanic

	// nsqlookupd API (docs/COMPATIBILITY.md#http-endpoints).
	r.GET("/ping", s.handlePing)
	r.GET("/info", v1(s.handleInfo))
	r.GET("/debug", s.measured("debug", s.handleDebug))
	r.GET("/lookup", s.measured("lookup", s.handleLookup))
	r.GET("/topics", s.measured("topics", s.handleTopics))
	r.GET("/channels", s.measured("channels", s.handleChannels))
	r.GET("/nodes", s.measured("nodes", s.handleNodes))
	r.POST("/topic/create", v1(s.handleCreateTopic))
	r.POST("/topic/delete", v1(s.handleDeleteTopic))
	r.POST("/channel/create", v1(s.handleCreateChannel))
	r.POST("/channel/delete", v1(s.handleDeleteChannel))
	r.POST("/topic/tombstone", v1(s.handleTombstone))

	// Profiling, behind the admin token (loopback only without one); the
	// command line is never served, since it holds -admin-token.
	r.Handler(http.MethodGet, "/debug/pprof", s.private(http.HandlerFunc(pprof.Index)))
	r.Handler(http.MethodGet, "/debug/pprof/symbol", s.private(http.HandlerFunc(pprof.Symbol)))
	r.Handler(http.MethodPost, "/debug/pprof/symbol", s.private(http.HandlerFunc(pprof.Symbol)))
	r.Handler(http.MethodGet, "/debug/pprof/profile", s.private(http.HandlerFunc(pprof.Profile)))
	for _, name := range []string{"heap", "goroutine", "block", "threadcreate"} {
		r.Handler(http.MethodGet, "/debug/pprof/"+name, s.private(pprof.Handler(name)))
	}

	// Admin API; the token check is in front of the router and again in
	// s.admin. Node-to-node calls are not here: they use the Raft port.
	r.GET(wire.PathStatus, s.admin(false, s.handleStatus))
	r.GET(wire.PathReady, s.admin(false, s.handleReady))
	r.POST(wire.PathJoin, s.admin(true, s.handleJoin))
	r.POST(wire.PathLeave, s.admin(true, s.handleLeave))
	r.POST(wire.PathTransfer, s.admin(true, s.handleTransfer))
	r.GET(wire.PathSnapshot, s.handleSnapshot)
	r.POST(wire.PathRestore, s.admin(true, s.handleRestore))

	// Outside /cluster/, so scrapers and probes need no admin token.
	r.GET("/metrics", s.metricsHandler(reg))
	r.GET("/healthz", s.handleHealthz)
	r.HEAD("/healthz", s.handleHealthz)
	r.GET("/readyz", s.handleReadyz)
	r.HEAD("/readyz", s.handleReadyz)

	return s.accessLog(s.requireAdminToken(r))
}

// recoverPanic answers like nsqlookupd (500 INTERNAL_ERROR) and logs the
// stack. http.ErrAbortHandler is net/http's way to abort a response
// silently, so it is passed on.
func (s *Server) recoverPanic(w http.ResponseWriter, r *http.Request, p any) {
	if p == http.ErrAbortHandler {
		panic(p)
	}
	s.logger.Error("panic in HTTP handler", "method", r.Method, "path", r.URL.Path,
		"panic", p, "stack", string(debug.Stack()))
	writeV1Error(w, errInternal)
}
