package httpapi

import (
	"net/http"
	"net/http/pprof"
	"runtime/debug"

	"github.com/julienschmidt/httprouter"
	"github.com/raftlookupd/raftlookupd/cluster"
)

// routes builds the handler: nsqlookupd's routes on httprouter configured as
// nsqlookupd configures it (defaults plus 405 handling), the admin API on the
// same router, and the middleware in front.
func (s *Server) routes() http.Handler {
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
	r.GET("/debug", s.measured("debug", v1(s.handleDebug)))
	r.GET("/lookup", s.measured("lookup", v1(s.handleLookup)))
	r.GET("/topics", s.measured("topics", v1(s.handleTopics)))
	r.GET("/channels", s.measured("channels", v1(s.handleChannels)))
	r.GET("/nodes", s.measured("nodes", v1(s.handleNodes)))
	r.POST("/topic/create", v1(s.handleCreateTopic))
	r.POST("/topic/delete", v1(s.handleDeleteTopic))
	r.POST("/channel/create", v1(s.handleCreateChannel))
	r.POST("/channel/delete", v1(s.handleDeleteChannel))
	r.POST("/topic/tombstone", v1(s.handleTombstone))

	// Profiling, exactly the set nsqlookupd exposes (unauthenticated, as
	// there).
	r.HandlerFunc(http.MethodGet, "/debug/pprof", pprof.Index)
	r.HandlerFunc(http.MethodGet, "/debug/pprof/cmdline", pprof.Cmdline)
	r.HandlerFunc(http.MethodGet, "/debug/pprof/symbol", pprof.Symbol)
	r.HandlerFunc(http.MethodPost, "/debug/pprof/symbol", pprof.Symbol)
	r.HandlerFunc(http.MethodGet, "/debug/pprof/profile", pprof.Profile)
	r.Handler(http.MethodGet, "/debug/pprof/heap", pprof.Handler("heap"))
	r.Handler(http.MethodGet, "/debug/pprof/goroutine", pprof.Handler("goroutine"))
	r.Handler(http.MethodGet, "/debug/pprof/block", pprof.Handler("block"))
	r.Handler(http.MethodGet, "/debug/pprof/threadcreate", pprof.Handler("threadcreate"))

	// Admin and node-to-node API; the token check is in front of the router
	// and again in s.admin.
	r.GET(cluster.PathStatus, s.admin(s.handleStatus))
	r.GET(cluster.PathReady, s.admin(s.handleReady))
	r.POST(cluster.PathJoin, s.admin(s.handleJoin))
	r.POST(cluster.PathLeave, s.admin(s.handleLeave))
	r.POST(cluster.PathTransfer, s.admin(s.handleTransfer))
	r.POST(cluster.PathApply, s.admin(s.handleApply))
	r.GET(cluster.PathReadIndex, s.admin(s.handleReadIndex))

	// Outside /cluster/, so scrapers need no admin token.
	r.GET("/metrics", s.handleMetrics)

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
