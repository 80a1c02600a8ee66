package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/raft"

	"github.com/raftlookupd/raftlookupd/fsm"
)

// testBackup is a real backup file: two topics, one with a channel.
func testBackup(t *testing.T) []byte {
	t.Helper()
	f := fsm.New()
	for i, c := range []fsm.Command{
		{Op: fsm.OpCreateChannel, Topic: "orders", Channel: "billing"},
		{Op: fsm.OpCreateTopic, Topic: "events"},
	} {
		data, err := c.Encode()
		if err != nil {
			t.Fatal(err)
		}
		f.Apply(&raft.Log{Index: uint64(i + 1), Term: 1, Data: data})
	}
	snap, index := f.Registry().Backup()
	return fsm.EncodeBackup(fsm.Backup{Index: index, Term: 4, Snapshot: snap})
}

func TestSnapshotSave(t *testing.T) {
	file := testBackup(t)
	api := newFakeAPI(t, 200, string(file))
	path := filepath.Join(t.TempDir(), "backup.snap")
	code, stdout, stderr := runCtl(map[string]string{tokenEnv: secret}, "-addr", api.addr, "snapshot", "save", path)
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	if want := "saved " + path + ": index 2, term 4, 2 topics, 1 channels, "; !strings.HasPrefix(stdout, want) {
		t.Errorf("stdout %q, want prefix %q", stdout, want)
	}
	got, err := os.ReadFile(path)
	if err != nil || string(got) != string(file) {
		t.Fatalf("file holds %d bytes (%v), want the %d sent", len(got), err, len(file))
	}
	if reqs := api.requests(); len(reqs) != 1 || reqs[0].Method != "GET" || reqs[0].Path != "/cluster/snapshot" || reqs[0].Auth != "Bearer "+secret {
		t.Errorf("requests %+v", reqs)
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Errorf("directory holds %d entries, want the backup alone", len(entries))
	}
}

// A damaged answer is never written: an existing backup at the path stays.
func TestSnapshotSaveRefusesBadBackup(t *testing.T) {
	file := testBackup(t)
	api := newFakeAPI(t, 200, string(file[:len(file)-1]))
	path := filepath.Join(t.TempDir(), "backup.snap")
	if err := os.WriteFile(path, []byte("previous"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCtl(nil, "-addr", api.addr, "snapshot", "save", path)
	if code != 1 || !strings.Contains(stderr, "the node sent a bad backup") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	if got, _ := os.ReadFile(path); string(got) != "previous" {
		t.Errorf("the previous file was replaced by %q", got)
	}
}

func TestSnapshotRestore(t *testing.T) {
	file := testBackup(t)
	path := filepath.Join(t.TempDir(), "backup.snap")
	if err := os.WriteFile(path, file, 0o600); err != nil {
		t.Fatal(err)
	}
	api := newFakeAPI(t, 200, `{"backup_index":2,"backup_term":4,"topics":2,"channels":1}`)
	code, stdout, stderr := runCtl(nil, "-addr", api.addr, "snapshot", "restore", path)
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	if want := "restored " + path + ": index 2, term 4, 2 topics, 1 channels;"; !strings.HasPrefix(stdout, want) {
		t.Errorf("stdout %q, want prefix %q", stdout, want)
	}
	reqs := api.requests()
	if len(reqs) != 1 || reqs[0].Method != "POST" || reqs[0].Path != "/cluster/restore" ||
		reqs[0].ContentType != "application/octet-stream" || reqs[0].Body != string(file) {
		t.Errorf("requests %+v", reqs)
	}

	// A damaged file never reaches the node.
	if err := os.WriteFile(path, file[:len(file)-3], 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = runCtl(nil, "-addr", api.addr, "snapshot", "restore", path)
	if code != 1 || !strings.Contains(stderr, "truncated") || len(api.requests()) != 1 {
		t.Errorf("damaged file: exit %d, stderr %q, %d requests", code, stderr, len(api.requests()))
	}

	// The node's refusal is reported as for every command.
	if err := os.WriteFile(path, file, 0o600); err != nil {
		t.Fatal(err)
	}
	api = newFakeAPI(t, 403, `{"message":"membership and leadership changes need -admin-token, or a request from loopback"}`)
	code, _, stderr = runCtl(nil, "-addr", api.addr, "snapshot", "restore", path)
	if code != 1 || !strings.HasPrefix(stderr, "raftlookupctl: snapshot: 403 ") {
		t.Errorf("refused: exit %d, stderr %q", code, stderr)
	}
}

func TestSnapshotInspect(t *testing.T) {
	path := filepath.Join(t.TempDir(), "backup.snap")
	if err := os.WriteFile(path, testBackup(t), 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCtl(nil, "snapshot", "inspect", path)
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	for _, line := range []string{"index      2\n", "term       4\n", "members    0\n", "sessions   0\n", "topics     2\n", "channels   1\n"} {
		if !strings.Contains(stdout, line) {
			t.Errorf("stdout lacks %q:\n%s", line, stdout)
		}
	}
	if code, _, stderr := runCtl(nil, "snapshot", "inspect", filepath.Join(t.TempDir(), "none")); code != 1 || stderr == "" {
		t.Errorf("missing file: exit %d, stderr %q", code, stderr)
	}
	if code, _, stderr := runCtl(nil, "snapshot", "frob", path); code != 2 || !strings.Contains(stderr, `unknown action "frob"`) {
		t.Errorf("unknown action: exit %d, stderr %q", code, stderr)
	}
	if code, _, _ := runCtl(nil, "snapshot", "save"); code != 2 {
		t.Errorf("missing FILE: exit %d, want 2", code)
	}
}
