package main

import (
	"fmt"
	"io"
	"sort"

	"github.com/hashicorp/go-hclog"
)

// reloader re-reads the configuration on SIGHUP (the same command line and
// the -config file again, so a setting given as a flag keeps winning) and
// hands it to every hook. A hook applies what it can change live; the rest
// takes effect at the next start.
type reloader struct {
	args    []string
	current *options
	hooks   []reloadHook
}

type reloadHook struct {
	name string
	// apply receives the new options; an error leaves that part as it was.
	apply func(*options) error
}

// register adds a hook; hooks run in the order they were registered.
func (r *reloader) register(name string, apply func(*options) error) {
	r.hooks = append(r.hooks, reloadHook{name, apply})
}

// live are the settings that the registered hooks apply without a restart.
var live = map[string]bool{"log-level": true}

// reload never ends the process: a configuration that no longer parses is
// logged and the running one kept.
func (r *reloader) reload(logger hclog.Logger) {
	opts, err := parseFlags(r.args, io.Discard, io.Discard)
	if err != nil {
		logger.Error("reload failed, configuration unchanged", "error", err)
		return
	}
	for _, h := range r.hooks {
		if err := h.apply(opts); err != nil {
			logger.Error("reload failed", "part", h.name, "error", err)
		}
	}
	var later []string
	for name, v := range opts.settings {
		if !live[name] && r.current.settings[name] != v {
			later = append(later, name)
		}
	}
	sort.Strings(later)
	if len(later) > 0 {
		logger.Warn("changed settings take effect at the next start", "settings", fmt.Sprint(later))
	}
	r.current = opts
	logger.Info("configuration reloaded", "log_level", opts.logLevel)
}

// levelHook applies -log-level live.
func levelHook(l logs) func(*options) error {
	return func(o *options) error {
		level, err := parseLevel(o.logLevel)
		if err != nil {
			return err
		}
		l.root.SetLevel(level)
		return nil
	}
}
