// Package wire is the vocabulary the cluster's packages share: the admin
// API's documents and paths, read consistency levels, the sentinel errors
// that cross package and process boundaries, and the one table that maps
// those errors to HTTP statuses and back.
//
// It imports only the standard library, so the operator CLI can speak the
// admin API without linking Raft, and httpapi can serve it without importing
// the cluster package that implements it.
//
// Invariants:
//   - Every sentinel has exactly one HTTP status (StatusOf), and a status
//     received from another node maps back to the same sentinel (ErrorOf),
//     so errors.Is works across a hop.
//   - Documents are plain JSON with snake_case keys; servers refuse unknown
//     fields in requests, so a misspelt field is an error, not a default.
package wire
