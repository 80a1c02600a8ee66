package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"
)

// maxResponse bounds what is read of any answer: a status document of even a
// large cluster is a few kilobytes.
const maxResponse = 4 << 20

// maxMessage bounds an error message printed from a response.
const maxMessage = 300

// client calls one node's admin API.
type client struct {
	base  string // scheme://host:port, no trailing slash
	token string
	http  *http.Client
}

func newClient(addr, token string, timeout time.Duration) (*client, error) {
	base, err := baseURL(addr)
	if err != nil {
		return nil, err
	}
	if timeout <= 0 {
		return nil, fmt.Errorf("-timeout %v: must be positive", timeout)
	}
	return &client{base: base, token: token, http: &http.Client{Timeout: timeout}}, nil
}

// baseURL accepts host:port (plain HTTP, as nsqlookupd serves) or an http or
// https URL, for nodes behind a TLS-terminating proxy.
func baseURL(addr string) (string, error) {
	if addr == "" {
		return "", fmt.Errorf("-addr is empty")
	}
	if strings.Contains(addr, "://") {
		u, err := url.Parse(addr)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return "", fmt.Errorf("-addr %q: want host:port or an http(s)://host:port URL", addr)
		}
		return strings.TrimRight(u.Scheme+"://"+u.Host+u.EscapedPath(), "/"), nil
	}
	if _, port, err := net.SplitHostPort(addr); err != nil || port == "" {
		return "", fmt.Errorf("-addr %q: want host:port", addr)
	}
	return "http://" + addr, nil
}

// remoteError is a non-200 answer. Its text is "<status> <message>".
type remoteError struct {
	status  int
	message string
}

func (e *remoteError) Error() string { return fmt.Sprintf("%d %s", e.status, e.message) }

// newRemoteError takes the message of the API's {"message": "..."} body, or
// the first line of a body that is not JSON (a proxy's error page), or the
// status text.
func newRemoteError(code int, body []byte) *remoteError {
	var doc struct {
		Message string `json:"message"`
	}
	var msg string
	if err := json.Unmarshal(body, &doc); err == nil {
		msg = doc.Message
	} else {
		msg = firstLine(body)
	}
	msg = oneLine(msg, maxMessage)
	if msg == "" {
		msg = http.StatusText(code)
	}
	if code == http.StatusUnauthorized {
		msg += " (check -token or $" + tokenEnv + ")"
	}
	return &remoteError{status: code, message: msg}
}

// do sends in (if not nil) as JSON and returns the body of a 200 answer; any
// other status is a *remoteError.
func (c *client) do(method, path string, in any) ([]byte, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, body)
	if err != nil {
		return nil, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "raftlookupctl/"+version())
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err // *url.Error: names method and URL, never the token
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return nil, fmt.Errorf("%s %s: reading response: %w", method, req.URL, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, newRemoteError(resp.StatusCode, b)
	}
	if len(b) > maxResponse {
		return nil, fmt.Errorf("%s %s: response larger than %d bytes", method, req.URL, maxResponse)
	}
	return b, nil
}

func firstLine(b []byte) string {
	s := strings.TrimSpace(string(b))
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i]
	}
	return s
}

// oneLine makes remote text safe for one terminal line: control characters
// (newlines, tabs, escape sequences) become spaces, and it is cut to limit
// runes.
func oneLine(s string, limit int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == unicode.ReplacementChar {
			return ' '
		}
		return r
	}, s)
	s = strings.TrimSpace(s)
	if r := []rune(s); len(r) > limit {
		s = string(r[:limit]) + "..."
	}
	return s
}
