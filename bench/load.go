package main

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// producer is an nsqd-like TCP client of protocol V1.
type producer struct {
	conn net.Conn
	r    *bufio.Reader
	w    *bufio.Writer
}

func dialProducer(tcpAddr string, port int) (*producer, error) {
	return dialProducerBuf(tcpAddr, port, 64<<10)
}

// dialProducerBuf is dialProducer with a write buffer of the given size:
// thousands of storm connections need no 64 KiB each.
func dialProducerBuf(tcpAddr string, port, bufSize int) (*producer, error) {
	c, err := net.DialTimeout("tcp", tcpAddr, 2*time.Second)
	if err != nil {
		return nil, err
	}
	p := &producer{conn: c, r: bufio.NewReader(c), w: bufio.NewWriterSize(c, bufSize)}
	body, _ := json.Marshal(map[string]any{"broadcast_address": "127.0.0.1", "hostname": "bench",
		"tcp_port": port, "http_port": port + 1, "version": "1.3.0"})
	p.w.WriteString("  V1IDENTIFY\n")
	binary.Write(p.w, binary.BigEndian, int32(len(body)))
	p.w.Write(body)
	if err := p.w.Flush(); err != nil {
		c.Close()
		return nil, err
	}
	if _, err := p.read(); err != nil {
		c.Close()
		return nil, fmt.Errorf("identify: %w", err)
	}
	return p, nil
}

func (p *producer) read() ([]byte, error) {
	var size int32
	if err := binary.Read(p.r, binary.BigEndian, &size); err != nil {
		return nil, err
	}
	b := make([]byte, size)
	_, err := io.ReadFull(p.r, b)
	return b, err
}

// pipeline sends every line, then reads one reply per line; it returns when
// the last reply arrived.
func (p *producer) pipeline(lines []string) error {
	errc := make(chan error, 1)
	go func() {
		for range lines {
			b, err := p.read()
			if err != nil {
				errc <- err
				return
			}
			if string(b) != "OK" {
				errc <- fmt.Errorf("reply %q", b)
				return
			}
		}
		errc <- nil
	}()
	for _, l := range lines {
		p.w.WriteString(l)
	}
	if err := p.w.Flush(); err != nil {
		return err
	}
	return <-errc
}

// roundTrip sends one line and times its reply.
func (p *producer) roundTrip(line string) (time.Duration, error) {
	start := time.Now()
	p.w.WriteString(line)
	if err := p.w.Flush(); err != nil {
		return 0, err
	}
	if _, err := p.read(); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

func (p *producer) close() { p.conn.Close() }

// nsqdPingInterval is how often nsqd PINGs each lookupd it is connected to.
const nsqdPingInterval = 15 * time.Second

// pingLikeNsqd PINGs every producer every nsqdPingInterval, each starting at
// a random point of the first interval as independent nsqds would, until the
// returned stop is called (more than once is fine); stop reports the first
// PING that failed. A PING renews the producer's last update, which /lookup
// answers depend on: a load without PINGs flatters any cache of answers.
func pingLikeNsqd(ps []*producer) (stop func() error) {
	done := make(chan struct{})
	errc := make(chan error, len(ps))
	var wg sync.WaitGroup
	for _, p := range ps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTimer(time.Duration(rand.Int63n(int64(nsqdPingInterval))))
			defer t.Stop()
			for {
				select {
				case <-done:
					return
				case <-t.C:
				}
				if _, err := p.roundTrip("PING\n"); err != nil {
					errc <- err
					return
				}
				t.Reset(nsqdPingInterval)
			}
		}()
	}
	var once sync.Once
	return func() error {
		once.Do(func() { close(done) })
		wg.Wait()
		select {
		case err := <-errc:
			return fmt.Errorf("PING: %w", err)
		default:
			return nil
		}
	}
}

// registerLines is REGISTER topic channel for n topics x 2 channels.
func registerLines(prefix string, topics int) []string {
	lines := make([]string, 0, topics*2)
	for t := 0; t < topics; t++ {
		for c := 0; c < 2; c++ {
			lines = append(lines, fmt.Sprintf("REGISTER %s%d ch%d\n", prefix, t, c))
		}
	}
	return lines
}

// load registers producers x topics x 2 channels, spreading producer
// connections over the given TCP addresses. It returns the open producers.
func load(tcpAddrs []string, producers, topics, basePort int, prefix string) ([]*producer, error) {
	lines := registerLines(prefix, topics)
	out := make([]*producer, producers)
	var wg sync.WaitGroup
	errs := make(chan error, producers)
	for i := range out {
		p, err := dialProducer(tcpAddrs[i%len(tcpAddrs)], basePort+2*i)
		if err != nil {
			return out, err
		}
		out[i] = p
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.pipeline(lines); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	return out, <-errs
}

var httpClient = &http.Client{
	Transport: &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 64},
	Timeout:   10 * time.Second,
}

func getJSON(host, path string, v any) error {
	resp, err := httpClient.Get("http://" + host + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		io.Copy(io.Discard, resp.Body)
		return fmt.Errorf("GET %s: %d", path, resp.StatusCode)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// lookupProducers returns how many producers /lookup lists for topic.
func lookupProducers(host, topic string) (int, error) {
	var v struct {
		Producers []json.RawMessage `json:"producers"`
	}
	err := getJSON(host, "/lookup?consistency=stale&topic="+topic, &v)
	return len(v.Producers), err
}

// lookupLoad runs a closed loop of clients GETting /lookup of random topics
// for d and returns the completed requests per second and the failures.
// Each client is a raw HTTP/1.1 keep-alive connection: net/http's client
// costs more CPU than the servers measured, on a 2-core machine.
func lookupLoad(host, prefix string, topics, clients int, d time.Duration) (float64, int64) {
	var ok, failed atomic.Int64
	stop := time.Now().Add(d)
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(seed int64) {
			defer wg.Done()
			rnd := rand.New(rand.NewSource(seed))
			var cl *rawClient
			for time.Now().Before(stop) {
				if cl == nil {
					var err error
					if cl, err = dialRaw(host); err != nil {
						failed.Add(1)
						continue
					}
				}
				status, err := cl.get(fmt.Sprintf("/lookup?topic=%s%d", prefix, rnd.Intn(topics)))
				switch {
				case err != nil:
					failed.Add(1)
					cl.conn.Close()
					cl = nil
				case status == 200:
					ok.Add(1)
				default:
					failed.Add(1)
				}
			}
			if cl != nil {
				cl.conn.Close()
			}
		}(int64(c))
	}
	wg.Wait()
	return float64(ok.Load()) / d.Seconds(), failed.Load()
}

type rawClient struct {
	conn net.Conn
	r    *bufio.Reader
	host string
	buf  []byte
}

func dialRaw(host string) (*rawClient, error) {
	c, err := net.DialTimeout("tcp", host, 2*time.Second)
	if err != nil {
		return nil, err
	}
	return &rawClient{conn: c, r: bufio.NewReaderSize(c, 64<<10), host: host}, nil
}

// get sends one request and reads the whole response; it returns the status.
func (c *rawClient) get(path string) (int, error) {
	status, _, err := c.getSize(path)
	return status, err
}

// getSize is get that also returns the body's length.
func (c *rawClient) getSize(path string) (int, int, error) {
	c.buf = append(c.buf[:0], "GET "...)
	c.buf = append(c.buf, path...)
	c.buf = append(c.buf, " HTTP/1.1\r\nHost: "...)
	c.buf = append(c.buf, c.host...)
	c.buf = append(c.buf, "\r\nAccept: application/vnd.nsq; version=1.0\r\n\r\n"...)
	c.conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.conn.Write(c.buf); err != nil {
		return 0, 0, err
	}
	line, err := c.r.ReadSlice('\n')
	if err != nil {
		return 0, 0, err
	}
	if len(line) < 12 {
		return 0, 0, fmt.Errorf("bad status line %q", line)
	}
	status, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, 0, err
	}
	length := -1
	for {
		h, err := c.r.ReadSlice('\n')
		if err != nil {
			return 0, 0, err
		}
		if len(h) <= 2 {
			break
		}
		if k, v, ok := strings.Cut(string(h), ":"); ok && strings.EqualFold(k, "Content-Length") {
			length, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	if length < 0 {
		return 0, 0, fmt.Errorf("response without Content-Length")
	}
	_, err = c.r.Discard(length)
	return status, length, err
}

// waitUntil polls cond until it holds or the timeout passes.
func waitUntil(timeout time.Duration, every time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(every)
	}
	return true
}

func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[min(len(s)-1, int(float64(len(s))*p))]
}
