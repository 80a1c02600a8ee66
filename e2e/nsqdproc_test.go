package e2e

// nsqd 1.3.0 processes.

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
)

// ---------------------------------------------------------------------------
// nsqd

// NSQD is a real nsqd 1.3.0 process (broadcast address 127.0.0.1).
type NSQD struct {
	t        testing.TB
	TCPAddr  string
	HTTPAddr string
	DataPath string
	LogPath  string
	proc     *process
}

func (d *NSQD) String() string { return "nsqd (tcp " + d.TCPAddr + ")" }

// StartNSQD starts nsqd registered with the given lookupd TCP addresses and
// waits until its HTTP /ping answers.
func StartNSQD(t testing.TB, lookupdTCP ...string) *NSQD {
	t.Helper()
	bin := nsqdBinary(t)
	dir := t.TempDir()
	d := &NSQD{t: t, DataPath: filepath.Join(dir, "data"), LogPath: filepath.Join(dir, "nsqd.log")}
	if err := os.MkdirAll(d.DataPath, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if d.proc != nil {
			if err := d.proc.kill(); err != nil {
				t.Errorf("%s: %v", d, err)
			}
		}
		if t.Failed() {
			dumpLog(t, d.String(), d.LogPath)
		}
	})
	for attempt := 1; ; attempt++ {
		ports := freePorts(t, 2)
		d.TCPAddr, d.HTTPAddr = hostPort(ports[0]), hostPort(ports[1])
		args := []string{
			"--tcp-address", d.TCPAddr,
			"--http-address", d.HTTPAddr,
			"--broadcast-address", "127.0.0.1",
			"--data-path", d.DataPath,
		}
		for _, a := range lookupdTCP {
			args = append(args, "--lookupd-tcp-address", a)
		}
		p, err := startProcess(bin, args, d.LogPath)
		if err != nil {
			t.Fatalf("start nsqd: %v", err)
		}
		d.proc = p
		err = eventually(clusterReadyTimeout, func() error {
			if p.exited() {
				return fmt.Errorf("nsqd exited: %v", p.err)
			}
			res, err := httpDo("GET", "http://"+d.HTTPAddr+"/ping", nil, nil)
			if err != nil {
				return err
			}
			if res.Status != http.StatusOK {
				return fmt.Errorf("nsqd /ping: %d", res.Status)
			}
			return nil
		})
		if err == nil {
			return d
		}
		_ = p.kill()
		if attempt < maxStartAttempts && logShowsBindFailure(d.LogPath) {
			continue
		}
		t.Fatalf("nsqd not ready: %v", err)
	}
}

// Kill sends SIGKILL to nsqd and waits for it to end.
func (d *NSQD) Kill() {
	d.t.Helper()
	if err := d.proc.kill(); err != nil {
		d.t.Fatal(err)
	}
}

// Ports returns nsqd's TCP and HTTP ports.
func (d *NSQD) Ports() (tcp, http int) { return portOf(d.TCPAddr), portOf(d.HTTPAddr) }
