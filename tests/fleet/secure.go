package main

// HTTPS and authentication on the pprof listeners, as a service behind its own TLS and a
// password or token would serve them: for testing that a scraper presents what it is configured
// with, checks the certificate, and reports a refusal as such.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// tlsConfig makes a self-signed certificate for 127.0.0.1 and localhost, writes it to
// dir/ca.pem (what a client trusts: the certificate is its own authority) and returns the
// server's configuration. A new key every start: tests never depend on a stored secret.
func tlsConfig(dir string) (*tls.Config, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	if err != nil {
		return nil, err
	}
	tmpl := x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "collectord-fleet"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, &tmpl, &tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	// Atomically: a test may be waiting for the file.
	tmp := filepath.Join(dir, fmt.Sprintf(".ca.pem.%d", os.Getpid()))
	if err := os.WriteFile(tmp, certPEM, 0o644); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, filepath.Join(dir, "ca.pem")); err != nil {
		return nil, err
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}, nil
}

// authHandler answers 401 unless the request carries the basic credentials "user:pass" or the
// bearer token (whichever are set), compared in constant time.
type authHandler struct {
	basic string // "user:pass" or ""
	token string
	next  http.Handler
}

func equal(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

func (h *authHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ok := false
	if h.basic != "" {
		if u, p, found := r.BasicAuth(); found {
			ok = equal(u+":"+p, h.basic)
		}
	}
	if !ok && h.token != "" {
		const prefix = "Bearer "
		a := r.Header.Get("Authorization")
		ok = strings.HasPrefix(a, prefix) && equal(a[len(prefix):], h.token)
	}
	if !ok {
		w.Header().Set("WWW-Authenticate", `Basic realm="collectord-fleet"`)
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	h.next.ServeHTTP(w, r)
}
