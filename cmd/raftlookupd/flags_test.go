package main

import (
	"bytes"
	"flag"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/raftlookupd/raftlookupd/cluster"
	"github.com/raftlookupd/raftlookupd/wire"
)

// One row per flag: the same setting given on the command line and as a
// config file key must end in the same option.
var flagCases = []struct {
	flag  string
	arg   string // command line value
	toml  string // config file value, TOML
	extra []string
	get   func(*options) any
	want  any
}{
	{"log-level", "debug", `"debug"`, nil, func(o *options) any { return o.logLevel }, "debug"},
	{"log-prefix", "[nsqlookupd] ", `"[nsqlookupd] "`, nil, func(o *options) any { return o.logPrefix }, "[nsqlookupd] "},
	{"verbose", "true", "true", nil, func(o *options) any { return o.verbose }, true},
	{"tcp-address", "127.0.0.1:5160", `"127.0.0.1:5160"`, nil, func(o *options) any { return o.tcpAddress }, "127.0.0.1:5160"},
	{"http-address", "127.0.0.1:5161", `"127.0.0.1:5161"`, nil, func(o *options) any { return o.httpAddress }, "127.0.0.1:5161"},
	{"broadcast-address", "b.example", `"b.example"`, nil, func(o *options) any { return o.cluster.RaftAdvertise }, "b.example:4162"},
	{"inactive-producer-timeout", "90s", `"90s"`, nil, func(o *options) any { return o.inactiveProducerTimeout }, 90 * time.Second},
	{"tombstone-lifetime", "10s", `10000`, nil, func(o *options) any { return o.tombstoneLifetime }, 10 * time.Second},
	{"log-format", "json", `"json"`, nil, func(o *options) any { return o.logFormat }, "json"},
	{"node-id", "n9", `"n9"`, nil, func(o *options) any { return o.cluster.NodeID }, "n9"},
	{"data-dir", "/var/lib/x", `"/var/lib/x"`, nil, func(o *options) any { return o.cluster.DataDir }, "/var/lib/x"},
	{"raft-address", "127.0.0.1:5162", `"127.0.0.1:5162"`, nil, func(o *options) any { return o.raftAddress }, "127.0.0.1:5162"},
	{"peers", "n1=h1:4162,n2=h2:4162", `"n1=h1:4162,n2=h2:4162"`, []string{"-node-id", "n1"},
		func(o *options) any { return o.cluster.Servers }, []cluster.Server{{ID: "n1", RaftAddress: "h1:4162"}, {ID: "n2", RaftAddress: "h2:4162"}}},
	{"join", "h1:4162, h2:4162", `"h1:4162, h2:4162"`, nil, func(o *options) any { return o.cluster.Join }, []string{"h1:4162", "h2:4162"}},
	{"bootstrap-expect", "3", "3", []string{"-join", "lookupd:4162"}, func(o *options) any { return o.cluster.BootstrapExpect }, 3},
	{"bootstrap", "false", "false", nil, func(o *options) any { return o.cluster.Bootstrap }, false},
	{"read-consistency", "stale", `"stale"`, nil, func(o *options) any { return o.readConsistency }, wire.Stale},
	{"max-staleness", "5s", `"5s"`, nil, func(o *options) any { return o.cluster.MaxStaleness }, 5 * time.Second},
	{"admin-token", "tok", `"tok"`, nil, func(o *options) any { return o.cluster.AdminToken }, "tok"},
	{"tls-cert", "/c.pem", `"/c.pem"`, []string{"-tls-key", "/k.pem", "-tls-ca", "/ca.pem"}, func(o *options) any { return o.cluster.TLS.CertFile }, "/c.pem"},
	{"tls-key", "/k.pem", `"/k.pem"`, []string{"-tls-cert", "/c.pem", "-tls-ca", "/ca.pem"}, func(o *options) any { return o.cluster.TLS.KeyFile }, "/k.pem"},
	{"tls-ca", "/ca.pem", `"/ca.pem"`, []string{"-tls-cert", "/c.pem", "-tls-key", "/k.pem"}, func(o *options) any { return o.cluster.TLS.CAFile }, "/ca.pem"},
	{"max-sessions", "7", `7`, nil, func(o *options) any { return o.cluster.MaxSessions }, 7},
	{"max-cluster-registrations", "70", `70`, nil, func(o *options) any { return o.cluster.MaxRegistrations }, 70},
	{"orphan-grace", "50s", `"50s"`, nil, func(o *options) any { return o.cluster.OrphanGrace }, 50 * time.Second},
	{"lease-timeout", "30s", `"30s"`, nil, func(o *options) any { return o.cluster.LeaseTimeout }, 30 * time.Second},
	{"lease-renew-interval", "1s", `1000`, nil, func(o *options) any { return o.cluster.LeaseRenewInterval }, time.Second},
	{"raft-heartbeat-timeout", "500ms", `"500ms"`, nil, func(o *options) any { return o.cluster.HeartbeatTimeout }, 500 * time.Millisecond},
	{"raft-election-timeout", "700ms", `"700ms"`, nil, func(o *options) any { return o.cluster.ElectionTimeout }, 700 * time.Millisecond},
	{"raft-leader-lease-timeout", "100ms", `"100ms"`, nil, func(o *options) any { return o.cluster.LeaderLeaseTimeout }, 100 * time.Millisecond},
	{"raft-commit-timeout", "20ms", `20`, nil, func(o *options) any { return o.cluster.CommitTimeout }, 20 * time.Millisecond},
	{"raft-snapshot-interval", "30s", `"30s"`, nil, func(o *options) any { return o.cluster.SnapshotInterval }, 30 * time.Second},
	{"raft-snapshot-threshold", "100", `100`, nil, func(o *options) any { return o.cluster.SnapshotThreshold }, uint64(100)},
	{"write-timeout", "2s", `"2s"`, nil, func(o *options) any { return o.cluster.WriteTimeout }, 2 * time.Second},
	{"max-connections", "5", `5`, nil, func(o *options) any { return o.maxConnections }, 5},
	{"max-registrations", "7", `"7"`, nil, func(o *options) any { return o.maxRegistrations }, 7},
}

func writeConfig(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "raftlookupd.cfg")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func mustParse(t *testing.T, args ...string) *options {
	t.Helper()
	o, err := parseFlags(args, io.Discard, io.Discard)
	if err != nil {
		t.Fatalf("parseFlags(%q): %v", args, err)
	}
	return o
}

func TestEveryFlagAsFlagAndAsConfigKey(t *testing.T) {
	t.Setenv("RAFTLOOKUPD_ADMIN_TOKEN", "")
	covered := map[string]bool{"config": true, "version": true}
	for _, tc := range flagCases {
		covered[tc.flag] = true
		t.Run(tc.flag, func(t *testing.T) {
			def := mustParse(t, tc.extra...)
			if reflect.DeepEqual(tc.get(def), tc.want) {
				t.Fatalf("the wanted value %v is the default: the row tests nothing", tc.want)
			}
			o := mustParse(t, append([]string{"-" + tc.flag + "=" + tc.arg}, tc.extra...)...)
			if got := tc.get(o); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("flag -%s %q: got %v, want %v", tc.flag, tc.arg, got, tc.want)
			}
			key := strings.ReplaceAll(tc.flag, "-", "_")
			path := writeConfig(t, key+" = "+tc.toml+"\n")
			o = mustParse(t, append([]string{"-config", path}, tc.extra...)...)
			if got := tc.get(o); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("key %s = %s: got %v, want %v", key, tc.toml, got, tc.want)
			}
		})
	}
	newFlagSet(&options{}, &rawFlags{}).VisitAll(func(f *flag.Flag) {
		if !covered[f.Name] {
			t.Errorf("flag -%s has no row in flagCases", f.Name)
		}
	})
}

// nsq's contrib/nsqlookupd.cfg.example, keys and values as nsq ships them.
const nsqlookupdExample = `## log verbosity level: debug, info, warn, error, or fatal
log_level = "info"

## <addr>:<port> to listen on for TCP clients
tcp_address = "0.0.0.0:4160"

## <addr>:<port> to listen on for HTTP clients
http_address = "0.0.0.0:4161"

## address that will be registered with lookupd (defaults to the OS hostname)
# broadcast_address = ""


## duration of time a producer will remain in the active list since its last ping
inactive_producer_timeout = "300s"

## duration of time a producer will remain tombstoned if registration remains
tombstone_lifetime = "45s"
`

func TestNsqlookupdExampleConfig(t *testing.T) {
	o := mustParse(t, "-config", writeConfig(t, nsqlookupdExample))
	def := mustParse(t)
	if !reflect.DeepEqual(o.settings, def.settings) {
		// Every value in the example is nsqlookupd's default, which is ours.
		for k, v := range o.settings {
			if def.settings[k] != v && k != "config" {
				t.Errorf("%s: %q from the example, default %q", k, v, def.settings[k])
			}
		}
	}
	if o.tcpAddress != "0.0.0.0:4160" || o.httpAddress != "0.0.0.0:4161" || o.logLevel != "info" ||
		o.inactiveProducerTimeout != 300*time.Second || o.tombstoneLifetime != 45*time.Second {
		t.Errorf("options %+v", o)
	}
}

func TestConfigPrecedence(t *testing.T) {
	path := writeConfig(t, "tcp_address = \"127.0.0.1:1\"\nlog_level = \"debug\"\nverbose = true\n")
	o := mustParse(t, "-tcp-address", "127.0.0.1:2", "-config", path, "-verbose=false")
	if o.tcpAddress != "127.0.0.1:2" {
		t.Errorf("flag must win over file: tcp address %q", o.tcpAddress)
	}
	if o.verbose {
		t.Error("-verbose=false on the command line must win over verbose = true in the file")
	}
	if o.logLevel != "debug" {
		t.Errorf("file must win over default: log level %q", o.logLevel)
	}
	if o.httpAddress != "0.0.0.0:4161" {
		t.Errorf("default: http address %q", o.httpAddress)
	}
}

func TestConfigFileErrors(t *testing.T) {
	tests := []struct{ content, want string }{
		{"tcp_adress = \"127.0.0.1:1\"\n", `unknown key "tcp_adress"`},
		{"tcp-address = \"127.0.0.1:1\"\n", `unknown key "tcp-address"`},
		{"config = \"other.cfg\"\n", `unknown key "config"`},
		{"[nsqlookupd]\ntcp_address = \"x\"\n", `unknown key "nsqlookupd"`},
		{"tombstone_lifetime = 4.5\n", "tombstone_lifetime: 4.5: want a duration"},
		{"tombstone_lifetime = \"45\"\n", "tombstone_lifetime: time: missing unit"},
		{"max_connections = \"many\"\n", `max_connections: strconv.ParseInt: parsing "many": invalid syntax`},
		{"tcp_address = 4160\n", "tcp_address: 4160: want a string"},
		{"bootstrap = 1\n", "bootstrap: 1: want true or false"},
		{"log_level = \"loud\"\n", `-log-level "loud"`},
		{"tcp_address = \n", "config file"},
	}
	for _, tt := range tests {
		path := writeConfig(t, tt.content)
		_, err := parseFlags([]string{"-config", path}, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: error %v, want one containing %q", tt.content, err, tt.want)
		}
	}
	if _, err := parseFlags([]string{"-config", filepath.Join(t.TempDir(), "missing.cfg")}, io.Discard, io.Discard); err == nil {
		t.Error("a missing config file must be an error")
	}
}

func TestVersionOnStdout(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-version"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d", code)
	}
	want := "raftlookupd v" + buildVersion + " (nsqlookupd 1.3.0 compatible, built w/" + runtime.Version() + ")\n"
	if stdout.String() != want || stderr.Len() != 0 {
		t.Errorf("stdout %q stderr %q, want stdout %q", stdout.String(), stderr.String(), want)
	}
}
