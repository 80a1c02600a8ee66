package httpapi

import "strings"

const (
	maxNameLength   = 64
	ephemeralSuffix = "#ephemeral"
)

// validName is nsqlookupd's topic and channel rule (PROTOCOL.md §1.12): 1 to
// 64 bytes, the suffix included, matching ^[.a-zA-Z0-9_-]+(#ephemeral)?$.
// A byte loop rather than a regexp: it runs on every create request and the
// rule is small enough to read.
func validName(name string) bool {
	if len(name) < 1 || len(name) > maxNameLength {
		return false
	}
	base := strings.TrimSuffix(name, ephemeralSuffix)
	if base == "" {
		return false
	}
	for i := 0; i < len(base); i++ {
		if !nameByte(base[i]) {
			return false
		}
	}
	return true
}

func nameByte(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	case c == '.', c == '_', c == '-':
		return true
	}
	return false
}
