package e2e

// The nsqd protocol V1 half of TestHostileClients' generators: random
// magic, IDENTIFY frames with odd lengths and bodies, hostile REGISTER and
// UNREGISTER lines, garbage, and REGISTER floods.

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/nsqio/go-nsq"
)

// tcpOne opens one connection to a random node's TCP port and misbehaves.
func (h *hostile) tcpOne(r *rand.Rand) {
	n := h.node(r)
	c, err := net.DialTimeout("tcp", n.TCPAddr(), rawTimeout)
	if err != nil {
		h.count("tcp", "dial-error")
		return
	}
	defer c.Close()
	switch p := r.IntN(100); {
	case p < 10:
		b := h.bytes(r, 1+size(r, 1<<20))
		h.triedFrame(b)
		h.count("tcp-garbage", rawWriteRead(c, b, 2*time.Second))
	case p < 20:
		h.tcpFlood(r, c)
	default:
		h.tcpSession(r, c)
	}
}

// rawWriteRead writes b, then reads until the server closes or is silent.
func rawWriteRead(c net.Conn, b []byte, wait time.Duration) string {
	_ = c.SetDeadline(time.Now().Add(wait))
	go func() { _, _ = c.Write(b) }()
	buf := make([]byte, 4096)
	got := 0
	for {
		k, err := c.Read(buf)
		got += k
		if err != nil {
			switch {
			case isTimeout(err):
				return "silent"
			case got > 0:
				return "answered-closed"
			default:
				return "closed"
			}
		}
	}
}

// tcpReply reads one response frame. Frames over 1 MiB are a violation:
// no answer is that large.
func tcpReply(c net.Conn) (string, error) {
	var sz [4]byte
	if _, err := io.ReadFull(c, sz[:]); err != nil {
		return "", err
	}
	n := binary.BigEndian.Uint32(sz[:])
	if n > 1<<20 {
		return "", fmt.Errorf("frame of %d bytes", n)
	}
	b := make([]byte, n)
	_, err := io.ReadFull(c, b)
	return string(b), err
}

func replyClass(s string) string {
	switch {
	case s == "OK":
		return "OK"
	case strings.HasPrefix(s, "{"):
		return "identified"
	case strings.HasPrefix(s, "E_"):
		if i := strings.IndexByte(s, ' '); i > 0 {
			return s[:i]
		}
		return s
	default:
		return "other"
	}
}

// identifyBody is an IDENTIFY body: usually the four fields nsqd sends,
// each sometimes hostile; sometimes random JSON or bytes.
func (h *hostile) identifyBody(r *rand.Rand) []byte {
	str := func(valid string) any {
		switch r.IntN(8) {
		case 0:
			return h.hostileName(r, false)
		case 1:
			return r.IntN(100)
		case 2:
			return nil
		default:
			return valid
		}
	}
	port := func() any {
		switch r.IntN(8) {
		case 0:
			return []any{-1, 0, 65536, 1 << 40, -1 << 40, "4150", 1.5}[r.IntN(7)]
		default:
			return 1 + r.IntN(65535)
		}
	}
	switch r.IntN(10) {
	case 0:
		return append([]byte("{\x01"), h.bytes(r, size(r, 64<<10))...)
	case 1:
		var nest any = map[string]any{"x": 1}
		for range r.IntN(2000) {
			nest = []any{nest}
		}
		b, _ := json.Marshal(map[string]any{"broadcast_address": nest, "tcp_port": 1, "http_port": 2, "version": "1.3.0"})
		return b
	default:
		doc := map[string]any{
			"broadcast_address": str("hostile." + strconv.Itoa(r.IntN(50))),
			"hostname":          str("hostile"),
			"tcp_port":          port(),
			"http_port":         port(),
			"version":           str("1.3.0"),
		}
		if r.IntN(5) == 0 {
			doc[string(h.bytes(r, 1+r.IntN(20)))] = string(h.bytes(r, r.IntN(1000)))
		}
		b, _ := json.Marshal(doc)
		return b
	}
}

// identifyFrame is IDENTIFY with a length that is usually right, sometimes
// negative, huge, short or long.
func (h *hostile) identifyFrame(r *rand.Rand) []byte {
	body := h.identifyBody(r)
	n := uint32(len(body))
	switch r.IntN(10) {
	case 0:
		n = 0x80000000 | uint32(r.IntN(1<<20))
	case 1:
		n = uint32(1<<20 + r.IntN(1<<30))
	case 2:
		n = uint32(r.IntN(len(body) + 1))
	case 3:
		n = uint32(len(body) + 1 + r.IntN(100))
	}
	out := []byte("IDENTIFY\n")
	out = binary.BigEndian.AppendUint32(out, n)
	return append(out, body...)
}

// tcpSession: a magic (usually right), then a few random commands, one at a
// time, each answer read before the next.
func (h *hostile) tcpSession(r *rand.Rand, c net.Conn) {
	magic := []string{"  V1", "  V1", "  V1", "  V2", "V1  ", "\x00\x00\x00\x00", "  v1"}[r.IntN(7)]
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, magic); err != nil {
		h.count("tcp-command", "write-error")
		return
	}
	identified := false
	// partial: the last frame ended without a newline, so the server still
	// holds the start of a line that the next frame completes (a long-line
	// "REGISTER REGISTER ..." then "REGISTER x\n" registers topic
	// "REGISTER"): the next answer is not that frame's alone.
	partial := false
	var carry []byte // the unfinished line the server holds
	clean := true
	for range 1 + r.IntN(12) {
		var frame []byte
		kind := ""
		var topic, channel string
		checkable := false
		switch p := r.IntN(100); {
		case p < 30 || (!identified && p < 50):
			kind, frame = "IDENTIFY", h.identifyFrame(r)
		case p < 70:
			kind = []string{"REGISTER", "UNREGISTER"}[r.IntN(2)]
			params := []string{h.hostileName(r, false)}
			if r.IntN(2) == 0 {
				params = append(params, h.hostileName(r, true))
			}
			if r.IntN(15) == 0 {
				params = append(params, "x", "y")
			}
			if r.IntN(15) == 0 {
				params = nil
			}
			frame = []byte(kind + " " + strings.Join(params, " ") + "\n")
			checkable = identified && len(params) > 0 && len(params) <= 2 && !strings.ContainsAny(strings.Join(params, ""), " \t\r\n")
			if len(params) > 0 {
				topic = params[0]
			}
			if len(params) > 1 {
				channel = params[1]
			}
		case p < 80:
			kind, frame = "PING", []byte("PING\n")
		case p < 90:
			kind, frame = "random", append(append([]byte(nil), h.bytes(r, size(r, 8<<10))...), '\n')
		default:
			kind, frame = "long-line", []byte(strings.Repeat("REGISTER ", 1+r.IntN(2000)))
		}
		if partial || !clean {
			checkable = false
		}
		// A connection stays clean while every frame was one whole command
		// line (or an IDENTIFY the server took whole, below); after
		// anything else, the next answers may not be this frame's own.
		if kind != "IDENTIFY" {
			clean = clean && kind != "random" && kind != "long-line" &&
				bytes.Count(frame, []byte{'\n'}) == 1 && bytes.HasSuffix(frame, []byte{'\n'})
		}
		partial = len(frame) > 0 && frame[len(frame)-1] != '\n'
		joined := append(carry, frame...)
		h.triedFrame(joined)
		carry = nil
		if i := bytes.LastIndexByte(joined, '\n'); i < len(joined)-1 {
			carry = append([]byte(nil), joined[i+1:]...)
		}
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write(frame); err != nil {
			h.count("tcp-command", kind+":closed")
			return
		}
		reply, err := tcpReply(c)
		if err != nil {
			if strings.HasPrefix(err.Error(), "frame of") {
				h.violate("TCP %s answered with a %v", kind, err)
			}
			h.count("tcp-command", kind+":"+map[bool]string{true: "silent", false: "closed"}[isTimeout(err)])
			return
		}
		rc := replyClass(reply)
		h.count("tcp-command", kind+":"+rc)
		if kind == "IDENTIFY" {
			identified = identified || rc == "identified"
			clean = clean && rc == "identified"
		}
		if kind == "REGISTER" && checkable && rc == "OK" &&
			(!nsq.IsValidTopicName(topic) || (channel != "" && !nsq.IsValidChannelName(channel))) {
			h.violate("TCP REGISTER %.200q %.200q answered OK", topic, channel)
		}
	}
}

// tcpFlood: a valid IDENTIFY, then hundreds of pipelined REGISTERs of pool
// names (some repeated), then every answer.
func (h *hostile) tcpFlood(r *rand.Rand, c net.Conn) {
	body, _ := json.Marshal(map[string]any{"broadcast_address": "hflood." + strconv.Itoa(r.IntN(1000)), "hostname": "hflood",
		"tcp_port": 1 + r.IntN(65535), "http_port": 1 + r.IntN(65535), "version": "1.3.0"})
	frame := []byte("  V1IDENTIFY\n")
	frame = binary.BigEndian.AppendUint32(frame, uint32(len(body)))
	frame = append(frame, body...)
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := c.Write(frame); err != nil {
		h.count("tcp-flood", "closed")
		return
	}
	if reply, err := tcpReply(c); err != nil || replyClass(reply) != "identified" {
		h.count("tcp-flood", "identify-refused")
		return
	}
	n := 50 + r.IntN(250)
	var buf []byte
	for range n {
		t, ch := poolTopic(r), ""
		if r.IntN(2) == 0 {
			ch = poolChannel(r)
		}
		h.tried(t, ch)
		buf = append(buf, "REGISTER "+strings.TrimSpace(t+" "+ch)+"\n"...)
	}
	go func() { _, _ = c.Write(buf) }()
	for i := 0; i < n; i++ {
		reply, err := tcpReply(c)
		if err != nil {
			h.count("tcp-flood", fmt.Sprintf("cut-after-%s", bucket(i)))
			return
		}
		h.count("tcp-flood-reply", replyClass(reply))
	}
	h.count("tcp-flood", "all-answered")
}

func bucket(i int) string {
	switch {
	case i == 0:
		return "0"
	case i < 100:
		return "<100"
	default:
		return ">=100"
	}
}
