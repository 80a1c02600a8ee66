package fsm

import (
	"os"
	"strconv"
)

// FSM_SMALL_MAX=n runs the package's tests with smallMap switching to a map
// past n entries (0: always a map), so that every test with expected answers
// also covers the map form; .ci/run runs them with 0 too.
func init() {
	if v, ok := os.LookupEnv("FSM_SMALL_MAX"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			panic("FSM_SMALL_MAX must be a whole number, got " + strconv.Quote(v))
		}
		smallMax = n
	}
}
