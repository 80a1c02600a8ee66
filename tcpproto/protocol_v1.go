package tcpproto

import (
	"encoding/binary"
	"encoding/json"
	"io"

	"github.com/raftlookupd/raftlookupd/fsm"
)

var replyOK = []byte("OK")

// identifyBody is decoded with encoding/json exactly as nsqlookupd decodes
// its PeerInfo: case-insensitive keys, unknown keys ignored, and the same
// field types, so the same bodies fail. remote_address is decoded only
// because a wrongly typed one fails decoding there too; its value is
// ignored in favour of the socket's address.
type identifyBody struct {
	RemoteAddress    string `json:"remote_address"`
	Hostname         string `json:"hostname"`
	BroadcastAddress string `json:"broadcast_address"`
	TCPPort          int    `json:"tcp_port"`
	HTTPPort         int    `json:"http_port"`
	Version          string `json:"version"`
}

// identifyReply's fields are in alphabetical order because nsqlookupd
// marshals a map, whose keys encoding/json sorts.
type identifyReply struct {
	BroadcastAddress string `json:"broadcast_address"`
	Hostname         string `json:"hostname"`
	HTTPPort         int    `json:"http_port"`
	TCPPort          int    `json:"tcp_port"`
	Version          string `json:"version"`
}

// exec runs one command. params is the trimmed line split on single spaces,
// so it has at least one (possibly empty) element.
func (c *conn) exec(params []string) ([]byte, *clientError) {
	if log := c.srv.log; log.IsTrace() {
		log.Trace("command", "remote", c.remote, "params", params)
	}
	switch params[0] {
	case "PING":
		return c.ping()
	case "IDENTIFY":
		return c.identify() // parameters on the line are ignored
	case "REGISTER":
		return c.register(params[1:])
	case "UNREGISTER":
		return c.unregister(params[1:])
	}
	return nil, errInvalidCommand(params[0])
}

func (c *conn) ping() ([]byte, *clientError) {
	// PING before IDENTIFY is allowed and touches nothing.
	if c.identified {
		if err := c.srv.reg.Ping(c.session); err != nil {
			return nil, errUnavailable(err)
		}
	}
	return replyOK, nil
}

// identify follows nsqlookupd's order of checks, so the first failing check
// picks the error text; only the size check is new.
func (c *conn) identify() ([]byte, *clientError) {
	if c.identified {
		return nil, fatal(nil, textIdentifyAgain)
	}
	var size [4]byte
	if _, err := io.ReadFull(c.br, size[:]); err != nil {
		return nil, fatal(err, textBodySizeRead)
	}
	n := int32(binary.BigEndian.Uint32(size[:]))
	if n < 0 || int(n) > c.srv.cfg.MaxIdentifyBody {
		return nil, errBodySize(n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(c.br, body); err != nil {
		return nil, fatal(err, textBodyRead)
	}
	var b identifyBody
	if err := json.Unmarshal(body, &b); err != nil {
		return nil, fatal(err, textBodyDecode)
	}
	if b.BroadcastAddress == "" || b.TCPPort == 0 || b.HTTPPort == 0 || b.Version == "" {
		return nil, fatal(nil, textMissingFields)
	}

	peer := fsm.PeerInfo{
		RemoteAddress:    c.remote,
		Hostname:         b.Hostname,
		BroadcastAddress: b.BroadcastAddress,
		TCPPort:          b.TCPPort,
		HTTPPort:         b.HTTPPort,
		Version:          b.Version,
	}
	// nsqlookupd has no limits here; the log has (fsm.MaxAddressLen ...).
	if err := peer.Validate(); err != nil {
		return nil, errBadIdentify(err)
	}
	id, err := c.srv.reg.OpenSession(peer)
	if err != nil {
		return nil, errUnavailable(err)
	}
	c.identified, c.session = true, id
	c.srv.log.Debug("client identified", "remote", c.remote, "session", id.String(),
		"broadcast_address", b.BroadcastAddress, "tcp_port", b.TCPPort,
		"http_port", b.HTTPPort, "version", b.Version)

	reply, err := json.Marshal(identifyReply{
		BroadcastAddress: c.srv.cfg.BroadcastAddress,
		Hostname:         c.srv.cfg.Hostname,
		HTTPPort:         c.srv.cfg.HTTPPort,
		TCPPort:          c.srv.tcpPort,
		Version:          c.srv.cfg.Version,
	})
	if err != nil {
		// Cannot happen for this struct; nsqlookupd answers OK in that case.
		return replyOK, nil
	}
	return reply, nil
}

func (c *conn) register(params []string) ([]byte, *clientError) {
	const cmd = "REGISTER"
	if !c.identified {
		return nil, fatal(nil, textMustIdentify)
	}
	topic, channel, cerr := topicChannel(cmd, params)
	if cerr != nil {
		return nil, cerr
	}
	if limit := c.srv.cfg.MaxRegistrations; c.regs.count+c.regs.added(topic, channel) > limit {
		return nil, errTooManyRegistrations(limit)
	}
	if err := c.srv.reg.Register(c.session, topic, channel); err != nil {
		return nil, errUnavailable(err)
	}
	c.regs.register(topic, channel)
	return replyOK, nil
}

func (c *conn) unregister(params []string) ([]byte, *clientError) {
	const cmd = "UNREGISTER"
	if !c.identified {
		return nil, fatal(nil, textMustIdentify)
	}
	topic, channel, cerr := topicChannel(cmd, params)
	if cerr != nil {
		return nil, cerr
	}
	if err := c.srv.reg.Unregister(c.session, topic, channel); err != nil {
		return nil, errUnavailable(err)
	}
	c.regs.unregister(topic, channel)
	return replyOK, nil
}

// topicChannel extracts and validates "topic [channel]". An empty channel
// parameter (from a double space) means no channel, as in nsqlookupd;
// parameters after the channel are ignored.
func topicChannel(cmd string, params []string) (topic, channel string, _ *clientError) {
	if len(params) == 0 {
		return "", "", errInsufficientParams(cmd)
	}
	topic = params[0]
	if len(params) >= 2 {
		channel = params[1]
	}
	if !fsm.ValidName(topic) {
		return "", "", errBadTopic(cmd, topic)
	}
	if channel != "" && !fsm.ValidName(channel) {
		return "", "", errBadChannel(cmd, channel)
	}
	return topic, channel, nil
}
