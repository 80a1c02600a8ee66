//go:build linux

package e2e

import (
	"os/exec"
	"syscall"
)

// setChildAttrs makes the kernel SIGKILL a child when the test process dies,
// so a crashed or timed-out `go test` leaves no daemon behind.
func setChildAttrs(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
