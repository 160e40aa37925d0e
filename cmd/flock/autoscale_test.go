package main

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy/testkit"
)

// TestAutoscaleUnderLoad: an app with maxInstances grows when its
// instances are overloaded (HAProxy's current sessions per server at or
// above --target-sessions) and shrinks back when the load is gone, within
// its bounds.
func TestAutoscaleUnderLoad(t *testing.T) {
	f := newFlock(t, "--scale-every", "300ms", "--target-sessions", "2", "--scale-cooldown", "1s")
	f.start()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "package.json"), []byte(`{"name":"busy","scripts":{"start":"node server.js"},
		"flock":{"minInstances":1,"maxInstances":3,"idle":"never"}}`), 0o644)
	os.WriteFile(filepath.Join(dir, "server.js"), []byte(streamApp), 0o644)
	f.mustCLI("deploy", dir)

	// Long-lived requests: each is a current session on its server.
	var open []*http.Response
	defer func() {
		for _, r := range open {
			r.Body.Close()
		}
	}()
	for i := 0; i < 4; i++ {
		req, _ := http.NewRequest(http.MethodGet, "http://"+f.http+"/stream", nil)
		req.Host = "busy.localhost"
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("open stream %d: %v %v", i, err, resp)
		}
		open = append(open, resp)
	}
	testkit.WaitFor(t, 20*time.Second, "busy scaled up to its maximum of 3", func() bool {
		a := f.apps()["busy"]
		return a.Desired == 3 && a.HealthyCount() == 3
	})
	for _, r := range open {
		r.Body.Close()
	}
	open = nil
	testkit.WaitFor(t, 20*time.Second, "busy back to its minimum of 1", func() bool { return f.apps()["busy"].Desired == 1 })
	if s := f.apps()["busy"].State; s != "running" {
		t.Errorf("busy is %s, want running (idle: never)", s)
	}
}
