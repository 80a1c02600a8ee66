package httpapi

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/raftlookupd/raftlookupd/wire"
)

// backupCluster adds the backup endpoints' needs to the fake cluster.
type backupCluster struct {
	*fakeCluster
	mu       sync.Mutex
	file     []byte
	err      error
	restored []string
}

func (c *backupCluster) Backup(context.Context) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.file, c.err
}

func (c *backupCluster) Restore(_ context.Context, data []byte) (wire.RestoreResult, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return wire.RestoreResult{}, c.err
	}
	c.restored = append(c.restored, string(data))
	return wire.RestoreResult{BackupIndex: 7, BackupTerm: 2, Topics: 3, Channels: 4}, nil
}

func newBackupServer(t *testing.T, adminToken string) (*Server, *backupCluster) {
	reg := newFakeRegistry()
	cl := &backupCluster{fakeCluster: newFakeCluster(reg), file: []byte("RLKB\x01backup-bytes")}
	s := newTestServer(t, reg, cl, nil, func(c *Config) { c.AdminToken = adminToken })
	t.Cleanup(func() { s.Shutdown(context.Background()) })
	return s, cl
}

func TestBackupEndpoints(t *testing.T) {
	const remote, local = "192.0.2.7:40000", "127.0.0.1:40000"
	bearer := "Authorization: Bearer " + token
	for _, tc := range []struct {
		name, token, from, method, target, body string
		header                                  []string
		status                                  int
		want                                    string
	}{
		{"snapshot, no token set", "", remote, "GET", wire.PathSnapshot, "", nil, 200, "RLKB\x01backup-bytes"},
		{"snapshot without the token", token, local, "GET", wire.PathSnapshot, "", nil, 401, `{"message":"UNAUTHORIZED"}`},
		{"snapshot with the token", token, remote, "GET", wire.PathSnapshot, "", []string{bearer}, 200, "RLKB\x01backup-bytes"},
		{"remote restore, no token set", "", remote, "POST", wire.PathRestore, "file", nil, 403, ""},
		{"local restore, no token set", "", local, "POST", wire.PathRestore, "file", nil, 200,
			`{"backup_index":7,"backup_term":2,"topics":3,"channels":4}`},
		{"restore without the token", token, local, "POST", wire.PathRestore, "file", nil, 401, `{"message":"UNAUTHORIZED"}`},
		{"remote restore with the token", token, remote, "POST", wire.PathRestore, "file", []string{bearer}, 200, ""},
		{"restore is a POST", "", local, "GET", wire.PathRestore, "", nil, 405, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, cl := newBackupServer(t, tc.token)
			w := serveFrom(t, s, tc.from, tc.method, tc.target, tc.body, tc.header...)
			if w.Code != tc.status {
				t.Fatalf("%d %s, want %d", w.Code, w.Body, tc.status)
			}
			if tc.want != "" && w.Body.String() != tc.want {
				t.Errorf("body %q, want %q", w.Body, tc.want)
			}
			cl.mu.Lock()
			defer cl.mu.Unlock()
			if restored := len(cl.restored) > 0; restored != (tc.status == 200 && tc.method == "POST") {
				t.Errorf("restores reaching the cluster: %q", cl.restored)
			}
			if tc.status == 200 && tc.method == "GET" {
				if ct := w.Header().Get("Content-Type"); ct != "application/octet-stream" {
					t.Errorf("Content-Type %q", ct)
				}
			}
		})
	}
}

func TestBackupErrorsMapToStatuses(t *testing.T) {
	s, cl := newBackupServer(t, "")
	for err, status := range map[error]int{
		fmt.Errorf("%w: checksum", wire.ErrBadRequest):     400,
		fmt.Errorf("%w: no quorum", wire.ErrNoLeader):      503,
		fmt.Errorf("%w: too big", wire.ErrTooLarge):        413,
		fmt.Errorf("%w: stale", wire.ErrLeaderUnreachable): 503,
	} {
		cl.mu.Lock()
		cl.err = err
		cl.mu.Unlock()
		for _, method := range []string{"GET", "POST"} {
			target := map[string]string{"GET": wire.PathSnapshot, "POST": wire.PathRestore}[method]
			w := serveFrom(t, s, "127.0.0.1:1", method, target, "file")
			if w.Code != status || !strings.Contains(w.Body.String(), err.Error()) {
				t.Errorf("%s %s with %v: %d %s, want %d and the message", method, target, err, w.Code, w.Body, status)
			}
		}
	}
}

// A cluster that cannot take backups answers 501, not 404 or 500.
func TestBackupUnsupported(t *testing.T) {
	e := newTestEnv(t)
	for _, rq := range []request{get(wire.PathSnapshot), {method: "POST", target: wire.PathRestore, body: "x"}} {
		if resp := e.do(rq); resp.status != 501 {
			t.Errorf("%s %s: %d %s, want 501", rq.method, rq.target, resp.status, resp.body)
		}
	}
}
