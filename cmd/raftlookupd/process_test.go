package main

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	binDir    string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// binary builds raftlookupd once per test run.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		if binDir, buildErr = os.MkdirTemp("", "raftlookupd-bin"); buildErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "raftlookupd")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = &buildError{err, string(out)}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string { return "go build: " + e.err.Error() + "\n" + e.out }

// proc is a raftlookupd process whose stderr is read line by line.
type proc struct {
	t     *testing.T
	cmd   *exec.Cmd
	lines chan string
	done  chan struct{} // closed when the process exited
	err   error
	seen  []string
}

func startProc(t *testing.T, args ...string) *proc {
	t.Helper()
	cmd := exec.Command(binary(t), args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{t: t, cmd: cmd, lines: make(chan string, 1024), done: make(chan struct{})}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
	})
	return p
}

// waitLine returns the first line not yet read that contains every part,
// and fails the test after the deadline or when the process ends.
func (p *proc) waitLine(parts ...string) string {
	p.t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		select {
		case line, ok := <-p.lines:
			if !ok {
				p.t.Fatalf("process ended before a line with %q; stderr:\n%s", parts, strings.Join(p.seen, "\n"))
			}
			p.seen = append(p.seen, line)
			if containsAll(line, parts) {
				return line
			}
		case <-deadline:
			p.t.Fatalf("no line with %q within 30s; stderr:\n%s", parts, strings.Join(p.seen, "\n"))
		}
	}
}

func containsAll(s string, parts []string) bool {
	for _, part := range parts {
		if !strings.Contains(s, part) {
			return false
		}
	}
	return true
}

func (p *proc) signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal %v: %v", sig, err)
	}
}

// stop sends SIGTERM and wants exit status 0.
func (p *proc) stop() {
	p.t.Helper()
	p.signal(syscall.SIGTERM)
	for range p.lines {
	}
	<-p.done
	if p.err != nil {
		p.t.Fatalf("exit after SIGTERM: %v", p.err)
	}
}

var httpAddrRe = regexp.MustCompile(` http=(\S+)`)

// httpAddr waits for the "serving" line and returns the HTTP address.
func (p *proc) httpAddr() string {
	p.t.Helper()
	m := httpAddrRe.FindStringSubmatch(p.waitLine("serving", "http="))
	if m == nil {
		p.t.Fatal("serving line without http address")
	}
	return m[1]
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// isolated are the only additions to an nsqlookupd command line: free
// ports, and this node's own data dir and id.
func isolated(t *testing.T) []string {
	return []string{"--raft-address=127.0.0.1:0", "--data-dir=" + t.TempDir(), "--node-id=n1"}
}

// nsq's example config and an nsqlookupd command line (nsqlookupd's flags
// only, ports moved off the well-known ones) run unchanged.
func TestProcessNsqlookupdCommandLine(t *testing.T) {
	cfg := writeConfig(t, nsqlookupdExample)
	args := append([]string{
		"--config=" + cfg,
		"--tcp-address=127.0.0.1:0", "--http-address=127.0.0.1:0",
		"--broadcast-address=127.0.0.1",
		"--inactive-producer-timeout=300s", "--tombstone-lifetime=45s",
		"--log-level=info", "--log-prefix=[nsqlookupd] ", "--verbose",
	}, isolated(t)...)
	p := startProc(t, args...)
	addr := p.httpAddr()
	for _, line := range p.seen {
		if !strings.HasPrefix(line, "[nsqlookupd] ") {
			t.Errorf("log line without the prefix: %q", line)
		}
	}
	if code, body := httpGet(t, "http://"+addr+"/ping"); code != 200 || body != "OK" {
		t.Errorf("/ping: %d %q", code, body)
	}
	if code, body := httpGet(t, "http://"+addr+"/info"); code != 200 || body != `{"version":"1.3.0"}` {
		t.Errorf("/info: %d %q", code, body)
	}
	if code, _ := httpGet(t, "http://"+addr+"/healthz"); code != 200 {
		t.Errorf("/healthz: %d", code)
	}
	waitReady(t, addr)
	p.stop()
}

func TestProcessVersion(t *testing.T) {
	out, err := exec.Command(binary(t), "-version").Output()
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^raftlookupd v\S+ \(nsqlookupd 1\.3\.0 compatible, built w/go\S+\)\n$`).Match(out) {
		t.Errorf("stdout %q", out)
	}
}

// SIGHUP re-reads the config file, applies the log level live and never
// ends the process, not even when the file no longer parses.
func TestProcessSIGHUPReloadsLogLevel(t *testing.T) {
	cfg := writeConfig(t, "log_level = \"info\"\ntcp_address = \"127.0.0.1:0\"\n")
	p := startProc(t, append([]string{"-config", cfg, "-http-address", "127.0.0.1:0",
		"-broadcast-address", "127.0.0.1"}, isolated(t)...)...)
	addr := p.httpAddr()
	httpGet(t, "http://"+addr+"/ping") // at info: no request line

	write := func(content string) {
		if err := os.WriteFile(cfg, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("log_level = \"debug\"\ntcp_address = \"127.0.0.1:1\"\n")
	p.signal(syscall.SIGHUP)
	p.waitLine("changed settings take effect at the next start", "tcp-address")
	p.waitLine("configuration reloaded", "log_level=debug")
	for _, line := range p.seen {
		if strings.Contains(line, "uri=/ping") {
			t.Errorf("request logged at info: %q", line)
		}
	}
	httpGet(t, "http://"+addr+"/ping")
	p.waitLine("DEBUG", "request", "uri=/ping")

	write("log_level = \"debug\"\nlog_levle = \"info\"\n")
	p.signal(syscall.SIGHUP)
	p.waitLine("reload failed, configuration unchanged", `unknown key \"log_levle\"`)
	httpGet(t, "http://"+addr+"/ping")
	p.waitLine("DEBUG", "request", "uri=/ping")

	select {
	case <-p.done:
		t.Fatalf("process ended: %v", p.err)
	default:
	}
	p.stop()
}

// waitReady polls /readyz until 200.
func waitReady(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, body := httpGet(t, "http://"+addr+"/readyz")
		if code == 200 {
			return
		}
		if code != 503 || time.Now().After(deadline) {
			t.Fatalf("/readyz: %d %q", code, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
