package fsm

import "strings"

// maxNameLen is nsq's limit on topic and channel names, suffix included.
const maxNameLen = 64

// nameByte is the set [.a-zA-Z0-9_-]; a table because ValidName runs on
// every REGISTER and nsq's own check is a regexp.
var nameByte = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	t['.'], t['_'], t['-'] = true, true, true
	return t
}()

// ValidName reports whether name is a valid nsq topic or channel name:
// 1..64 bytes matching ^[.a-zA-Z0-9_-]+(#ephemeral)?$. The same rule applies
// to topics and channels.
func ValidName(name string) bool {
	if len(name) < 1 || len(name) > maxNameLen {
		return false
	}
	base := strings.TrimSuffix(name, ephemeralSuffix)
	if base == "" {
		return false
	}
	for i := 0; i < len(base); i++ {
		if !nameByte[base[i]] {
			return false
		}
	}
	return true
}
