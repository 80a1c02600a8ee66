package httpapi

import (
	"io"
	"net/http"
	"net/url"

	"github.com/raftlookupd/raftlookupd/wire"
)

// maxDiscardBody bounds how much of an ignored request body is read.
// nsqlookupd reads the whole body into memory; reading a bounded amount keeps
// the connection reusable for normal clients without letting one request
// stream forever. net/http closes the connection if more remains.
const maxDiscardBody = 1 << 20

// params is a request's query string. Parameters come only from the query,
// never from a form body, and the first of repeated values wins.
type params url.Values

// queryParams parses the query the way nsqlookupd does for endpoints that take
// parameters: an unparsable query (bad % escape, ';') is 400 INVALID_REQUEST.
// The body is then read and ignored, as nsqlookupd does.
func queryParams(r *http.Request) (params, *apiError) {
	v, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, errInvalidRequest
	}
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, maxDiscardBody))
	}
	return params(v), nil
}

// lenientParams is for endpoints where nsqlookupd never looks at the query
// (/topics, /nodes, /debug): a broken query must not fail them, so whatever
// parsed is used.
func lenientParams(r *http.Request) params {
	v, _ := url.ParseQuery(r.URL.RawQuery)
	return params(v)
}

// get returns the first value of key and whether key was present at all:
// "?topic=" is present and empty, which is not "missing".
func (p params) get(key string) (string, bool) {
	v, ok := p[key]
	if !ok || len(v) == 0 {
		return "", false
	}
	return v[0], true
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
		return nil, "", apiErr
	}
	topic, ok := p.get("topic")
	if !ok {
		return nil, "", errMissingTopic
	}
	return p, topic, nil
}
