package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLocalCAKeptAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	ca, err := OpenLocalCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]os.FileMode{CAFile: 0o644, CAKeyFile: 0o600} {
		fi, err := os.Stat(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s: mode %04o, want %04o", file, fi.Mode().Perm(), want)
		}
	}
	again, err := OpenLocalCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Certificate().Equal(ca.Certificate()) {
		t.Fatal("reopening the data dir made a new CA; users would have to trust it again")
	}
	// A certificate the first CA signed verifies against the ca.pem the
	// second one reads: what a user trusted stays trusted.
	certPEM, keyPEM, err := ca.Issue(context.Background(), "hello.localhost")
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(pair.Certificate[0])
	roots := x509.NewCertPool()
	caPEM, _ := os.ReadFile(again.File())
	roots.AppendCertsFromPEM(caPEM)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: "hello.localhost"}); err != nil {
		t.Fatalf("leaf does not verify against ca.pem: %v", err)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: "other.localhost"}); err == nil {
		t.Fatal("leaf verifies for another host")
	}
	if got := leaf.NotAfter.Sub(time.Now()); got < 60*24*time.Hour {
		t.Errorf("leaf lives %v; it must outlive the 30-day renewal window", got)
	}
	if !again.Signed(leaf) {
		t.Error("Signed: the CA does not recognise its own leaf")
	}
}

func TestLocalCARefusesHalf(t *testing.T) {
	for _, missing := range []string{CAFile, CAKeyFile} {
		t.Run(missing, func(t *testing.T) {
			dir := t.TempDir()
			if _, err := OpenLocalCA(dir); err != nil {
				t.Fatal(err)
			}
			os.Remove(filepath.Join(dir, missing))
			_, err := OpenLocalCA(dir)
			if err == nil || !strings.Contains(err.Error(), "exists without "+filepath.Join(dir, missing)) {
				t.Fatalf("err = %v, want one naming the missing %s", err, missing)
			}
		})
	}
}

func TestStoreRefusesBadCertificates(t *testing.T) {
	dir := t.TempDir()
	ca, err := OpenLocalCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	other, err := OpenLocalCA(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	hello, helloKey, _ := ca.Issue(context.Background(), "hello.localhost")
	_, otherKey, _ := other.Issue(context.Background(), "hello.localhost")
	s := store{dir: filepath.Join(dir, "certs")}
	tests := []struct {
		name, host string
		cert, key  []byte
		want       string
	}{
		{"another host", "shop.localhost", hello, helloKey, "valid for hello.localhost, not shop.localhost"},
		{"key of another certificate", "hello.localhost", hello, otherKey, "private key does not match public key"},
		{"not PEM", "hello.localhost", []byte("junk"), helloKey, "failed to find any PEM data"},
		{"path in host", "../x", hello, helloKey, `"../x": not a host name`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.save(tt.host, tt.cert, tt.key)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
	c, err := s.save("hello.localhost", hello, helloKey)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(c.file)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s: %v, mode %v; want 0600", c.file, err, fi.Mode())
	}
	back, err := s.load("hello.localhost")
	if err != nil || !back.leaf.Equal(c.leaf) {
		t.Fatalf("load after save: %v", err)
	}
}
