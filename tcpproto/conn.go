package tcpproto

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"time"

	"github.com/raftlookupd/raftlookupd/fsm"
)

const magicV1 = "  V1"

// conn is one client connection. Only its own goroutine touches its fields,
// except nc, which the Server may Close from outside to end the goroutine.
type conn struct {
	srv    *Server
	nc     net.Conn
	remote string // the peer id nsqlookupd uses: the socket's remote ip:port
	br     *bufio.Reader
	wbuf   []byte

	identified bool
	session    fsm.SessionID
	regs       registrations
}

func newConn(s *Server, nc net.Conn) *conn {
	return &conn{srv: s, nc: nc, remote: nc.RemoteAddr().String()}
}

// serve runs the connection to its end, then performs the close cleanup
// exactly once: this is the only place a session is closed.
func (c *conn) serve() {
	defer c.srv.wg.Done()

	log := c.srv.log
	log.Debug("client connected", "remote", c.remote)
	err := c.run()
	c.nc.Close()
	// Untracked before the session closes, so whoever sees CloseSession
	// also sees the connection count drop.
	c.srv.untrack(c)
	if c.identified {
		c.srv.reg.CloseSession(c.session)
	}
	if log.IsDebug() {
		log.Debug("client disconnected", "remote", c.remote, "session", c.sessionString(),
			"registrations", c.regs.count, "reason", closeReason(err))
	}
}

func (c *conn) sessionString() string {
	if !c.identified {
		return ""
	}
	return c.session.String()
}

// run reads the magic, then one command line at a time until an error; a
// clientError has already been sent when run returns it.
func (c *conn) run() error {
	// The buffer is the line limit: ReadSlice never grows it, so an endless
	// line costs MaxLineBytes and no more.
	c.br = bufio.NewReaderSize(c.nc, c.srv.cfg.MaxLineBytes)

	// No deadline on the magic, as in nsqlookupd; MaxConnections bounds how
	// many silent sockets can be held open.
	var magic [len(magicV1)]byte
	if _, err := io.ReadFull(c.br, magic[:]); err != nil {
		return err
	}
	if string(magic[:]) != magicV1 {
		return c.fail(fatal(nil, textBadProtocol))
	}

	for {
		raw, err := c.br.ReadSlice('\n')
		if err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				return c.fail(errLineTooLong(c.srv.cfg.MaxLineBytes))
			}
			// EOF or reset: a trailing line without "\n" is dropped
			// unexecuted, as nsqlookupd's ReadString loop does. Replies
			// already owed still go out.
			return errors.Join(err, c.flush())
		}
		// The copy to string matters: IDENTIFY reads its body through the
		// same buffer, which would overwrite raw.
		line := strings.TrimSpace(string(raw))
		reply, cerr := c.exec(strings.Split(line, " "))
		if cerr != nil {
			return c.fail(cerr)
		}
		c.queue(reply)
		// Replies to pipelined commands leave in one write; a lock-step
		// client such as nsqd has nothing more buffered, so its reply
		// leaves at once.
		if c.br.Buffered() == 0 || len(c.wbuf) >= maxPendingReplies {
			if err := c.flush(); err != nil {
				return err
			}
		}
	}
}

// maxPendingReplies bounds the replies held back while pipelined input is
// still buffered.
const maxPendingReplies = 32 << 10

// fail writes a fatal error's frame after any pending replies and returns
// the error that ends run.
func (c *conn) fail(ce *clientError) error {
	c.queue([]byte(ce.text))
	if err := c.flush(); err != nil {
		return errors.Join(ce, err)
	}
	return ce
}

// queue appends one response frame to the pending replies.
func (c *conn) queue(payload []byte) {
	c.wbuf = binary.BigEndian.AppendUint32(c.wbuf, uint32(len(payload)))
	c.wbuf = append(c.wbuf, payload...)
}

// flush writes the pending replies in one write.
func (c *conn) flush() error {
	if len(c.wbuf) == 0 {
		return nil
	}
	defer func() { c.wbuf = c.wbuf[:0] }()
	if err := c.nc.SetWriteDeadline(time.Now().Add(c.srv.cfg.WriteTimeout)); err != nil {
		return err
	}
	_, err := c.nc.Write(c.wbuf)
	return err
}

func closeReason(err error) string {
	var ce *clientError
	switch {
	case err == nil:
		return "unknown"
	case errors.As(err, &ce):
		if ce.cause != nil {
			return ce.text + " - " + ce.cause.Error()
		}
		return ce.text
	case errors.Is(err, io.EOF):
		return "client closed"
	case errors.Is(err, net.ErrClosed):
		return "closed by server"
	default:
		return err.Error()
	}
}
