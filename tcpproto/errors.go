package tcpproto

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/raftlookupd/raftlookupd/wire"
)

// ErrAlreadyServing is returned by Serve when another Serve call on the
// same Server is still running.
var ErrAlreadyServing = errors.New("tcpproto: server already serving")

// clientError is a reply that ends the connection: its text is written as
// one frame, then the connection is closed (nsqlookupd has no non-fatal
// errors on this port). cause, if any, is only logged.
type clientError struct {
	text  string
	cause error
}

func (e *clientError) Error() string { return e.text }

func (e *clientError) Unwrap() error { return e.cause }

func fatal(cause error, text string) *clientError {
	return &clientError{text: text, cause: cause}
}

// Texts nsqlookupd 1.3.0 sends, byte for byte (docs/COMPATIBILITY.md#tcp-errors). Clients
// tell errors from replies only by the E_ prefix, but operators grep them.
const (
	textBadProtocol       = "E_BAD_PROTOCOL"
	textIdentifyAgain     = "E_INVALID cannot IDENTIFY again"
	textBodySizeRead      = "E_BAD_BODY IDENTIFY failed to read body size"
	textBodyRead          = "E_BAD_BODY IDENTIFY failed to read body"
	textBodyDecode        = "E_BAD_BODY IDENTIFY failed to decode JSON body"
	textMissingFields     = "E_BAD_BODY IDENTIFY missing fields"
	textMustIdentify      = "E_INVALID client must IDENTIFY"
	textInvalidCommandPre = "E_INVALID invalid command "
)

func errInvalidCommand(name string) *clientError {
	return fatal(nil, textInvalidCommandPre+name)
}

func errInsufficientParams(cmd string) *clientError {
	return fatal(nil, "E_INVALID "+cmd+" insufficient number of params")
}

func errBadTopic(cmd, topic string) *clientError {
	return fatal(nil, "E_BAD_TOPIC "+cmd+" topic name '"+topic+"' is not valid")
}

func errBadChannel(cmd, channel string) *clientError {
	return fatal(nil, "E_BAD_CHANNEL "+cmd+" channel name '"+channel+"' is not valid")
}

// Texts of the deliberate departures (docs/COMPATIBILITY.md#diff-tcp-limits): nsqlookupd
// crashes or grows without bound where these are sent.

func errBodySize(n int32) *clientError {
	return fatal(nil, "E_BAD_BODY IDENTIFY invalid body size "+strconv.Itoa(int(n)))
}

func errBadIdentify(err error) *clientError {
	return fatal(err, "E_BAD_BODY IDENTIFY "+err.Error())
}

func errLineTooLong(limit int) *clientError {
	return fatal(nil, fmt.Sprintf("E_INVALID line too long (max %d bytes)", limit))
}

func errTooManyRegistrations(limit int) *clientError {
	return fatal(nil, fmt.Sprintf("E_INVALID too many registrations on this connection (max %d)", limit))
}

func tooManyConnectionsText(limit int) string {
	return fmt.Sprintf("E_INVALID too many connections (max %d)", limit)
}

// errUnavailable reports a Registry refusal (lease expired, queue full,
// shutting down). The connection is closed so nsqd reconnects, possibly to
// a healthier node, and re-registers everything.
func errUnavailable(err error) *clientError {
	if errors.Is(err, wire.ErrLimit) {
		// A cap, not an outage: nsqd treats any E_INVALID as fatal for
		// the connection, as it should here.
		return fatal(err, "E_INVALID "+err.Error())
	}
	return fatal(err, "E_UNAVAILABLE "+err.Error())
}
