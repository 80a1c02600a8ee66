package cluster

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
)

// TLSFiles names the PEM files that put the Raft port, and everything
// multiplexed on it, behind mutual TLS: this node's certificate and key, and
// the CA that signs every member's certificate.
type TLSFiles struct {
	CertFile string
	KeyFile  string
	CAFile   string
}

// Enabled reports whether any file is set.
func (f TLSFiles) Enabled() bool { return f.CertFile != "" || f.KeyFile != "" || f.CAFile != "" }

// tlsFiles holds the loaded material; Reload swaps it in one step, so a
// handshake sees either the old certificate and CA or the new ones.
type tlsFiles struct {
	files TLSFiles
	cur   atomic.Pointer[tlsMaterial]
}

type tlsMaterial struct {
	cert tls.Certificate
	ca   *x509.CertPool
}

func loadTLS(f TLSFiles) (*tlsFiles, error) {
	if f.CertFile == "" || f.KeyFile == "" || f.CAFile == "" {
		return nil, errors.New("TLS needs all three of -tls-cert, -tls-key and -tls-ca")
	}
	t := &tlsFiles{files: f}
	if err := t.reload(); err != nil {
		return nil, err
	}
	return t, nil
}

// reload reads the files again; on error the material in use stays.
func (t *tlsFiles) reload() error {
	cert, err := tls.LoadX509KeyPair(t.files.CertFile, t.files.KeyFile)
	if err != nil {
		return fmt.Errorf("load TLS certificate: %w", err)
	}
	pem, err := os.ReadFile(t.files.CAFile)
	if err != nil {
		return fmt.Errorf("read TLS CA: %w", err)
	}
	ca := x509.NewCertPool()
	if !ca.AppendCertsFromPEM(pem) {
		return fmt.Errorf("TLS CA %s: no PEM certificate found", t.files.CAFile)
	}
	t.cur.Store(&tlsMaterial{cert: cert, ca: ca})
	return nil
}

// Both sides require the other's certificate and verify its chain against
// the CA. Host names are not checked: members dial each other by whatever
// address they advertise (an IP, a container name, a pod DNS name), and the
// CA, which signs members only, is what makes a peer a member.
func (t *tlsFiles) serverConfig() *tls.Config {
	m := t.cur.Load()
	return &tls.Config{
		MinVersion:       tls.VersionTLS12,
		Certificates:     []tls.Certificate{m.cert},
		ClientAuth:       tls.RequireAnyClientCert,
		VerifyConnection: verifyPeer(m.ca),
	}
}

func (t *tlsFiles) clientConfig() *tls.Config {
	m := t.cur.Load()
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		Certificates:       []tls.Certificate{m.cert},
		InsecureSkipVerify: true, // the chain is verified by VerifyConnection; see serverConfig
		VerifyConnection:   verifyPeer(m.ca),
	}
}

func verifyPeer(ca *x509.CertPool) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("peer sent no certificate")
		}
		inter := x509.NewCertPool()
		for _, c := range cs.PeerCertificates[1:] {
			inter.AddCert(c)
		}
		_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{
			Roots:         ca,
			Intermediates: inter,
			KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
		})
		if err != nil {
			return fmt.Errorf("peer certificate: %w", err)
		}
		return nil
	}
}
