package wire

// Backup API paths, served on the HTTP port behind the admin token.
const (
	// PathSnapshot answers a backup file (application/octet-stream) of a
	// consistent point in time: everything committed before the request.
	PathSnapshot = "/cluster/snapshot"
	// PathRestore takes a backup file as the request body and installs it
	// on every node through the leader.
	PathRestore = "/cluster/restore"
)

// RestoreResult is the document of POST /cluster/restore: the restored
// backup's index and term (from its header) and the keys it brought back.
type RestoreResult struct {
	BackupIndex uint64 `json:"backup_index"`
	BackupTerm  uint64 `json:"backup_term"`
	Topics      int    `json:"topics"`
	Channels    int    `json:"channels"`
}
