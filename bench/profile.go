package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// profileDuring fetches a CPU profile of p over the next d (whole seconds,
// at least one less, so it ends within the load) into
// c.profileDir/name.pprof; the returned function waits for it. Without
// -profile-dir it does nothing.
func profileDuring(c config, p *proc, name string, d time.Duration) func() {
	secs := int((d - time.Second).Seconds())
	if c.profileDir == "" || secs < 1 {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		path := filepath.Join(c.profileDir, name+".pprof")
		if err := fetchProfile(p.http, secs, path); err != nil {
			fmt.Fprintf(os.Stderr, "bench: profile %s: %v\n", name, err)
		}
	}()
	return func() { <-done }
}

func fetchProfile(host string, secs int, path string) error {
	return fetchTo(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", host, secs), path, time.Duration(secs+30)*time.Second)
}

func fetchTo(url, path string, timeout time.Duration) error {
	cl := &http.Client{Timeout: timeout}
	resp, err := cl.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// saveHeap writes p's heap profile to c.profileDir/name.pprof, when
// profiles are asked for.
func saveHeap(c config, p *proc, name string) {
	if c.profileDir == "" {
		return
	}
	if err := fetchTo(fmt.Sprintf("http://%s/debug/pprof/heap", p.http), filepath.Join(c.profileDir, name+".pprof"), 30*time.Second); err != nil {
		fmt.Fprintf(os.Stderr, "bench: heap profile %s: %v\n", name, err)
	}
}
