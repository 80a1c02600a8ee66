package main

import (
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"
)

// parseLevel maps nsqlookupd's levels (debug, info, warn, error, fatal) and
// hclog's trace onto hclog. hclog has no fatal level: "fatal" turns the
// daemon's logger off, and the few lines that end the process are written
// through logs.fatal, which no level silences.
func parseLevel(s string) (hclog.Level, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "trace":
		return hclog.Trace, nil
	case "debug":
		return hclog.Debug, nil
	case "info":
		return hclog.Info, nil
	case "warn":
		return hclog.Warn, nil
	case "error":
		return hclog.Error, nil
	case "fatal":
		return hclog.Off, nil
	}
	return hclog.NoLevel, fmt.Errorf("-log-level %q: want trace, debug, info, warn, error or fatal", s)
}

// logs are the daemon's two loggers on one output.
type logs struct {
	// root is handed to every package (Named per package); SIGHUP changes
	// its level, which its sub-loggers share.
	root hclog.Logger
	// fatal writes the lines after which the process exits, at any level.
	fatal hclog.Logger
}

func newLogs(opts *options, out io.Writer) logs {
	level, _ := parseLevel(opts.logLevel) // checked by parseFlags
	if opts.logPrefix != "" && opts.logFormat == "text" {
		out = &prefixWriter{prefix: []byte(opts.logPrefix), out: out}
	}
	mu := new(sync.Mutex)
	newLogger := func(l hclog.Level) hclog.Logger {
		return hclog.New(&hclog.LoggerOptions{
			Name:       "raftlookupd",
			Level:      l,
			Output:     out,
			Mutex:      mu,
			JSONFormat: opts.logFormat == "json",
		})
	}
	return logs{root: newLogger(level), fatal: newLogger(hclog.Error)}
}

// prefixWriter puts -log-prefix at the start of every log line, where
// nsqlookupd's log.Logger puts it. hclog writes each line with one Write;
// a value spanning several lines keeps its continuation lines unprefixed,
// as with log.Logger. JSON lines get no prefix: it would make them invalid.
type prefixWriter struct {
	prefix []byte
	out    io.Writer
}

func (w *prefixWriter) Write(p []byte) (int, error) {
	line := make([]byte, 0, len(w.prefix)+len(p))
	line = append(append(line, w.prefix...), p...)
	if _, err := w.out.Write(line); err != nil {
		return 0, err
	}
	return len(p), nil
}
