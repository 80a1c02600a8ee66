package tcpproto

import (
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"time"
)

// Smallest accepted limits. They keep a misconfiguration from rejecting what
// nsqd legitimately sends: its longest line is "UNREGISTER <64> <64>\r\n"
// (142 bytes) and its IDENTIFY body is about 100 bytes.
const (
	minLineBytes    = 256
	minIdentifyBody = 1024
)

// Config configures a Server. Start from DefaultConfig.
type Config struct {
	// Address is the TCP listen address, e.g. "0.0.0.0:4160"; port 0 picks
	// a free port (see Server.Addr).
	Address string

	// BroadcastAddress is returned as broadcast_address in the IDENTIFY
	// reply. nsqd later calls http://BroadcastAddress:HTTPPort/channels, so
	// it must be reachable from every nsqd. Default: the OS hostname.
	BroadcastAddress string

	// Hostname is returned as hostname in the IDENTIFY reply. Purely
	// informational. Default: the OS hostname.
	Hostname string

	// Listener, when set, is served instead of binding Address: the daemon
	// binds every listener first, because their ports are advertised.
	Listener net.Listener

	// HTTPPort is returned as http_port in the IDENTIFY reply: the port the
	// HTTP API is really bound to.
	HTTPPort int

	// Version is returned as version in the IDENTIFY reply. Default "1.3.0".
	Version string

	// MaxConnections caps concurrent client connections (counting ones that
	// have not sent the magic yet). A connection over the cap gets an error
	// frame and is closed at once. Default 10000.
	MaxConnections int

	// MaxRegistrations caps the distinct registrations one connection holds
	// (each topic and each topic/channel pair counts once). A REGISTER that
	// would exceed it gets an error and the connection is closed.
	// Default 100000.
	MaxRegistrations int

	// MaxLineBytes caps one command line, its "\n" included. A longer line
	// gets an error and the connection is closed; no more than this is ever
	// buffered per connection. Default 4096, at least 256.
	MaxLineBytes int

	// MaxIdentifyBody caps the IDENTIFY body length. A larger (or negative)
	// length gets an error and the connection is closed without reading or
	// allocating the body. Default 65536, at least 1024.
	MaxIdentifyBody int

	// WriteTimeout bounds each reply write, so a client that stops reading
	// cannot hold its goroutine forever. nsqd reads every reply within 1 s.
	// Default 10s.
	WriteTimeout time.Duration
}

// DefaultConfig returns the defaults of nsqlookupd 1.3.0 where it has them
// ("0.0.0.0:4160", hostname as broadcast address) plus the limits above.
func DefaultConfig() Config {
	host, _ := os.Hostname() // empty on failure; Validate then asks for one
	return Config{
		Address:          "0.0.0.0:4160",
		BroadcastAddress: host,
		Hostname:         host,
		Version:          "1.3.0",
		MaxConnections:   10000,
		MaxRegistrations: 100000,
		MaxLineBytes:     4096,
		MaxIdentifyBody:  65536,
		WriteTimeout:     10 * time.Second,
	}
}

// Validate reports every invalid field, joined.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("tcpproto: "+format, args...))
	}
	if c.Address == "" {
		bad("Address is empty")
	}
	if c.BroadcastAddress == "" {
		bad("BroadcastAddress is empty: nsqd needs it to reach the HTTP API")
	}
	if c.Version == "" {
		bad("Version is empty")
	}
	if c.HTTPPort < 0 || c.HTTPPort > math.MaxUint16 {
		bad("HTTPPort %d out of range 0..65535", c.HTTPPort)
	}
	if c.MaxConnections < 1 {
		bad("MaxConnections %d must be at least 1", c.MaxConnections)
	}
	if c.MaxRegistrations < 2 {
		// One REGISTER topic channel adds two keys at once.
		bad("MaxRegistrations %d must be at least 2", c.MaxRegistrations)
	}
	if c.MaxLineBytes < minLineBytes {
		bad("MaxLineBytes %d must be at least %d (nsqd's longest line is 142 bytes)", c.MaxLineBytes, minLineBytes)
	}
	if c.MaxIdentifyBody < minIdentifyBody || c.MaxIdentifyBody > math.MaxInt32 {
		bad("MaxIdentifyBody %d out of range %d..%d", c.MaxIdentifyBody, minIdentifyBody, math.MaxInt32)
	}
	if c.WriteTimeout <= 0 {
		bad("WriteTimeout %v must be positive", c.WriteTimeout)
	}
	return errors.Join(errs...)
}
