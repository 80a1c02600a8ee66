package cluster

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

const incarnationFile = "incarnation"

// nextIncarnation returns a number greater than any incarnation this data
// dir used before, and records it. The state machine ignores commands of an
// incarnation lower than the one it knows, so a wall clock that stepped back
// across a restart must not produce a lower one.
func nextIncarnation(dir string) (uint64, error) {
	path := filepath.Join(dir, incarnationFile)
	inc := uint64(time.Now().UnixNano())
	if b, err := os.ReadFile(path); err == nil {
		prev, perr := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
		if perr != nil {
			return 0, fmt.Errorf("%s: %w", path, perr)
		}
		inc = max(inc, prev+1)
	} else if !os.IsNotExist(err) {
		return 0, err
	}
	if err := writeFileSync(path, []byte(strconv.FormatUint(inc, 10)+"\n")); err != nil {
		return 0, err
	}
	return inc, nil
}

func writeFileSync(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
