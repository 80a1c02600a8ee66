package cluster

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

func newTestMux(t *testing.T, tf *tlsFiles) *mux {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := newMux(ln, tf, hclog.NewNullLogger())
	t.Cleanup(func() { m.Close() })
	return m
}

// acceptOne returns the next connection sub delivers, or nil within d.
func acceptOne(sub *subListener, d time.Duration) net.Conn {
	ch := make(chan net.Conn, 1)
	go func() {
		c, err := sub.Accept()
		if err == nil {
			ch <- c
		}
	}()
	select {
	case c := <-ch:
		return c
	case <-time.After(d):
		return nil
	}
}

func TestMuxDispatchesByKind(t *testing.T) {
	m := newTestMux(t, nil)
	ctx := context.Background()
	for _, tc := range []struct {
		kind byte
		sub  *subListener
	}{{streamRaft, m.raft}, {streamRPC, m.rpc}} {
		c, err := m.dial(ctx, m.ln.Addr().String(), tc.kind)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write([]byte("hello")); err != nil {
			t.Fatal(err)
		}
		got := acceptOne(tc.sub, 5*time.Second)
		if got == nil {
			t.Fatalf("kind %#x: nothing delivered", tc.kind)
		}
		buf := make([]byte, 5)
		if _, err := io.ReadFull(got, buf); err != nil || string(buf) != "hello" {
			t.Fatalf("kind %#x: read %q, %v; want the bytes after the kind byte", tc.kind, buf, err)
		}
		got.Close()
		c.Close()
	}
}

// A client that sends an unknown kind byte (an HTTP or nsqd client on the
// wrong port) is closed and reaches neither listener.
func TestMuxRefusesUnknownKind(t *testing.T) {
	m := newTestMux(t, nil)
	for _, first := range []string{"GET / HTTP/1.1\r\n\r\n", "  V1", "\x00"} {
		c, err := net.Dial("tcp", m.ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte(first))
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		// EOF, or a reset when the server closed with our bytes unread.
		var ne net.Error
		if _, err := c.Read(make([]byte, 1)); err == nil || (errors.As(err, &ne) && ne.Timeout()) {
			t.Errorf("first byte %q: read %v, want the server to close", first[0], err)
		}
		c.Close()
	}
	if c := acceptOne(m.raft, 100*time.Millisecond); c != nil {
		t.Error("a stream of unknown kind reached raft")
	}
	if c := acceptOne(m.rpc, 100*time.Millisecond); c != nil {
		t.Error("a stream of unknown kind reached the RPC")
	}
}

// pki writes a CA and node certificates signed by it into dir.
type pki struct {
	t   *testing.T
	dir string
	key *ecdsa.PrivateKey
	ca  *x509.Certificate
}

func newPKI(t *testing.T, name string) *pki {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	p := &pki{t: t, dir: t.TempDir(), key: key, ca: ca}
	p.write(name+"-ca.pem", "CERTIFICATE", der)
	return p
}

func (p *pki) write(name, typ string, der []byte) string {
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		p.t.Fatal(err)
	}
	return path
}

// node issues a certificate for a member and returns its TLS files.
func (p *pki) node(name string) TLSFiles {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		p.t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.key)
	if err != nil {
		p.t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		p.t.Fatal(err)
	}
	return TLSFiles{
		CertFile: p.write(name+".pem", "CERTIFICATE", der),
		KeyFile:  p.write(name+"-key.pem", "EC PRIVATE KEY", kb),
		CAFile:   filepath.Join(p.dir, p.ca.Subject.CommonName+"-ca.pem"),
	}
}

func mustTLS(t *testing.T, f TLSFiles) *tlsFiles {
	t.Helper()
	tf, err := loadTLS(f)
	if err != nil {
		t.Fatal(err)
	}
	return tf
}

// With TLS, only a peer holding a certificate from the CA gets a stream;
// one without a certificate, or with one from another CA, is refused at
// the handshake and nothing reaches raft or the RPC.
func TestMuxMutualTLS(t *testing.T) {
	good := newPKI(t, "members")
	other := newPKI(t, "intruders")
	server := newTestMux(t, mustTLS(t, good.node("n1")))
	addr := server.ln.Addr().String()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	member := newTestMux(t, mustTLS(t, good.node("n2")))
	c, err := member.dial(ctx, addr, streamRPC)
	if err != nil {
		t.Fatalf("member dial: %v", err)
	}
	if got := acceptOne(server.rpc, 5*time.Second); got == nil {
		t.Fatal("a member's stream was not delivered")
	} else {
		got.Close()
	}
	c.Close()

	intruder := newTestMux(t, mustTLS(t, other.node("x1")))
	if c, err := intruder.dial(ctx, addr, streamRPC); err == nil {
		// TLS 1.3 lets the client finish before the server's verdict:
		// the refusal shows on the first read.
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Error("a peer with another CA's certificate got a stream")
		}
		c.Close()
	}
	plain := newTestMux(t, nil)
	if c, err := plain.dial(ctx, addr, streamRPC); err == nil {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Error("a peer without TLS got a stream")
		}
		c.Close()
	}
	if got := acceptOne(server.rpc, 200*time.Millisecond); got != nil {
		t.Error("a refused peer's stream reached the RPC")
	}
	if got := acceptOne(server.raft, 100*time.Millisecond); got != nil {
		t.Error("a refused peer's stream reached raft")
	}
}

// Reload swaps in new files; a bad file keeps the material in use.
func TestTLSReload(t *testing.T) {
	a := newPKI(t, "a")
	files := a.node("n1")
	tf := mustTLS(t, files)
	before := tf.cur.Load()

	b := newPKI(t, "b")
	next := b.node("n1")
	for _, f := range []struct{ from, to string }{{next.CertFile, files.CertFile}, {next.KeyFile, files.KeyFile}, {next.CAFile, files.CAFile}} {
		data, err := os.ReadFile(f.from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f.to, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := tf.reload(); err != nil {
		t.Fatal(err)
	}
	if tf.cur.Load() == before {
		t.Fatal("reload kept the old material")
	}
	after := tf.cur.Load()
	if err := os.WriteFile(files.CAFile, []byte("not pem"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := tf.reload(); err == nil {
		t.Fatal("reload accepted a CA file without a certificate")
	}
	if tf.cur.Load() != after {
		t.Fatal("a failed reload replaced the material in use")
	}
	if _, err := loadTLS(TLSFiles{CertFile: files.CertFile}); err == nil {
		t.Fatal("loadTLS accepted a certificate without key and CA")
	}
}
