package main

import (
	"flag"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// notInFile are the flags that make no sense in a config file.
var notInFile = map[string]bool{"config": true, "version": true}

// applyConfigFile sets, from the TOML file at path, every flag the command
// line did not set, so the precedence is flag > file > default (nsqlookupd's,
// through github.com/mreiferson/go-options). A key is a flag's name with '_'
// for '-'. Unlike nsqlookupd, which ignores keys it does not know, an unknown
// key is an error: a misspelt setting would otherwise silently keep its
// default.
//
// go-options is not used itself: it reports a bad value with log.Fatal and
// resolves onto tagged struct fields. Its value rules are kept: a duration is
// a string for time.ParseDuration or an integer of milliseconds; a number or
// bool may also be given as a string.
func applyConfigFile(fs *flag.FlagSet, path string) error {
	var file map[string]any
	if _, err := toml.DecodeFile(path, &file); err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	onCommandLine := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { onCommandLine[f.Name] = true })
	keys := make([]string, 0, len(file))
	for k := range file {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, key := range keys {
		name := strings.ReplaceAll(key, "_", "-")
		f := fs.Lookup(name)
		if f == nil || notInFile[name] || strings.Contains(key, "-") {
			return fmt.Errorf("config file %s: unknown key %q", path, key)
		}
		if onCommandLine[name] {
			continue
		}
		s, err := configValue(f, file[key])
		if err == nil {
			err = f.Value.Set(s)
		}
		if err != nil {
			return fmt.Errorf("config file %s: %s: %w", path, key, err)
		}
	}
	return nil
}

// configValue turns a decoded TOML value into the text the flag parses.
func configValue(f *flag.Flag, v any) (string, error) {
	switch f.Value.(flag.Getter).Get().(type) {
	case time.Duration:
		switch v := v.(type) {
		case string:
			_, err := time.ParseDuration(v)
			return v, err
		case int64:
			// go-options reads an integer duration as milliseconds.
			return (time.Duration(v) * time.Millisecond).String(), nil
		}
		return "", fmt.Errorf("%v: want a duration such as \"300s\", or an integer of milliseconds", v)
	case bool:
		switch v := v.(type) {
		case bool:
			return strconv.FormatBool(v), nil
		case string:
			_, err := strconv.ParseBool(v)
			return v, err
		}
		return "", fmt.Errorf("%v: want true or false", v)
	case int, uint64:
		switch v := v.(type) {
		case int64:
			return strconv.FormatInt(v, 10), nil
		case string:
			_, err := strconv.ParseInt(v, 10, 64)
			return v, err
		}
		return "", fmt.Errorf("%v: want an integer", v)
	case string:
		if s, ok := v.(string); ok {
			return s, nil
		}
		return "", fmt.Errorf("%v: want a string", v)
	}
	return "", fmt.Errorf("flag -%s has a type the config file cannot set", f.Name)
}
