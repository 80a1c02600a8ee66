package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hashicorp/raft"

	"github.com/raftlookupd/raftlookupd/fsm"
)

// PeersFile is the name, inside the data dir, of the file that asks a node
// to recover from quorum loss: at start the node rewrites its Raft
// configuration to exactly the servers listed, then renames the file to
// PeersFile+".applied". Put the same file on every survivor, then start
// them; replacements join afterwards.
//
//	[{"id":"n1","address":"10.0.0.1:4162"},{"id":"n2","address":"10.0.0.2:4162","non_voter":false}]
const PeersFile = "peers.json"

// keyCurrentTerm is the stable-store key hashicorp/raft keeps its current
// term under (unexported there).
var keyCurrentTerm = []byte("CurrentTerm")

type recoveryPeer struct {
	ID       string `json:"id"`
	Address  string `json:"address"`
	NonVoter bool   `json:"non_voter"`
}

// readPeersFile returns the configuration a peers file asks for, or ok=false
// when there is none.
func readPeersFile(dir string) (raft.Configuration, bool, error) {
	path := filepath.Join(dir, PeersFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return raft.Configuration{}, false, nil
	}
	if err != nil {
		return raft.Configuration{}, false, fmt.Errorf("read %s: %w", path, err)
	}
	var peers []recoveryPeer
	if err := json.Unmarshal(b, &peers); err != nil {
		return raft.Configuration{}, false, fmt.Errorf("%s: %w", path, err)
	}
	var c raft.Configuration
	voters := 0
	for _, p := range peers {
		if p.ID == "" || p.Address == "" {
			return c, false, fmt.Errorf("%s: every server needs id and address", path)
		}
		s := raft.Server{ID: raft.ServerID(p.ID), Address: raft.ServerAddress(p.Address), Suffrage: raft.Voter}
		if p.NonVoter {
			s.Suffrage = raft.Nonvoter
		} else {
			voters++
		}
		c.Servers = append(c.Servers, s)
	}
	if voters == 0 {
		return c, false, fmt.Errorf("%s: no voter listed", path)
	}
	seen := map[raft.ServerID]bool{}
	for _, s := range c.Servers {
		if seen[s.ID] {
			return c, false, fmt.Errorf("%s: server %s listed twice", path, s.ID)
		}
		seen[s.ID] = true
	}
	return c, true, nil
}

// recoverCluster applies a peers file before Raft starts. The state machine
// given to raft.RecoverCluster is a scratch one: Raft restores the real one
// from the snapshot recovery writes.
func recoverCluster(cfg Config, rc *raft.Config, logs raft.LogStore, stable raft.StableStore, snaps raft.SnapshotStore, trans raft.Transport) (bool, error) {
	conf, ok, err := readPeersFile(cfg.DataDir)
	if err != nil || !ok {
		return false, err
	}
	if err := raft.RecoverCluster(rc, fsm.New(), logs, stable, snaps, trans, conf); err != nil {
		return false, fmt.Errorf("recover cluster from %s: %w", PeersFile, err)
	}
	// RecoverCluster leaves the stored term as it is: 0 when the data dir
	// holds only a copied snapshot. The term must be at least that of the
	// snapshot recovery wrote, or new entries would carry a lower term.
	if list, err := snaps.List(); err == nil && len(list) > 0 {
		cur, _ := stable.GetUint64(keyCurrentTerm)
		if cur < list[0].Term {
			if err := stable.SetUint64(keyCurrentTerm, list[0].Term); err != nil {
				return false, fmt.Errorf("recover cluster: raise the term: %w", err)
			}
		}
	}
	path := filepath.Join(cfg.DataDir, PeersFile)
	if err := os.Rename(path, path+".applied"); err != nil {
		return true, fmt.Errorf("recovered, but could not rename %s: %w", path, err)
	}
	return true, nil
}
