package builder

import (
	"strings"
	"testing"
	"time"
)

func TestSigner(t *testing.T) {
	s, err := NewSigner("tok", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := NewSigner("another token", time.Hour)
	const base = "http://flock:8080"
	fresh := s.SignURL(base + "/artifacts/web/v3.tar.gz")
	expired := s.SignUntil(base+"/artifacts/web/v3.tar.gz", time.Now().Add(-time.Second))
	tamperedExpiry := strings.Replace(expired, "/s/", "/s/9", 1)
	tests := []struct {
		name, url string
		want      string // plain path; "" with wantErr false: not a signed path
		wantErr   string
	}{
		{"fresh", fresh, "/artifacts/web/v3.tar.gz", ""},
		{"expired", expired, "", "expired"},
		{"expiry moved later", tamperedExpiry, "", "wrong signature"},
		{"signature of another slug", strings.Replace(fresh, "v3.tar.gz", "v2.tar.gz", 1), "", "wrong signature"},
		{"signature of another app", strings.Replace(fresh, "/web/", "/api/", 1), "", "wrong signature"},
		{"signed with another token", other.SignURL(base + "/artifacts/web/v3.tar.gz"), "", "wrong signature"},
		{"signed without expiry (before)", base + "/artifacts/s/" + strings.Repeat("ab", 32) + "/web/v3.tar.gz", "", "want /artifacts/s/<expiry>"},
		{"plain path", base + "/artifacts/web/v3.tar.gz", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Verify(strings.TrimPrefix(tt.url, base))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Verify(%s) = %q, %v; want an error with %q", tt.url, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Verify(%s) = %q, %v; want %q", tt.url, got, err, tt.want)
			}
		})
	}

	t.Run("file name stays last", func(t *testing.T) {
		if !strings.HasSuffix(fresh, "/web/v3.tar.gz") || !strings.HasPrefix(fresh, base+"/artifacts/s/") {
			t.Errorf("signed URL %s: want %s/artifacts/s/.../web/v3.tar.gz", fresh, base)
		}
	})
	t.Run("one URL per period", func(t *testing.T) {
		// Signing the same release again (a reconcile) must not change a
		// Marathon definition; a period boundary between the two calls is
		// the only allowed difference.
		again := s.SignURL(base + "/artifacts/web/v3.tar.gz")
		if again != fresh && time.Now().Unix()%3600 > 5 {
			t.Errorf("signed twice in one period: %s then %s", fresh, again)
		}
	})
	t.Run("valid for at least a period", func(t *testing.T) {
		exp := strings.Split(strings.TrimPrefix(fresh, base+"/artifacts/s/"), "/")[0]
		sec, _ := time.ParseDuration(exp + "s")
		left := time.Until(time.Unix(int64(sec.Seconds()), 0))
		if left < time.Hour-time.Minute || left > 2*time.Hour {
			t.Errorf("signed URL valid for %s more, want between 1h and 2h", left)
		}
	})
	t.Run("a non-artifact URL is left alone", func(t *testing.T) {
		if got := s.SignURL("http://x/other"); got != "http://x/other" {
			t.Errorf("SignURL = %s", got)
		}
	})
	t.Run("resign an expired URL", func(t *testing.T) {
		again := s.Resign(expired)
		if got, err := s.Verify(strings.TrimPrefix(again, base)); err != nil || got != "/artifacts/web/v3.tar.gz" {
			t.Errorf("Resign(expired) = %s: Verify %q, %v", again, got, err)
		}
		for _, u := range []string{tamperedExpiry, other.SignURL(base + "/artifacts/web/v3.tar.gz"), base + "/artifacts/web/v3.tar.gz", "http://x/y"} {
			if got := s.Resign(u); got != u {
				t.Errorf("Resign(%s) = %s, want it unchanged", u, got)
			}
		}
	})
	if _, err := NewSigner("", time.Hour); err == nil {
		t.Error("NewSigner without a secret: no error")
	}
}
