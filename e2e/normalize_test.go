package e2e

// Normalization of answers: per-run values become placeholders, lists are
// sorted (nsqlookupd's order is random), object key order is kept.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

var reHostname = regexp.MustCompile(`"hostname":"[^"]*"`)

// normalizeFrame replaces the per-target values of an IDENTIFY reply by
// placeholders: hostname always; broadcast address and ports when they are
// the expected ones (a wrong value stays visible). Key order and spacing are
// kept as sent.
func (s *session) normalizeFrame(p []byte) string {
	txt := string(p)
	if !strings.HasPrefix(txt, "{") {
		return txt
	}
	txt = reHostname.ReplaceAllString(txt, `"hostname":"<hostname>"`)
	txt = strings.Replace(txt, `"broadcast_address":"`+identifyBroadcast+`"`, `"broadcast_address":"<broadcast>"`, 1)
	txt = replaceNumberField(txt, "tcp_port", s.tcpPort, "<own tcp port>")
	txt = replaceNumberField(txt, "http_port", s.httpPort, "<own http port>")
	return txt
}

func replaceNumberField(txt, key string, val int, placeholder string) string {
	re := regexp.MustCompile(`"` + key + `":` + strconv.Itoa(val) + `([,}])`)
	return re.ReplaceAllString(txt, `"`+key+`":"`+placeholder+`"$1`)
}

func sortedList(v string) string {
	parts := strings.Split(v, ",")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

func (s *session) normalizeBody(pathq string, body []byte) string {
	if len(body) == 0 {
		return "body: (empty)"
	}
	root, err := parseOrdered(body)
	if err != nil {
		return fmt.Sprintf("body (not JSON): %q", body)
	}
	s.normalizeValue(root, "")
	if path, _, _ := strings.Cut(pathq, "?"); path == "/debug" && root.kind == 'o' {
		root.sortKeys() // a map: encoding/json orders its keys anyway
	}
	return "body: " + root.String()
}

// normalizeValue rewrites per-run values (remote addresses, ids, clocks,
// the target's own ports) and sorts every list (nsqlookupd's order is random).
// The parallel /nodes arrays topics and tombstones are sorted together.
func (s *session) normalizeValue(n *jnode, key string) {
	switch n.kind {
	case 's':
		n.raw = s.normalizeScalar(key, n.raw)
	case 'a':
		for _, v := range n.vals {
			s.normalizeValue(v, "")
		}
		if !n.keepOrder {
			sort.SliceStable(n.vals, func(i, j int) bool { return n.vals[i].String() < n.vals[j].String() })
		}
	case 'o':
		topics, tombs := n.field("topics"), n.field("tombstones")
		paired := topics != nil && tombs != nil && topics.kind == 'a' && tombs.kind == 'a' && len(topics.vals) == len(tombs.vals)
		if paired {
			topics.keepOrder, tombs.keepOrder = true, true
		}
		for i, k := range n.keys {
			s.normalizeValue(n.vals[i], k)
		}
		if paired {
			idx := make([]int, len(topics.vals))
			for i := range idx {
				idx[i] = i
			}
			sort.SliceStable(idx, func(a, b int) bool {
				ka := topics.vals[idx[a]].String() + tombs.vals[idx[a]].String()
				kb := topics.vals[idx[b]].String() + tombs.vals[idx[b]].String()
				return ka < kb
			})
			tv, bv := make([]*jnode, len(idx)), make([]*jnode, len(idx))
			for i, j := range idx {
				tv[i], bv[i] = topics.vals[j], tombs.vals[j]
			}
			topics.vals, tombs.vals = tv, bv
		}
	}
}

func (s *session) normalizeScalar(key, raw string) string {
	switch key {
	case "remote_address":
		var addr string
		if json.Unmarshal([]byte(raw), &addr) == nil {
			if label, ok := s.labels[addr]; ok {
				return quoteJSON("<conn " + label + ">")
			}
		}
		return quoteJSON("<unknown remote address>")
	case "id":
		return quoteJSON("<id>")
	case "last_update":
		return quoteJSON("<time>")
	case "tombstoned_at":
		if raw == zeroTimeNanos {
			return quoteJSON("<zero time>")
		}
		return quoteJSON("<time>")
	case "tcp_port":
		if raw == strconv.Itoa(s.tcpPort) {
			return quoteJSON("<own tcp port>")
		}
	case "http_port":
		if raw == strconv.Itoa(s.httpPort) {
			return quoteJSON("<own http port>")
		}
	}
	return raw
}

// ---------------------------------------------------------------------------
// order-preserving JSON

// jnode is a parsed JSON value that keeps object key order: 'o' object, 'a'
// array, 's' scalar (raw JSON text).
type jnode struct {
	kind      byte
	keys      []string
	vals      []*jnode
	raw       string
	keepOrder bool
}

func parseOrdered(b []byte) (*jnode, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	n, err := parseValue(dec)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data after JSON value")
	}
	return n, nil
}

func parseValue(dec *json.Decoder) (*jnode, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch v := tok.(type) {
	case json.Delim:
		switch v {
		case '{':
			n := &jnode{kind: 'o'}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				k, _ := kt.(string)
				val, err := parseValue(dec)
				if err != nil {
					return nil, err
				}
				n.keys = append(n.keys, k)
				n.vals = append(n.vals, val)
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return n, nil
		case '[':
			n := &jnode{kind: 'a'}
			for dec.More() {
				val, err := parseValue(dec)
				if err != nil {
					return nil, err
				}
				n.vals = append(n.vals, val)
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return n, nil
		}
		return nil, fmt.Errorf("unexpected delimiter %v", v)
	case string:
		return &jnode{kind: 's', raw: quoteJSON(v)}, nil
	case json.Number:
		return &jnode{kind: 's', raw: v.String()}, nil
	case bool:
		return &jnode{kind: 's', raw: strconv.FormatBool(v)}, nil
	case nil:
		return &jnode{kind: 's', raw: "null"}, nil
	}
	return nil, fmt.Errorf("unexpected token %T", tok)
}

func quoteJSON(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.Encode(s)
	return strings.TrimSuffix(b.String(), "\n")
}

func (n *jnode) field(k string) *jnode {
	for i, key := range n.keys {
		if key == k {
			return n.vals[i]
		}
	}
	return nil
}

func (n *jnode) sortKeys() {
	idx := make([]int, len(n.keys))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return n.keys[idx[a]] < n.keys[idx[b]] })
	keys, vals := make([]string, len(idx)), make([]*jnode, len(idx))
	for i, j := range idx {
		keys[i], vals[i] = n.keys[j], n.vals[j]
	}
	n.keys, n.vals = keys, vals
}

func (n *jnode) String() string {
	var b strings.Builder
	n.write(&b)
	return b.String()
}

func (n *jnode) write(b *strings.Builder) {
	switch n.kind {
	case 's':
		b.WriteString(n.raw)
	case 'a':
		b.WriteByte('[')
		for i, v := range n.vals {
			if i > 0 {
				b.WriteByte(',')
			}
			v.write(b)
		}
		b.WriteByte(']')
	case 'o':
		b.WriteByte('{')
		for i, k := range n.keys {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(quoteJSON(k))
			b.WriteByte(':')
			n.vals[i].write(b)
		}
		b.WriteByte('}')
	}
}
