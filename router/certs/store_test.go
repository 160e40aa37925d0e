package certs

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestStorePrune: the files of hosts no longer served go once their
// certificate has expired (or cannot be read); a gone host's good
// certificate stays for its return, and a served host's file is never
// touched here, expired or not.
func TestStorePrune(t *testing.T) {
	dir := t.TempDir()
	ca, err := OpenLocalCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	s := store{dir: filepath.Join(dir, "certs")}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	good := func(host string) {
		c, k, err := ca.Issue(context.Background(), host)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.save(host, c, k); err != nil {
			t.Fatal(err)
		}
	}
	write := func(name string, b []byte) {
		if err := os.WriteFile(filepath.Join(s.dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	good("back.localhost")                         // gone, still good: kept
	good("served.localhost")                       // served: kept
	write("old.localhost.pem", expiredPEM(t))      // gone, expired: deleted
	write("served2.localhost.pem", expiredPEM(t))  // served, expired: kept (renewed elsewhere)
	write("junk.localhost.pem", []byte("garbage")) // gone, unreadable: deleted
	write("notes.txt", []byte("mine"))             // not the store's: kept

	served := map[string]bool{"served.localhost": true, "served2.localhost": true}
	gone, err := s.prune(time.Now(), func(h string) bool { return served[h] })
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(gone)
	if want := []string{"junk.localhost", "old.localhost"}; !slices.Equal(gone, want) {
		t.Errorf("pruned %v, want %v", gone, want)
	}
	var left []string
	entries, _ := os.ReadDir(s.dir)
	for _, e := range entries {
		left = append(left, e.Name())
	}
	if want := []string{"back.localhost.pem", "notes.txt", "served.localhost.pem", "served2.localhost.pem"}; !slices.Equal(left, want) {
		t.Errorf("left %v, want %v", left, want)
	}
}

// expiredPEM is a self-signed certificate that expired yesterday, and its key.
func expiredPEM(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "old"},
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})...)
}
