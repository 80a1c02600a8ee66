package e2e

// Helpers of tls_test.go: a CA and node certificates made with crypto/x509
// for each test (nothing is checked in), the PEM files a node reads with
// -tls-cert, -tls-key and -tls-ca, clusters whose nodes each get their own
// files, and a raw look at the certificate a Raft port presents.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testCA is a certificate authority made for one test.
type testCA struct {
	name string
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t testing.TB, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          tlsSerial(t),
		Subject:               pkix.Name{CommonName: name, Organization: []string{"raftlookupd e2e"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{name: name, cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

func tlsSerial(t testing.TB) *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// tlsPair is a node certificate and its key, PEM encoded.
type tlsPair struct {
	certPEM, keyPEM []byte
}

// issue signs a certificate for cn usable on both sides of a connection
// (members dial each other and accept each other).
func (ca *testCA) issue(t testing.TB, cn string) tlsPair {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: tlsSerial(t),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:     []string{"localhost", cn},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return tlsPair{
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}),
	}
}

// clientConfig is a TLS client presenting p. It does not check the
// server's chain (the tests look at what the server does with the client's
// certificate, and at the certificate it presents).
func (p tlsPair) clientConfig(t testing.TB) *tls.Config {
	t.Helper()
	cert, err := tls.X509KeyPair(p.certPEM, p.keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}
}

// tlsFiles are the paths a node is started with; rotation rewrites them in
// place.
type tlsFiles struct {
	cert, key, ca string
}

func (f tlsFiles) args() []string {
	return []string{"-tls-cert", f.cert, "-tls-key", f.key, "-tls-ca", f.ca}
}

// writeTLSFiles writes a node's files under dir.
func writeTLSFiles(t testing.TB, dir string, p tlsPair, cas ...*testCA) tlsFiles {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	f := tlsFiles{cert: filepath.Join(dir, "node.crt"), key: filepath.Join(dir, "node.key"), ca: filepath.Join(dir, "ca.crt")}
	f.writePair(t, p)
	f.writeCA(t, cas...)
	return f
}

// writePair replaces the certificate and key; each file is replaced by a
// rename, so a reload never reads half a file. (The two files are two
// renames: a reload between them fails on the mismatched pair and keeps
// the material in use, which is what SIGHUP is documented to do.)
func (f tlsFiles) writePair(t testing.TB, p tlsPair) {
	t.Helper()
	writeFileAtomic(t, f.key, p.keyPEM)
	writeFileAtomic(t, f.cert, p.certPEM)
}

// writeCA replaces the CA bundle with the given CAs.
func (f tlsFiles) writeCA(t testing.TB, cas ...*testCA) {
	t.Helper()
	var bundle []byte
	for _, ca := range cas {
		bundle = append(bundle, ca.pem...)
	}
	writeFileAtomic(t, f.ca, bundle)
}

func writeFileAtomic(t testing.TB, path string, b []byte) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// startClusterEach is StartCluster with per-node arguments: args(id) is
// appended to extra for node id (n1..nSIZE). Same retry on a lost port race.
func startClusterEach(t testing.TB, size int, args func(id string) []string, extra ...string) *Cluster {
	t.Helper()
	bin := raftlookupdBinary(t)
	for attempt := 1; ; attempt++ {
		ports := freePorts(t, 3*size)
		base := t.TempDir()
		c := &Cluster{t: t}
		var peers []string
		for i := range size {
			peers = append(peers, fmt.Sprintf("n%d=%s", i+1, hostPort(ports[3*i+2])))
		}
		for i := range size {
			id := fmt.Sprintf("n%d", i+1)
			dir := filepath.Join(base, id)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			a := append(append([]string(nil), extra...), args(id)...)
			if size > 1 {
				a = append(a, "-peers", strings.Join(peers, ","))
			}
			c.Nodes = append(c.Nodes, newNode(t, bin, id, ports[3*i], ports[3*i+1], ports[3*i+2], dir, a))
		}
		for _, n := range c.Nodes {
			if err := n.start(); err != nil {
				t.Fatal(err)
			}
		}
		err := eventually(clusterReadyTimeout, func() error { return c.checkReady(c.Nodes) })
		if err == nil {
			return c
		}
		lost := false
		for _, n := range c.Nodes {
			if !n.Running() && logShowsBindFailure(n.LogPath) {
				lost = true
			}
		}
		if lost && attempt < maxStartAttempts {
			t.Logf("cluster start attempt %d lost a port race, retrying: %v", attempt, err)
			for _, n := range c.Nodes {
				_ = n.stopQuietly()
			}
			continue
		}
		t.Fatalf("%d-node cluster not ready within %v: %v", size, clusterReadyTimeout, err)
	}
}

// presentedIssuer returns the issuer of the certificate a Raft port
// presents to a client showing p.
func presentedIssuer(raftAddr string, p tlsPair, t testing.TB) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), rawTimeout)
	defer cancel()
	c, err := rawStream(ctx, raftAddr, nil, p.clientConfig(t), muxRPC)
	if err != nil {
		return "", err
	}
	defer c.Close()
	cs := c.(*tls.Conn).ConnectionState()
	if len(cs.PeerCertificates) == 0 {
		return "", fmt.Errorf("%s presented no certificate", raftAddr)
	}
	return cs.PeerCertificates[0].Issuer.CommonName, nil
}
