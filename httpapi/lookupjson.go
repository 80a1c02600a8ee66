package httpapi

import (
	"encoding/json"
	"strconv"

	"github.com/raftlookupd/raftlookupd/fsm"
)

// rawJSON is a response body encoded already; writeV1 sends it as it is.
type rawJSON []byte

// appendLookup appends the /lookup body, byte for byte what json.Marshal
// gives for lookupResponse, without reflection: /lookup is the endpoint
// consumers poll, and encoding was a fifth of its cost.
func appendLookup(b []byte, channels []string, producers []fsm.PeerInfo) []byte {
	b = append(b, `{"channels":[`...)
	for i, ch := range channels {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, ch)
	}
	b = append(b, `],"producers":[`...)
	for i, p := range producers {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"remote_address":`...)
		b = appendJSONString(b, p.RemoteAddress)
		b = append(b, `,"hostname":`...)
		b = appendJSONString(b, p.Hostname)
		b = append(b, `,"broadcast_address":`...)
		b = appendJSONString(b, p.BroadcastAddress)
		b = append(b, `,"tcp_port":`...)
		b = strconv.AppendInt(b, int64(p.TCPPort), 10)
		b = append(b, `,"http_port":`...)
		b = strconv.AppendInt(b, int64(p.HTTPPort), 10)
		b = append(b, `,"version":`...)
		b = appendJSONString(b, p.Version)
		b = append(b, '}')
	}
	return append(b, "]}"...)
}

// lookupSize estimates appendLookup's length, so one allocation holds it.
func lookupSize(channels []string, producers []fsm.PeerInfo) int {
	n := 32
	for _, ch := range channels {
		n += len(ch) + 3
	}
	for _, p := range producers {
		n += 120 + len(p.RemoteAddress) + len(p.Hostname) + len(p.BroadcastAddress) + len(p.Version)
	}
	return n
}

// appendJSONString appends s as encoding/json does. Names and addresses are
// plain ASCII; anything else (escapes, HTML characters, non-ASCII, invalid
// UTF-8) goes through encoding/json itself, so the two can never differ.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always marshals
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
