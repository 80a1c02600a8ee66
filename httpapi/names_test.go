package httpapi

import (
	"regexp"
	"strings"
	"testing"
)

// nsqNameRule is PROTOCOL.md §1.12 written as nsq writes it, the reference
// validName is checked against.
var nsqNameRule = regexp.MustCompile(`^[.a-zA-Z0-9_-]+(#ephemeral)?$`)

func nsqValid(name string) bool {
	return len(name) >= 1 && len(name) <= 64 && nsqNameRule.MatchString(name)
}

func TestValidName(t *testing.T) {
	tests := map[string]bool{
		"":                                     false,
		"a":                                    true,
		".":                                    true,
		"..":                                   true,
		"-_.":                                  true,
		"Topic_1-x.y":                          true,
		"a#ephemeral":                          true,
		"#ephemeral":                           false,
		"a#ephemeral#ephemeral":                false,
		"a#Ephemeral":                          false,
		"a#ephemeralx":                         false,
		"a#":                                   false,
		"a b":                                  false,
		"a$":                                   false,
		"*":                                    false,
		"a\n":                                  false,
		"ä":                                    false,
		strings.Repeat("a", 64):                true,
		strings.Repeat("a", 65):                false,
		strings.Repeat("a", 54) + "#ephemeral": true,
		strings.Repeat("a", 55) + "#ephemeral": false,
	}
	for name, want := range tests {
		if got := validName(name); got != want {
			t.Errorf("validName(%q) = %v, want %v", name, got, want)
		}
		if ref := nsqValid(name); ref != want {
			t.Errorf("test table disagrees with nsq's rule for %q", name)
		}
	}
}

func FuzzValidName(f *testing.F) {
	for _, s := range []string{"", "a", "a#ephemeral", "#ephemeral", "a$", "..", strings.Repeat("z", 65)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if got, want := validName(name), nsqValid(name); got != want {
			t.Errorf("validName(%q) = %v, nsq says %v", name, got, want)
		}
	})
}
