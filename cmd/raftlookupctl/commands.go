package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/raftlookupd/raftlookupd/wire"
)

// command is one subcommand. run parses its own arguments with
// invocation.parse and returns a *usageError for bad usage, flag.ErrHelp
// for -h, and any other error for a failed request.
type command struct {
	name    string
	args    string // what follows the name in usage
	summary string
	run     func(inv *invocation, args []string) error
}

func (c *command) synopsis() string {
	if c.args == "" {
		return c.name
	}
	return c.name + " " + c.args
}

// required names the i-th required positional argument, from args.
func (c *command) required(i int) string {
	var names []string
	for _, f := range strings.Fields(c.args) {
		if !strings.HasPrefix(f, "[") {
			names = append(names, f)
		}
	}
	if i < len(names) {
		return names[i]
	}
	return "argument"
}

func (c *command) usage() string {
	return "usage: raftlookupctl [global flags] " + c.synopsis() + "\n"
}

// commands lists the commands in the order usage shows them.
func commands() []*command {
	return []*command{
		{name: "status", args: "[-json]", summary: "show the node's state, the leader and the members", run: runStatus},
		{name: "join", args: "ID RAFT_ADDRESS [-nonvoter]", summary: "add a server (a voter unless -nonvoter)", run: runJoin},
		{name: "leave", args: "ID", summary: "remove a server", run: runLeave},
		{name: "transfer-leadership", args: "[ID]", summary: "hand leadership to ID, or to any voter", run: runTransfer},
		{name: "snapshot", args: "save|restore|inspect FILE", summary: "save a backup of the cluster, restore one into it, or describe one", run: runSnapshot},
		{name: "health", summary: "exit 0 if the node has a leader and has caught up", run: runHealth},
		{name: "version", summary: "print the version", run: runVersion},
	}
}

func lookup(name string) *command {
	for _, c := range commands() {
		if c.name == name {
			return c
		}
	}
	return nil
}

type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return &usageError{fmt.Sprintf(format, a...)} }

// invocation is what a command runs with.
type invocation struct {
	cmd     *command
	globals *globals
	stdout  io.Writer
	env     func(string) string
}

// parse parses the command's flags in fs, and the global flags, wherever
// they appear in args, and returns the positional arguments, of which there
// must be between minArgs and maxArgs.
func (inv *invocation) parse(fs *flag.FlagSet, args []string, minArgs, maxArgs int) ([]string, error) {
	inv.globals.register(fs)
	pos, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return nil, err
	}
	if err != nil {
		return nil, &usageError{err.Error()}
	}
	switch {
	case len(pos) < minArgs:
		return nil, usagef("missing %s", inv.cmd.required(len(pos)))
	case len(pos) > maxArgs:
		return nil, usagef("unexpected argument %q", pos[maxArgs])
	}
	for _, p := range pos {
		if p == "" {
			return nil, usagef("empty argument")
		}
	}
	return pos, nil
}

// parseInterspersed lets flags and positional arguments come in any order:
// flag.Parse stops at the first positional, so it takes that one and parses
// the rest again. After "--" everything is positional.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// client builds the API client from the global flags; a bad -addr or
// -timeout is a usage error.
func (inv *invocation) client() (*client, error) {
	g := inv.globals
	c, err := newClient(g.addr, g.token.resolve(inv.env), g.timeout)
	if err != nil {
		return nil, &usageError{err.Error()}
	}
	return c, nil
}

func (inv *invocation) printf(format string, a ...any) error {
	_, err := fmt.Fprintf(inv.stdout, format, a...)
	return err
}

func runStatus(inv *invocation, args []string) error {
	fs := newFlagSet("status")
	asJSON := fs.Bool("json", false, "print the status document as JSON")
	if _, err := inv.parse(fs, args, 0, 0); err != nil {
		return err
	}
	c, err := inv.client()
	if err != nil {
		return err
	}
	body, err := c.do(http.MethodGet, wire.PathStatus, nil)
	if err != nil {
		return err
	}
	var out bytes.Buffer
	if *asJSON {
		// Indent the document as received, so fields this build does not
		// know are shown too.
		if err := json.Indent(&out, bytes.TrimSpace(body), "", "  "); err != nil {
			return fmt.Errorf("invalid JSON in response: %w", err)
		}
		out.WriteByte('\n')
	} else {
		var st wire.Status
		if err := json.Unmarshal(body, &st); err != nil {
			return fmt.Errorf("invalid status document: %w", err)
		}
		if err := formatStatus(&out, st); err != nil {
			return err
		}
	}
	_, err = inv.stdout.Write(out.Bytes())
	return err
}

// formatStatus writes a header line about the node, then one table row per
// member: its lag and registry size when it answered (RECORDS: topic and
// channel producer records).
func formatStatus(w io.Writer, st wire.Status) error {
	leader := "none"
	switch {
	case st.LeaderID != "" && st.LeaderAddress != "":
		leader = cell(st.LeaderID) + " (" + cell(st.LeaderAddress) + ")"
	case st.LeaderID != "":
		leader = cell(st.LeaderID)
	case st.LeaderAddress != "":
		leader = cell(st.LeaderAddress)
	}
	fmt.Fprintf(w, "node %s: %s, term %d, leader %s, last log index %d, commit index %d, applied index %d\n\n",
		cell(st.NodeID), cell(st.State), st.Term, leader, st.LastLogIndex, st.CommitIndex, st.AppliedIndex)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tRAFT ADDRESS\tHTTP ADDRESS\tSUFFRAGE\tROLE\tLAG\tSESSIONS\tRECORDS")
	for _, m := range st.Members {
		role := "follower"
		if m.Leader {
			role = "leader"
		}
		lag := "-"
		if m.Lag != nil {
			lag = strconv.FormatUint(*m.Lag, 10)
		}
		sessions, records := "-", "-"
		if m.Registry != nil {
			sessions, records = strconv.Itoa(m.Registry.Sessions), strconv.Itoa(m.Registry.Producers)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			cell(m.ID), cell(m.RaftAddress), cell(m.HTTPAddress), cell(m.Suffrage), role, lag, sessions, records)
	}
	return tw.Flush()
}

// cell renders a value from the server for the table: one line without
// tabs, "-" when empty.
func cell(s string) string {
	if s = oneLine(s, maxMessage); s == "" {
		return "-"
	}
	return s
}

func runJoin(inv *invocation, args []string) error {
	fs := newFlagSet("join")
	nonvoter := fs.Bool("nonvoter", false, "join as a non-voting member")
	pos, err := inv.parse(fs, args, 2, 2)
	if err != nil {
		return err
	}
	id, addr := pos[0], pos[1]
	if _, port, err := net.SplitHostPort(addr); err != nil || port == "" {
		return usagef("RAFT_ADDRESS %q: want host:port", addr)
	}
	c, err := inv.client()
	if err != nil {
		return err
	}
	voter := !*nonvoter
	if _, err := c.do(http.MethodPost, wire.PathJoin, wire.JoinRequest{ID: id, RaftAddress: addr, Voter: &voter}); err != nil {
		return err
	}
	kind := "voter"
	if *nonvoter {
		kind = "nonvoter"
	}
	return inv.printf("joined %s (%s) as %s\n", id, addr, kind)
}

func runLeave(inv *invocation, args []string) error {
	pos, err := inv.parse(newFlagSet("leave"), args, 1, 1)
	if err != nil {
		return err
	}
	c, err := inv.client()
	if err != nil {
		return err
	}
	if _, err := c.do(http.MethodPost, wire.PathLeave, wire.LeaveRequest{ID: pos[0]}); err != nil {
		return err
	}
	return inv.printf("removed %s\n", pos[0])
}

func runTransfer(inv *invocation, args []string) error {
	pos, err := inv.parse(newFlagSet("transfer-leadership"), args, 0, 1)
	if err != nil {
		return err
	}
	var req wire.TransferRequest
	if len(pos) == 1 {
		req.ID = pos[0]
	}
	c, err := inv.client()
	if err != nil {
		return err
	}
	if _, err := c.do(http.MethodPost, wire.PathTransfer, req); err != nil {
		return err
	}
	if req.ID == "" {
		return inv.printf("leadership transferred\n")
	}
	return inv.printf("leadership transferred to %s\n", req.ID)
}

// runHealth succeeds only on 200 from /cluster/ready, so it can serve as a
// container health check.
func runHealth(inv *invocation, args []string) error {
	if _, err := inv.parse(newFlagSet("health"), args, 0, 0); err != nil {
		return err
	}
	c, err := inv.client()
	if err != nil {
		return err
	}
	if _, err := c.do(http.MethodGet, wire.PathReady, nil); err != nil {
		return err
	}
	return inv.printf("ready\n")
}

func runVersion(inv *invocation, args []string) error {
	if _, err := inv.parse(newFlagSet("version"), args, 0, 0); err != nil {
		return err
	}
	return inv.printf("raftlookupctl %s\n", version())
}
