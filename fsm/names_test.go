package fsm

import (
	"regexp"
	"strings"
	"testing"
)

// nsqNameRE is nsq's own rule (internal/protocol/names.go), used here as the
// oracle for the hand-written validator.
var nsqNameRE = regexp.MustCompile(`^[.a-zA-Z0-9_-]+(#ephemeral)?$`)

func nsqValidName(name string) bool {
	return len(name) >= 1 && len(name) <= 64 && nsqNameRE.MatchString(name)
}

func TestValidName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"", false},
		{"a", true},
		{".", true},
		{"..", true},
		{"-", true},
		{"_", true},
		{"Az09._-", true},
		{strings.Repeat("a", 64), true},
		{strings.Repeat("a", 65), false},
		{strings.Repeat("a", 54) + "#ephemeral", true},  // 64 with the suffix
		{strings.Repeat("a", 55) + "#ephemeral", false}, // 65 with the suffix
		{"#ephemeral", false},
		{"t#ephemeral", true},
		{"t#ephemeral#ephemeral", false},
		{"t#Ephemeral", false},
		{"t#ephemera", false},
		{"t#", false},
		{"#", false},
		{"a b", false},
		{"a$", false},
		{"a:b", false},
		{"a/b", false},
		{"a*", false},
		{"t\n", false},
		{"t\r", false},
		{"\x00", false},
		{"é", false},
		{"\xff", false},
	}
	for _, tc := range tests {
		if got := ValidName(tc.name); got != tc.ok {
			t.Errorf("ValidName(%q) = %v, want %v", tc.name, got, tc.ok)
		}
		if oracle := nsqValidName(tc.name); oracle != tc.ok {
			t.Errorf("table row %q disagrees with nsq's regexp (%v)", tc.name, oracle)
		}
	}
}

// FuzzValidName checks the validator against nsq's regexp.
func FuzzValidName(f *testing.F) {
	for _, s := range []string{"", "a", "#ephemeral", "a#ephemeral", "a#ephemeral#ephemeral", "a$", ".", strings.Repeat("z", 64)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if got, want := ValidName(name), nsqValidName(name); got != want {
			t.Errorf("ValidName(%q) = %v, nsq says %v", name, got, want)
		}
	})
}

func BenchmarkValidName(b *testing.B) {
	name := "some_topic-name.with.dots#ephemeral"
	for b.Loop() {
		if !ValidName(name) {
			b.Fatal("invalid")
		}
	}
}
