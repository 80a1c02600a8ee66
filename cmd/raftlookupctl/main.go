package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"time"
)

// buildVersion is set with -ldflags "-X main.buildVersion=...".
var buildVersion = "dev"

const (
	defaultAddr    = "127.0.0.1:4161"
	defaultTimeout = 5 * time.Second
	tokenEnv       = "RAFTLOOKUPD_ADMIN_TOKEN"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, os.Getenv))
}

// run is the whole program but the exit: it returns 0 on success, 1 when a
// request failed and 2 on a usage error.
func run(args []string, stdout, stderr io.Writer, env func(string) string) int {
	g := &globals{addr: defaultAddr, timeout: defaultTimeout}
	fs := newFlagSet("raftlookupctl")
	g.register(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usage())
			return 0
		}
		fmt.Fprintf(stderr, "raftlookupctl: %v\n%s", err, usage())
		return 2
	}
	if fs.NArg() == 0 {
		fmt.Fprintf(stderr, "raftlookupctl: no command\n%s", usage())
		return 2
	}
	name := fs.Arg(0)
	if name == "help" {
		fmt.Fprint(stdout, usage())
		return 0
	}
	cmd := lookup(name)
	if cmd == nil {
		fmt.Fprintf(stderr, "raftlookupctl: unknown command %q\n%s", name, usage())
		return 2
	}
	inv := &invocation{cmd: cmd, globals: g, stdout: stdout, env: env}
	err := cmd.run(inv, fs.Args()[1:])
	var ue *usageError
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprintf(stdout, "%s  %s\n", cmd.usage(), cmd.summary)
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "raftlookupctl: %s: %v\n%s", name, err, cmd.usage())
		return 2
	default:
		fmt.Fprintf(stderr, "raftlookupctl: %s: %v\n", name, err)
		return 1
	}
}

// usage is the full help text: short enough to print on every top-level
// usage error.
func usage() string {
	var b strings.Builder
	b.WriteString("usage: raftlookupctl [-addr host:port] [-token TOKEN] [-timeout 5s] COMMAND [ARGS]\n\nCommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(&b, "  %-34s  %s\n", c.synopsis(), c.summary)
	}
	b.WriteString(`
Global flags (also accepted after the command):
  -addr host:port    admin HTTP address of any node (default ` + defaultAddr + `)
  -token TOKEN       admin token, sent as "Authorization: Bearer TOKEN" (default $` + tokenEnv + `)
  -timeout DURATION  request timeout (default ` + defaultTimeout.String() + `)
`)
	return b.String()
}

// globals are the flags every command shares. They are registered on the
// top-level flag set and again on each command's, so that
// "raftlookupctl status -addr h:4161" works as well.
type globals struct {
	addr    string
	token   tokenFlag
	timeout time.Duration
}

// register binds the global flags of fs to g, keeping the values g already
// holds (flag.StringVar assigns its default to the variable).
func (g *globals) register(fs *flag.FlagSet) {
	fs.StringVar(&g.addr, "addr", g.addr, "admin HTTP address of a node")
	fs.Var(&g.token, "token", "admin token (default $"+tokenEnv+")")
	fs.DurationVar(&g.timeout, "timeout", g.timeout, "request timeout")
}

// tokenFlag remembers whether -token was given, so that an explicit empty
// token overrides the environment. String never reveals the token, so no
// usage or error text can print it.
type tokenFlag struct {
	value string
	set   bool
}

func (t *tokenFlag) String() string { return "" }

func (t *tokenFlag) Set(s string) error {
	t.value, t.set = s, true
	return nil
}

// resolve returns the token to send: the flag's, else the environment's.
func (t *tokenFlag) resolve(env func(string) string) string {
	if t.set || env == nil {
		return t.value
	}
	return env(tokenEnv)
}

// newFlagSet returns a silent flag set: run prints errors and usage itself,
// in one format.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// version is the build's version: the -ldflags one, else the module version
// recorded by "go install module@version".
func version() string {
	if buildVersion != "dev" {
		return buildVersion
	}
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" && info.Main.Version != "(devel)" {
		return info.Main.Version
	}
	return buildVersion
}
