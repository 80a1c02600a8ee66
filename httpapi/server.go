package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/raftlookupd/raftlookupd/internal/graceful"
	"github.com/raftlookupd/raftlookupd/internal/metrics"
)

// readHeaderTimeout stops a client from holding a connection by trickling
// request headers. nsqlookupd has no timeouts at all; this one only starts
// once a request's first byte arrived, so idle keep-alive connections, which
// nsqadmin and go-nsq reuse, are unaffected.
const readHeaderTimeout = 10 * time.Second

// Bounds on what one client can hold: a whole request (headers and the body
// the handlers read or discard) within readTimeout; an idle keep-alive
// connection for idleTimeout; a request line and headers of at most
// maxHeaderBytes (topic and channel names are at most 64 bytes; a longer
// URL can only be hostile or broken, and gets 431).
const (
	readTimeout    = 30 * time.Second
	idleTimeout    = 5 * time.Minute
	maxHeaderBytes = 64 << 10
)

// Server is the HTTP listener. Its lifecycle follows net/http.Server: New
// binds, Serve blocks, Shutdown stops.
type Server struct {
	cfg     Config
	reg     Registry
	cluster Cluster
	logger  hclog.Logger
	ln      net.Listener
	srv     *http.Server
	conns   *graceful.Conns
	handler http.Handler
	reads   map[string]*readMetrics
	// readHeaders caches the read headers' values (consistency.go).
	readHeaders atomic.Pointer[readHeaders]
}

// New validates cfg and binds cfg.Address, so a ":0" port is known before
// Serve. logger is the daemon's root logger (New names its own "http"); nil
// discards logs.
func New(cfg Config, reg Registry, cl Cluster, logger hclog.Logger) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if reg == nil || cl == nil {
		return nil, errors.New("httpapi: registry and cluster are required")
	}
	if logger == nil {
		logger = hclog.NewNullLogger()
	}
	logger = logger.Named("http")
	s := &Server{cfg: cfg, reg: reg, cluster: cl, logger: logger}
	metricsReg := cfg.Metrics
	if metricsReg == nil {
		metricsReg = prometheus.NewRegistry()
	}
	s.handler = s.routes(metricsReg) // defines s.reads
	if err := metricsReg.Register(metrics.Collector(s.writeReadMetrics)); err != nil {
		return nil, fmt.Errorf("httpapi: metrics: %w", err)
	}
	ln := cfg.Listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", cfg.Address); err != nil {
			return nil, fmt.Errorf("httpapi: listen on %s: %w", cfg.Address, err)
		}
	}
	s.ln = newCoarseListener(ln)
	s.srv = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog: logger.StandardLogger(&hclog.StandardLoggerOptions{
			ForceLevel: hclog.Debug,
		}),
	}
	s.conns = graceful.Track(s.srv)
	return s, nil
}

// Addr is the bound listen address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Handler serves the whole API without a listener, for tests and for
// embedding.
func (s *Server) Handler() http.Handler { return s.handler }

// Serve accepts connections until Shutdown; it then returns nil.
func (s *Server) Serve() error {
	s.logger.Info("HTTP listening", "address", s.ln.Addr().String())
	err := s.srv.Serve(s.ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("httpapi: serve: %w", err)
}

// Shutdown stops accepting, closes idle connections and those that have not
// sent a request, and waits for active requests until ctx ends; then it
// closes the connections still open and returns ctx's error. It may be
// called more than once, and before or without Serve.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.conns.Shutdown(ctx, s.srv)
	if err != nil {
		// Handlers still running end on their own within WriteTimeout; their
		// connections need not outlive the deadline.
		_ = s.srv.Close()
	}
	// http.Server only closes listeners Serve has seen; close ours in case
	// Serve never ran.
	if cerr := s.ln.Close(); cerr != nil && !errors.Is(cerr, net.ErrClosed) && err == nil {
		err = cerr
	}
	return err
}
