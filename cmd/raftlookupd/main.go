// Command raftlookupd is a drop-in replacement for nsqlookupd that runs as a
// Raft cluster. With no cluster flags it is a single-node cluster: a plain
// nsqlookupd whose registry survives restarts.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/raftlookupd/raftlookupd/cluster"
	"github.com/raftlookupd/raftlookupd/httpapi"
	"github.com/raftlookupd/raftlookupd/internal/metrics"
	"github.com/raftlookupd/raftlookupd/tcpproto"
)

// version is the nsqlookupd version this build is compatible with and
// reports to clients (nsqd and nsqadmin parse it as semver).
const nsqVersion = "1.3.0"

// buildVersion is set with -ldflags "-X main.buildVersion=...".
var buildVersion = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	// Before anything slow: SIGHUP's default action would end the process.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sigs)

	opts, err := parseFlags(args, stdout, stderr)
	if errors.Is(err, errHelpOrVersion) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "raftlookupd: %v\n", err)
		return 2
	}
	logs := newLogs(opts, stderr)
	logger := logs.root
	if opts.verbose {
		logger.Warn("-verbose has no effect (as in nsqlookupd); use -log-level")
	}
	reload := &reloader{args: args, current: opts}
	reload.register("log level", levelHook(logs))
	d, err := start(opts, logger, reload)
	if err != nil {
		fmt.Fprintf(stderr, "raftlookupd: %v\n", err)
		return 1
	}
	for {
		select {
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				reload.reload(logger)
				continue
			}
			logger.Info("shutting down", "signal", sig.String())
			if err := d.shutdown(logger); err != nil {
				logs.fatal.Error("unclean shutdown", "error", err)
				return 1
			}
			return 0
		case err := <-d.failed:
			logs.fatal.Error("server failed", "error", err)
			d.shutdown(logger)
			return 1
		}
	}
}

// daemon owns the three servers and shuts them down in order.
type daemon struct {
	node   *cluster.Node
	tcp    *tcpproto.Server
	http   *httpapi.Server
	failed chan error
}

// start binds and serves. Parts that can change live register a hook on
// reload.
func start(opts *options, logger hclog.Logger, reload *reloader) (d *daemon, err error) {
	// Every listener first: the IDENTIFY reply, the member record and the
	// Raft configuration advertise the ports actually bound, and each
	// component is then built with its real addresses.
	var lns []net.Listener
	listen := func(name, addr string) (net.Listener, error) {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("%s listener: %w", name, err)
		}
		lns = append(lns, ln)
		return ln, nil
	}
	defer func() {
		if err != nil {
			for _, ln := range lns {
				ln.Close()
			}
		}
	}()
	httpLn, err := listen("http", opts.httpAddress)
	if err != nil {
		return nil, err
	}
	tcpLn, err := listen("tcp", opts.tcpAddress)
	if err != nil {
		return nil, err
	}
	raftLn, err := listen("raft", opts.raftAddress)
	if err != nil {
		return nil, err
	}

	ccfg := opts.cluster
	ccfg.RaftListener = raftLn
	ccfg.RaftAdvertise = advertise(opts.broadcastAddress, raftLn.Addr())
	ccfg.HTTPAdvertise = advertise(opts.broadcastAddress, httpLn.Addr())
	ccfg.TCPAdvertise = advertise(opts.broadcastAddress, tcpLn.Addr())

	d = &daemon{failed: make(chan error, 2)}
	// Before the node: Raft reports from its first moment.
	reg, err := newMetricsRegistry()
	if err != nil {
		return nil, err
	}
	if d.node, err = cluster.New(ccfg, logger.Named("cluster")); err != nil {
		return nil, err
	}
	lns = lns[:2] // the node owns the Raft listener now
	reload.register("certificates", func(*options) error { return d.node.ReloadTLS() })

	tcpCfg := tcpproto.DefaultConfig()
	tcpCfg.Listener = tcpLn
	tcpCfg.BroadcastAddress = opts.broadcastAddress
	tcpCfg.Hostname = opts.hostname
	tcpCfg.Version = nsqVersion
	tcpCfg.HTTPPort = httpLn.Addr().(*net.TCPAddr).Port
	tcpCfg.MaxConnections = opts.maxConnections
	tcpCfg.MaxRegistrations = opts.maxRegistrations
	if d.tcp, err = tcpproto.New(tcpCfg, d.node, logger); err != nil {
		d.node.Shutdown(context.Background())
		return nil, err
	}

	hcfg := httpapi.DefaultConfig()
	hcfg.Listener = httpLn
	hcfg.InactiveProducerTimeout = opts.inactiveProducerTimeout
	hcfg.TombstoneLifetime = opts.tombstoneLifetime
	hcfg.DefaultConsistency = opts.readConsistency
	hcfg.AdminToken = ccfg.AdminToken
	hcfg.WriteTimeout = ccfg.WriteTimeout
	hcfg.Version = nsqVersion
	hcfg.Metrics = reg
	if err := reg.Register(metrics.Collector(func(w *metrics.Writer) {
		d.node.WriteMetrics(w)
		w.Gauge("raftlookupd_tcp_connections", "Open nsqd (TCP protocol V1) connections.", float64(d.tcp.Connections()))
	})); err != nil {
		d.tcp.Shutdown(context.Background())
		d.node.Shutdown(context.Background())
		return nil, fmt.Errorf("metrics: %w", err)
	}
	if d.http, err = httpapi.New(hcfg, d.node.Registry(), d.node, logger); err != nil {
		d.tcp.Shutdown(context.Background())
		d.node.Shutdown(context.Background())
		return nil, err
	}
	go func() {
		if err := d.tcp.Serve(); err != nil {
			d.failed <- fmt.Errorf("tcp: %w", err)
		}
	}()
	go func() {
		if err := d.http.Serve(); err != nil {
			d.failed <- fmt.Errorf("http: %w", err)
		}
	}()
	// The node's lease expired and its sessions are gone everywhere: close
	// the connections so every nsqd reconnects and registers again.
	go func() {
		for range d.node.Expired() {
			d.tcp.CloseConnections()
		}
	}()
	logger.Info("serving", "tcp", d.tcp.Addr().String(), "http", httpLn.Addr().String(),
		"raft", d.node.RaftAddress(), "node_id", ccfg.NodeID, "version", buildVersion)
	return d, nil
}

// shutdown: stop taking clients and close their sessions, replicate that,
// hand leadership over, then stop HTTP and Raft.
func (d *daemon) shutdown(logger hclog.Logger) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var errs []error
	d.node.StartDrain()
	if err := d.tcp.Shutdown(ctx); err != nil {
		errs = append(errs, err)
	}
	drainCtx, drainCancel := context.WithTimeout(ctx, 3*time.Second)
	if err := d.node.Drain(drainCtx); err != nil {
		logger.Warn("sessions not replicated before shutdown; the lease will drop them", "error", err)
	}
	drainCancel()
	if err := d.http.Shutdown(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := d.node.Shutdown(ctx); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// advertise joins the broadcast host with a bound listener's port.
func advertise(host string, a net.Addr) string {
	return net.JoinHostPort(host, strconv.Itoa(a.(*net.TCPAddr).Port))
}
