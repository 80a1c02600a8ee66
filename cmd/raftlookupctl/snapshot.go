package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/raftlookupd/raftlookupd/fsm"
	"github.com/raftlookupd/raftlookupd/wire"
)

// snapshotTimeout is the request timeout of snapshot save and restore when
// -timeout keeps its default: a restore waits until a quorum installed it.
const snapshotTimeout = 70 * time.Second

// runSnapshot is "snapshot save FILE", "snapshot restore FILE" and
// "snapshot inspect FILE". Inspect reads the file only.
func runSnapshot(inv *invocation, args []string) error {
	pos, err := inv.parse(newFlagSet("snapshot"), args, 2, 2)
	if err != nil {
		return err
	}
	action, path := pos[0], pos[1]
	switch action {
	case "save":
		return snapshotSave(inv, path)
	case "restore":
		return snapshotRestore(inv, path)
	case "inspect":
		return snapshotInspect(inv, path)
	}
	return usagef("unknown action %q: want save, restore or inspect", action)
}

func (inv *invocation) snapshotClient() (*client, error) {
	if inv.globals.timeout == defaultTimeout {
		inv.globals.timeout = snapshotTimeout
	}
	return inv.client()
}

// snapshotSave downloads a backup, checks it completely, and writes it to
// path atomically: a file at path is always a whole backup.
func snapshotSave(inv *invocation, path string) error {
	c, err := inv.snapshotClient()
	if err != nil {
		return err
	}
	data, err := c.raw(http.MethodGet, wire.PathSnapshot, nil)
	if err != nil {
		return err
	}
	b, info, err := fsm.DecodeBackup(data)
	if err != nil {
		return fmt.Errorf("the node sent a bad backup: %w", err)
	}
	if err := writeFileAtomic(path, data); err != nil {
		return err
	}
	return inv.printf("saved %s: index %d, term %d, %d topics, %d channels, %d bytes\n",
		path, b.Index, b.Term, info.Topics, info.Channels, len(data))
}

// snapshotRestore checks the file before sending it, so a damaged backup
// never reaches the cluster.
func snapshotRestore(inv *invocation, path string) error {
	data, err := readBackupFile(path)
	if err != nil {
		return err
	}
	if _, _, err := fsm.DecodeBackup(data); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	c, err := inv.snapshotClient()
	if err != nil {
		return err
	}
	body, err := c.raw(http.MethodPost, wire.PathRestore, data)
	if err != nil {
		return err
	}
	var res wire.RestoreResult
	if err := json.Unmarshal(body, &res); err != nil {
		return fmt.Errorf("invalid restore document: %w", err)
	}
	return inv.printf("restored %s: index %d, term %d, %d topics, %d channels; "+
		"the nodes close their client connections so that nsqd registers again\n",
		path, res.BackupIndex, res.BackupTerm, res.Topics, res.Channels)
}

func snapshotInspect(inv *invocation, path string) error {
	data, err := readBackupFile(path)
	if err != nil {
		return err
	}
	b, info, err := fsm.DecodeBackup(data)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	tw := tabwriter.NewWriter(inv.stdout, 0, 0, 2, ' ', 0)
	for _, row := range []struct {
		name  string
		value uint64
	}{
		{"index", b.Index}, {"term", b.Term}, {"bytes", uint64(len(data))},
		{"members", uint64(info.Members)}, {"owners", uint64(info.Owners)},
		{"sessions", uint64(info.Sessions)}, {"topics", uint64(info.Topics)},
		{"channels", uint64(info.Channels)}, {"producers", uint64(info.Producers)},
	} {
		fmt.Fprintf(tw, "%s\t%d\n", row.name, row.value)
	}
	return tw.Flush()
}

func readBackupFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, fsm.MaxBackupBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > fsm.MaxBackupBytes {
		return nil, fmt.Errorf("%s: larger than %d bytes: not a backup", path, fsm.MaxBackupBytes)
	}
	return data, nil
}

// writeFileAtomic writes data to a temporary file next to path, syncs it,
// and renames it over path.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after a successful rename, nothing is left to remove
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// raw sends body (nil for none) as application/octet-stream and returns the
// body of a 200 answer, up to a backup's size; any other status is a
// *remoteError.
func (c *client) raw(method, path string, body []byte) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/octet-stream")
	}
	req.Header.Set("User-Agent", "raftlookupctl/"+version())
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, fsm.MaxBackupBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s %s: reading response: %w", method, req.URL, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, newRemoteError(resp.StatusCode, b)
	}
	if len(b) > fsm.MaxBackupBytes {
		return nil, fmt.Errorf("%s %s: response larger than %d bytes", method, req.URL, fsm.MaxBackupBytes)
	}
	return b, nil
}
