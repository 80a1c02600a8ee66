package httpapi

import (
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/raftlookupd/raftlookupd/wire"
)

// maxDiscardBody bounds how much of an ignored request body is read.
// nsqlookupd reads the whole body into memory; reading a bounded amount keeps
// the connection reusable for normal clients without letting one request
// stream forever. net/http closes the connection if more remains.
const maxDiscardBody = 1 << 20

// params is a request's query string. Parameters come only from the query,
// never from a form body, and the first of repeated values wins.
//
// A query with nothing to unescape (no '%', '+' or ';': every lookup a
// consumer sends) is kept as it is and searched in place, so a read parses
// nothing into maps; any other is parsed by url.ParseQuery. Both give the
// same values (TestParamsMatchParseQuery).
type params struct {
	raw    string
	values url.Values
}

// plainQueryMax bounds the queries searched in place: far below the 10,000
// parameters over which url.ParseQuery fails, so that limit stays its own.
const plainQueryMax = 4096

func parseParams(raw string) (params, error) {
	if len(raw) <= plainQueryMax && !strings.ContainsAny(raw, "%+;") {
		return params{raw: raw}, nil
	}
	v, err := url.ParseQuery(raw)
	return params{values: v}, err
}

// queryParams parses the query the way nsqlookupd does for endpoints that take
// parameters: an unparsable query (bad % escape, ';') is 400 INVALID_REQUEST.
// The body is then read and ignored, as nsqlookupd does.
func queryParams(r *http.Request) (params, *apiError) {
	p, err := parseParams(r.URL.RawQuery)
	if err != nil {
		return params{}, errInvalidRequest
	}
	if r.Body != nil && r.Body != http.NoBody {
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, maxDiscardBody))
	}
	return p, nil
}

// lenientParams is for endpoints where nsqlookupd never looks at the query
// (/topics, /nodes, /debug): a broken query must not fail them, so whatever
// parsed is used.
func lenientParams(r *http.Request) params {
	p, _ := parseParams(r.URL.RawQuery)
	return p
}

// get returns the first value of key and whether key was present at all:
// "?topic=" is present and empty, which is not "missing".
func (p params) get(key string) (string, bool) {
	if p.values != nil {
		v, ok := p.values[key]
		if !ok || len(v) == 0 {
			return "", false
		}
		return v[0], true
	}
	for q := p.raw; q != ""; {
		var pair string
		pair, q, _ = strings.Cut(q, "&")
		if pair == "" {
			continue // url.ParseQuery skips empty pairs
		}
		k, v, _ := strings.Cut(pair, "=")
		if k == key {
			return v, true
		}
	}
	return "", false
}

// consistency returns the requested read level, def when absent.
func (p params) consistency(def wire.Consistency) (wire.Consistency, *apiError) {
	s, ok := p.get("consistency")
	if !ok {
		return def, nil
	}
	c, err := wire.ParseConsistency(s)
	if err != nil {
		return "", errInvalidConsistency
	}
	return c, nil
}

// topicParam parses the query and returns it with its required "topic"
// (present, possibly empty): 400 INVALID_REQUEST or MISSING_ARG_TOPIC
// otherwise, in nsqlookupd's order.
func topicParam(r *http.Request) (params, string, *apiError) {
	p, apiErr := queryParams(r)
	if apiErr != nil {
		return params{}, "", apiErr
	}
	topic, ok := p.get("topic")
	if !ok {
		return params{}, "", errMissingTopic
	}
	return p, topic, nil
}
