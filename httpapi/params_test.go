package httpapi

import (
	"net/url"
	"strings"
	"testing"
)

// TestParamsMatchParseQuery holds the in-place search of plain queries to
// url.ParseQuery: the same error, and the same first value for every key.
func TestParamsMatchParseQuery(t *testing.T) {
	queries := []string{
		"", "topic=t", "topic=t&topic=u", "topic=&topic=u", "topic", "topic&topic=u",
		"&&topic=t&&", "=x&topic=t", "a=b=c&topic=t=u", "consistency=stale&topic=t",
		"topic=a%20b", "topic=a+b", "topic=t;x=y", "topic=%zz", "topic=t&x=%",
		"TOPIC=t", "topic=t#frag", "x=1&" + strings.Repeat("y&", 3000) + "topic=t",
		strings.Repeat("&", 10000) + "topic=t",
	}
	keys := []string{"topic", "consistency", "x", "", "TOPIC", "a"}
	for _, q := range queries {
		want, wantErr := url.ParseQuery(q)
		got, err := parseParams(q)
		if (err != nil) != (wantErr != nil) {
			t.Errorf("%.40q: error %v, url.ParseQuery's %v", q, err, wantErr)
			continue
		}
		if err != nil {
			continue
		}
		for _, k := range keys {
			v, ok := got.get(k)
			wv, wok := want[k]
			if ok != wok || (ok && v != wv[0]) {
				t.Errorf("%.40q: get(%q) = %q, %v; url.ParseQuery gives %q, %v", q, k, v, ok, wv, wok)
			}
		}
	}
}
