package httpapi

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/raftlookupd/raftlookupd/wire"
)

// Config configures the HTTP server.
type Config struct {
	// Address is the listen address, e.g. "0.0.0.0:4161". ":0" picks a free
	// port; Server.Addr reports it.
	Address string
	// Listener, when set, is served instead of binding Address: the daemon
	// binds early because the port it got is advertised to peers and nsqd.
	Listener net.Listener
	// Metrics is the registry GET /metrics serves. New registers the HTTP
	// API's own metrics on it; the daemon registers the rest (Raft, registry,
	// TCP, process). Nil: a registry of the HTTP API's metrics alone.
	Metrics *prometheus.Registry

	// InactiveProducerTimeout hides a producer from /lookup and /nodes when
	// its last IDENTIFY or PING is older than this. Default 300s, like
	// nsqlookupd's -inactive-producer-timeout. Must be positive.
	InactiveProducerTimeout time.Duration

	// TombstoneLifetime is how long POST /topic/tombstone hides a producer
	// from /lookup (and marks it in /nodes). Default 45s. Zero disables the
	// effect of tombstones; negative is invalid.
	TombstoneLifetime time.Duration

	// DefaultConsistency applies to reads without a "consistency" query
	// parameter. Default wire.Bounded.
	DefaultConsistency wire.Consistency

	// AdminToken, when not empty, is required as "Authorization: Bearer
	// TOKEN" on every /cluster/* request; otherwise they get 401. It must be
	// usable as an HTTP header value (no control characters, no surrounding
	// spaces), or no client could ever send it.
	AdminToken string

	// WriteTimeout bounds how long a request waits on the cluster: a mutation
	// for its commit, a bounded or linearizable read for its barrier, and an
	// admin call. On expiry the client gets 503. Default 5s. Must be positive.
	WriteTimeout time.Duration

	// Version is reported by GET /info. nsqadmin parses it as semver, so it
	// stays nsqlookupd's "1.3.0" by default.
	Version string
}

// DefaultConfig returns nsqlookupd's defaults.
func DefaultConfig() Config {
	return Config{
		Address:                 "0.0.0.0:4161",
		InactiveProducerTimeout: 300 * time.Second,
		TombstoneLifetime:       45 * time.Second,
		DefaultConsistency:      wire.Bounded,
		WriteTimeout:            5 * time.Second,
		Version:                 "1.3.0",
	}
}

// Validate reports every problem with the configuration at once.
func (c Config) Validate() error {
	var errs []error
	if c.Address == "" && c.Listener == nil {
		errs = append(errs, errors.New("address is empty"))
	}
	if c.InactiveProducerTimeout <= 0 {
		errs = append(errs, fmt.Errorf("inactive producer timeout %v: must be positive", c.InactiveProducerTimeout))
	}
	if c.TombstoneLifetime < 0 {
		errs = append(errs, fmt.Errorf("tombstone lifetime %v: must not be negative", c.TombstoneLifetime))
	}
	if _, err := wire.ParseConsistency(string(c.DefaultConsistency)); err != nil {
		errs = append(errs, fmt.Errorf("default consistency: %w", err))
	}
	if c.WriteTimeout <= 0 {
		errs = append(errs, fmt.Errorf("write timeout %v: must be positive", c.WriteTimeout))
	}
	if c.Version == "" {
		errs = append(errs, errors.New("version is empty"))
	}
	if c.AdminToken != "" && !validToken(c.AdminToken) {
		errs = append(errs, errors.New("admin token: must be printable ASCII without surrounding spaces"))
	}
	if len(errs) > 0 {
		return fmt.Errorf("httpapi: invalid config: %w", errors.Join(errs...))
	}
	return nil
}

// validToken accepts what a client can put in a header value and get back
// unchanged: net/http trims surrounding whitespace and refuses control bytes.
func validToken(t string) bool {
	if strings.TrimSpace(t) != t {
		return false
	}
	for i := 0; i < len(t); i++ {
		if t[i] < 0x20 || t[i] > 0x7e {
			return false
		}
	}
	return true
}
