package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/flock-paas/flock/builder"
)

// TestNoLoopbackTrust drives a real flock up as an app on the same machine
// would: from loopback, without the token. Every read but /healthz is
// refused, slugs come only with the token or a fresh signed URL, and a
// DNS-rebinding Host is refused even with the token.
func TestNoLoopbackTrust(t *testing.T) {
	f := newFlock(t)
	f.start()
	f.mustCLI("deploy", copyExample(t, "hello"))
	tok := f.token()
	base := "http://" + f.api

	call := func(url, token, host string) (int, string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		if host != "" {
			req.Host = host
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return resp.StatusCode, string(b)
	}

	var rels struct {
		Deploys []struct{ ID string } `json:"deploys"`
	}
	code, body := call(base+"/api/v1/apps/hello/releases", tok, "")
	if err := json.Unmarshal([]byte(body), &rels); code != 200 || err != nil || len(rels.Deploys) == 0 {
		t.Fatalf("releases with the token = %d %s", code, body)
	}
	paths := []string{"/api/v1/apps", "/api/v1/apps/hello", "/api/v1/apps/hello/logs", "/api/v1/apps/hello/releases",
		"/api/v1/deploys/" + rels.Deploys[0].ID, "/api/v1/events", "/metrics", "/artifacts/hello/v1.tar.gz",
		"/api/v1/apps/hello/config", "/api/v1/apps/hello/domains"}
	for _, p := range paths {
		if code, body := call(base+p, "", ""); code != http.StatusUnauthorized || !strings.Contains(body, `"error"`) {
			t.Errorf("GET %s from loopback without the token = %d %s, want 401 with a JSON error", p, code, body)
		}
		if p == "/api/v1/events" {
			continue // a stream
		}
		if code, _ := call(base+p, tok, ""); code != http.StatusOK {
			t.Errorf("GET %s with the token = %d, want 200", p, code)
		}
		if code, body := call(base+p, tok, "rebind.attacker.example:"+strings.Split(f.api, ":")[1]); code != http.StatusMisdirectedRequest && !strings.HasPrefix(p, "/artifacts/") {
			t.Errorf("GET %s with a rebinding Host = %d %s, want 421", p, code, body)
		}
	}
	if code, _ := call(base+"/healthz", "", ""); code != http.StatusOK {
		t.Errorf("GET /healthz without the token = %d, want 200", code)
	}

	sg, err := builder.NewSigner(tok, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if code, body := call(sg.SignURL(base+"/artifacts/hello/v1.tar.gz"), "", ""); code != http.StatusOK || !strings.HasPrefix(body, "\x1f\x8b") {
		t.Errorf("fresh signed slug URL = %d, want 200 and a gzip body", code)
	}
	if code, body := call(sg.SignUntil(base+"/artifacts/hello/v1.tar.gz", time.Now().Add(-time.Second)), "", ""); code != http.StatusForbidden || !strings.Contains(body, "expired") {
		t.Errorf("expired signed slug URL = %d %s, want 403 naming the expiry", code, body)
	}
}
