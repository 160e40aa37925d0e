package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestWebhookIsWired: flock up serves the GitHub webhook at /hooks/github:
// without a secret it refuses everything (503), with one it accepts only
// signed deliveries; and HAProxy's stats page answers at /stats;csv.
func TestWebhookIsWired(t *testing.T) {
	body, err := os.ReadFile(filepath.Join(repoRoot(t), "webhook", "testdata", "github", "ping.json"))
	if err != nil {
		t.Fatalf("read the fixture: %v", err)
	}
	post := func(f *flock, sig string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, "http://"+f.api+"/hooks/github", strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-GitHub-Event", "ping")
		req.Header.Set("X-GitHub-Delivery", "d1")
		if sig != "" {
			req.Header.Set("X-Hub-Signature-256", sig)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	sign := func(secret string) string {
		m := hmac.New(sha256.New, []byte(secret))
		m.Write(body)
		return "sha256=" + hex.EncodeToString(m.Sum(nil))
	}

	f := newFlock(t)
	f.start()
	if code, msg := post(f, sign("s3cret")); code != 503 || !strings.Contains(msg, "secret") {
		t.Errorf("no --github-secret: %d %q, want 503 saying why", code, msg)
	}
	resp, err := http.Get("http://" + f.stats + "/stats;csv")
	if err != nil {
		t.Fatal(err)
	}
	csv, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(string(csv), "# pxname,svname") {
		t.Errorf("stats page: %d %.80q", resp.StatusCode, csv)
	}
	f.stop()

	g := newFlock(t, "--github-secret", "s3cret")
	g.start()
	if code, _ := post(g, ""); code != 401 {
		t.Errorf("unsigned ping: %d, want 401", code)
	}
	if code, _ := post(g, sign("wrong")); code != 401 {
		t.Errorf("ping signed with another secret: %d, want 401", code)
	}
	if code, msg := post(g, sign("s3cret")); code != 200 {
		t.Errorf("signed ping: %d %q, want 200", code, msg)
	}
}
