package router

import (
	"strings"
	"testing"

	"github.com/flock-paas/flock/deploy/testkit"
)

func TestSetCertRefuses(t *testing.T) {
	testkit.RequireHAProxy(t)
	r, err := New(Config{Dir: shortTempDir(t), HTTPSAddr: ":0"})
	if err == nil {
		t.Fatal("New accepted HTTPS port 0")
	}
	r, err = New(Config{Dir: shortTempDir(t), HTTPSAddr: ":8443"})
	if err != nil {
		t.Fatalf("New with --https :8443 (every address): %v", err)
	}
	pem := "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
	tests := []struct {
		name, host, file, pem, want string
	}{
		{"host with a space", "a b", "/d/a.pem", pem, `"a b": not a lower-case host name`},
		{"upper-case host", "A.localhost", "/d/a.pem", pem, "not a lower-case host name"},
		{"relative file", "a.localhost", "d/a.pem", pem, "must be an absolute path"},
		{"file with a space", "a.localhost", "/d/a b.pem", pem, "must be an absolute path"},
		{"file with a newline", "a.localhost", "/d/a.pem\nshow info", pem, "must be an absolute path"},
		{"no PEM", "a.localhost", "/d/a.pem", "hello", "no PEM block"},
		{"carriage return inside", "a.localhost", "/d/a.pem", "-----BEGIN CERTIFICATE-----\nMI\rIB\n", "stray control character"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := r.SetCert(tt.host, Cert{File: tt.file, PEM: []byte(tt.pem)})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
	if err := r.SetCert("a.localhost", Cert{File: "/d/a.pem", PEM: []byte("\n" + pem + "\r\n\n" + pem)}); err != nil {
		t.Fatalf("PEM with blank lines and CRLF: %v", err)
	}
}

// FuzzPEMPayload: whatever PEM text comes in (from an issuer: ACME is
// outside input), an accepted payload is lines of text that HAProxy's
// "<<" payload cannot end early or split into a second command.
func FuzzPEMPayload(f *testing.F) {
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"))
	f.Add([]byte("\r\n-----BEGIN X-----\r\n\r\nAA\n\n\n"))
	f.Fuzz(func(t *testing.T, pem []byte) {
		out, err := pemPayload(pem)
		if err != nil {
			return
		}
		s := string(out)
		if !strings.HasSuffix(s, "\n") || strings.HasPrefix(s, "\n") || strings.Contains(s, "\n\n") ||
			strings.ContainsAny(s, "\r\x00") {
			t.Fatalf("payload %q", s)
		}
		for _, l := range strings.Split(strings.TrimSuffix(s, "\n"), "\n") {
			if strings.TrimSpace(l) == "" {
				t.Fatalf("blank line in payload %q", s)
			}
		}
	})
}

// TestTrusted: a host is trusted while it holds a publicly trusted
// certificate, and only then.
func TestTrusted(t *testing.T) {
	testkit.RequireHAProxy(t)
	r, err := New(Config{Dir: shortTempDir(t), HTTPSAddr: ":8443"})
	if err != nil {
		t.Fatal(err)
	}
	pem := []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
	steps := []struct {
		name string
		do   func() error
		want bool
	}{
		{"no certificate", func() error { return nil }, false},
		{"local CA", func() error { return r.SetCert("a.example.com", Cert{File: "/d/a.pem", PEM: pem}) }, false},
		{"ACME", func() error { return r.SetCert("a.example.com", Cert{File: "/d/a.pem", PEM: pem, Trusted: true}) }, true},
		{"removed", func() error { r.RemoveCert("a.example.com"); return nil }, false},
	}
	for _, s := range steps {
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if got := r.Trusted("a.example.com"); got != s.want {
			t.Errorf("%s: Trusted = %v, want %v", s.name, got, s.want)
		}
	}
}
