package httpapi

import (
	"crypto/sha256"
	"crypto/subtle"
	"net"
	"net/http"
	"strings"
	"time"
)

const adminPrefix = "/cluster"

// requireAdminToken guards everything under /cluster/ when a token is set,
// before routing, so that 404s, 405s and OPTIONS there do not reveal the
// admin routes to an unauthenticated caller either.
func (s *Server) requireAdminToken(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isAdminPath(r.URL.Path) && !s.authorized(r) {
			writeUnauthorized(w)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// isAdminPath matches /cluster and /cluster/..., in any letter case, because
// the router would redirect /CLUSTER/... to the admin routes.
func isAdminPath(p string) bool {
	if len(p) < len(adminPrefix) || !strings.EqualFold(p[:len(adminPrefix)], adminPrefix) {
		return false
	}
	return len(p) == len(adminPrefix) || p[len(adminPrefix)] == '/'
}

// private guards the profiling endpoints: the admin token when one is set,
// else a request from loopback.
func (s *Server) private(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case s.cfg.AdminToken != "" && !s.authorized(r):
			writeUnauthorized(w)
		case s.cfg.AdminToken == "" && !fromLoopback(r):
			writeJSON(w, http.StatusForbidden, messageBody{"profiling needs -admin-token, or a request from loopback"})
		default:
			h.ServeHTTP(w, r)
		}
	})
}

// fromLoopback reports whether the request came over a loopback address.
func fromLoopback(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// authorized checks "Authorization: Bearer TOKEN". Both sides are hashed
// before the constant-time compare so that neither the content nor the length
// of the token leaks through timing.
func (s *Server) authorized(r *http.Request) bool {
	if s.cfg.AdminToken == "" {
		return true
	}
	const scheme = "Bearer "
	h := r.Header.Get("Authorization")
	if len(h) < len(scheme) || !strings.EqualFold(h[:len(scheme)], scheme) {
		return false
	}
	got := sha256.Sum256([]byte(h[len(scheme):]))
	want := sha256.Sum256([]byte(s.cfg.AdminToken))
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1
}

func writeUnauthorized(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Bearer realm="raftlookupd"`)
	writeJSON(w, errUnauthorized.status, messageBody{errUnauthorized.message})
}

// accessLog logs one Debug line per request, like nsqlookupd's Info line but
// at Debug, the level for per-request events.
func (s *Server) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.logger.IsDebug() {
			next.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		s.logger.Debug("request", "status", sw.statusCode(), "method", r.Method,
			"uri", r.URL.RequestURI(), "remote", r.RemoteAddr, "elapsed", time.Since(start))
	})
}

// statusWriter records the status a handler sent. Unwrap keeps
// http.ResponseController (flush, deadlines) working through it.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *statusWriter) statusCode() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}
