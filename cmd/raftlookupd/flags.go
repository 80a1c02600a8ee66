package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/raftlookupd/raftlookupd/cluster"
	"github.com/raftlookupd/raftlookupd/wire"
)

var errHelpOrVersion = errors.New("help or version printed")

type options struct {
	tcpAddress              string
	httpAddress             string
	broadcastAddress        string
	hostname                string
	inactiveProducerTimeout time.Duration
	tombstoneLifetime       time.Duration
	logLevel                string
	logPrefix               string
	logFormat               string
	verbose                 bool
	readConsistency         wire.Consistency
	raftAddress             string
	maxConnections          int
	maxRegistrations        int
	cluster                 cluster.Config
	// settings is every flag's effective value (command line, then config
	// file, then default) by flag name; a reload compares them.
	settings map[string]string
}

// rawFlags holds the flags that are checked and converted after parsing.
type rawFlags struct {
	config      string
	version     bool
	raftAddress string
	peers       string
	join        string
	consistency string
}

// newFlagSet defines every flag on o and raw. Each flag (but -config and
// -version) is also a config file key: its name with '_' for '-'.
func newFlagSet(o *options, raw *rawFlags) *flag.FlagSet {
	c := &o.cluster
	fs := flag.NewFlagSet("raftlookupd", flag.ContinueOnError)
	// The flag package would print parse errors itself; run() prints them.
	fs.SetOutput(io.Discard)

	// nsqlookupd's own flags.
	fs.StringVar(&raw.config, "config", "", "path to a TOML config file (nsqlookupd's keys, and every flag with '_' for '-')")
	fs.BoolVar(&raw.version, "version", false, "print version string")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: trace, debug, info, warn, error or fatal (SIGHUP re-reads it)")
	fs.StringVar(&o.logPrefix, "log-prefix", "", "text written at the start of every text log line (nsqlookupd's default is \"[nsqlookupd] \")")
	fs.BoolVar(&o.verbose, "verbose", false, "[deprecated] has no effect, use -log-level (as in nsqlookupd)")
	fs.StringVar(&o.tcpAddress, "tcp-address", "0.0.0.0:4160", "<addr>:<port> to listen on for TCP clients (nsqd)")
	fs.StringVar(&o.httpAddress, "http-address", "0.0.0.0:4161", "<addr>:<port> to listen on for HTTP clients")
	fs.StringVar(&o.broadcastAddress, "broadcast-address", o.hostname, "address of this node, advertised to nsqd, peers and clients")
	fs.DurationVar(&o.inactiveProducerTimeout, "inactive-producer-timeout", 300*time.Second, "duration of time a producer will remain in the active list since its last ping")
	fs.DurationVar(&o.tombstoneLifetime, "tombstone-lifetime", 45*time.Second, "duration of time a producer will remain tombstoned if registration remains")
	fs.StringVar(&o.logFormat, "log-format", "text", "log format: text or json")

	// Cluster flags.
	fs.StringVar(&c.NodeID, "node-id", o.hostname, "unique, stable id of this node in the cluster")
	fs.StringVar(&c.DataDir, "data-dir", "raftlookupd-data", "directory for the Raft log, stable store and snapshots")
	fs.StringVar(&raw.raftAddress, "raft-address", "0.0.0.0:4162", "<addr>:<port> to listen on for Raft peers")
	fs.StringVar(&raw.peers, "peers", "", "static bootstrap on a fresh data dir: id=host:port,... (same on every node, includes this node)")
	fs.StringVar(&raw.join, "join", "", "Raft addresses of members to ask for admission: host:port,... (a name resolving to several members stands for all)")
	fs.IntVar(&c.BootstrapExpect, "bootstrap-expect", 0, "with -join and no -peers: on a fresh data dir, bootstrap once this many fresh nodes found each other through -join (same flags on every node; a name may resolve to all of them)")
	fs.BoolVar(&c.Bootstrap, "bootstrap", true, "with neither -peers nor -join, start a single-node cluster on a fresh data dir (false: wait to be added)")
	fs.StringVar(&raw.consistency, "read-consistency", string(wire.Bounded), "default read consistency: stale, bounded or linearizable")
	fs.DurationVar(&c.MaxStaleness, "max-staleness", c.MaxStaleness, "bounded reads fail with 503 when the leader was not heard from for this long")
	// Not the flag's default: -h would print the secret.
	fs.StringVar(&c.AdminToken, "admin-token", "", "bearer token required by /cluster/*, pprof and node-to-node calls (default $RAFTLOOKUPD_ADMIN_TOKEN)")
	fs.StringVar(&c.TLS.CertFile, "tls-cert", "", "PEM certificate of this node for the Raft port (mutual TLS between members; SIGHUP re-reads it)")
	fs.StringVar(&c.TLS.KeyFile, "tls-key", "", "PEM private key of -tls-cert")
	fs.StringVar(&c.TLS.CAFile, "tls-ca", "", "PEM CA that signs every member's certificate; peers without one are refused")
	fs.DurationVar(&c.LeaseTimeout, "lease-timeout", c.LeaseTimeout, "drop every session of a node whose lease was not renewed for this long")
	fs.DurationVar(&c.OrphanGrace, "orphan-grace", c.OrphanGrace, "how long a gone node's sessions stay listed (orphans) unless their nsqd registers again first")
	fs.DurationVar(&c.LeaseRenewInterval, "lease-renew-interval", c.LeaseRenewInterval, "how often a node renews its lease and replicates PING times")
	fs.DurationVar(&c.HeartbeatTimeout, "raft-heartbeat-timeout", c.HeartbeatTimeout, "Raft heartbeat timeout")
	fs.DurationVar(&c.ElectionTimeout, "raft-election-timeout", c.ElectionTimeout, "Raft election timeout")
	fs.DurationVar(&c.LeaderLeaseTimeout, "raft-leader-lease-timeout", c.LeaderLeaseTimeout, "Raft leader lease timeout (at most the heartbeat timeout)")
	fs.DurationVar(&c.CommitTimeout, "raft-commit-timeout", c.CommitTimeout, "Raft commit timeout")
	fs.DurationVar(&c.SnapshotInterval, "raft-snapshot-interval", c.SnapshotInterval, "how often Raft checks whether to snapshot")
	fs.Uint64Var(&c.SnapshotThreshold, "raft-snapshot-threshold", c.SnapshotThreshold, "log entries since the last snapshot that trigger one")
	fs.DurationVar(&c.WriteTimeout, "write-timeout", c.WriteTimeout, "how long an HTTP mutation waits for its commit before 503")
	fs.IntVar(&o.maxConnections, "max-connections", 10000, "most concurrent TCP client connections")
	fs.IntVar(&o.maxRegistrations, "max-registrations", 100000, "most topic and channel registrations per TCP connection")
	fs.IntVar(&c.MaxSessions, "max-sessions", c.MaxSessions, "most sessions (identified TCP connections, orphans included) the whole cluster holds; 0: no cap")
	fs.IntVar(&c.MaxRegistrations, "max-cluster-registrations", c.MaxRegistrations, "most registrations (producer records and keys) the whole cluster holds; 0: no cap")
	return fs
}

// parseFlags reads the command line, then the -config file for the flags
// the command line did not set. -version is printed on stdout (as
// nsqlookupd does), -h on stderr.
func parseFlags(args []string, stdout, stderr io.Writer) (*options, error) {
	hostname, err := os.Hostname()
	if err != nil {
		return nil, fmt.Errorf("hostname: %w", err)
	}
	o := &options{hostname: hostname, cluster: cluster.DefaultConfig()}
	var raw rawFlags
	fs := newFlagSet(o, &raw)
	// A parse error is one line; the full usage only on -h.
	fs.Usage = func() {}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stderr, "Usage of raftlookupd:\n")
			fs.SetOutput(stderr)
			fs.PrintDefaults()
			return nil, errHelpOrVersion
		}
		return nil, fmt.Errorf("%w (see raftlookupd -h)", err)
	}
	if raw.version {
		fmt.Fprintln(stdout, versionString())
		return nil, errHelpOrVersion
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if raw.config != "" {
		if err := applyConfigFile(fs, raw.config); err != nil {
			return nil, err
		}
	}
	o.settings = map[string]string{}
	fs.VisitAll(func(f *flag.Flag) { o.settings[f.Name] = f.Value.String() })
	if err := o.check(&raw); err != nil {
		return nil, err
	}
	return o, nil
}

// versionString has nsqlookupd's shape ("nsqlookupd v1.3.0 (built
// w/go1.x)"), naming the nsqlookupd version this build answers as.
func versionString() string {
	return fmt.Sprintf("raftlookupd v%s (nsqlookupd %s compatible, built w/%s)",
		strings.TrimPrefix(buildVersion, "v"), nsqVersion, runtime.Version())
}

// check validates the parsed values and fills in the derived ones.
func (o *options) check(raw *rawFlags) error {
	c := &o.cluster
	if c.AdminToken == "" {
		c.AdminToken = os.Getenv("RAFTLOOKUPD_ADMIN_TOKEN")
	}
	if o.broadcastAddress == "" {
		return errors.New("-broadcast-address is empty")
	}
	if o.inactiveProducerTimeout <= 0 || o.tombstoneLifetime <= 0 {
		return errors.New("-inactive-producer-timeout and -tombstone-lifetime must be positive")
	}
	if o.logFormat != "text" && o.logFormat != "json" {
		return fmt.Errorf("-log-format %q: want text or json", o.logFormat)
	}
	if _, err := parseLevel(o.logLevel); err != nil {
		return err
	}
	var err error
	if o.readConsistency, err = wire.ParseConsistency(raw.consistency); err != nil {
		return fmt.Errorf("-read-consistency %q: want stale, bounded or linearizable", raw.consistency)
	}
	for _, a := range []struct{ name, addr string }{
		{"-tcp-address", o.tcpAddress}, {"-http-address", o.httpAddress}, {"-raft-address", raw.raftAddress},
	} {
		if _, _, err := net.SplitHostPort(a.addr); err != nil {
			return fmt.Errorf("%s %q: %w", a.name, a.addr, err)
		}
	}
	if c.Servers, err = cluster.ParseServers(raw.peers); err != nil {
		return fmt.Errorf("-peers: %w", err)
	}
	for _, a := range strings.Split(raw.join, ",") {
		if a = strings.TrimSpace(a); a != "" {
			if _, _, err := net.SplitHostPort(a); err != nil {
				return fmt.Errorf("-join %q: %w", a, err)
			}
			c.Join = append(c.Join, a)
		}
	}
	c.InactiveProducerTimeout = o.inactiveProducerTimeout
	o.raftAddress = raw.raftAddress
	// Provisional until the listener is bound (a ":0" port becomes real
	// there); enough to check the configuration now, as a flag error.
	_, raftPort, _ := net.SplitHostPort(raw.raftAddress)
	c.RaftAdvertise = net.JoinHostPort(o.broadcastAddress, raftPort)
	return c.Validate()
}
