package main

import (
	"strings"
	"testing"
)

// TestRedeployLosesNoRequest: redeploys of a one-instance app under a
// steady load fail no request. Each rollout retires the old instance the
// moment the new one is healthy; the router learns of the new one from the
// engine's event (its snapshot), routes it, and only then lets the old
// one's drain take it out of rotation. A deploy reports the release live
// once HAProxy routes the app, and the new release answers right after.
func TestRedeployLosesNoRequest(t *testing.T) {
	f := newFlock(t)
	f.start()
	app := copyExample(t, "hello")
	f.mustCLI("deploy", app)
	l := startE2ELoad(f.http, "hello.localhost", 4)
	defer l.finish()
	l.await(t, 100)
	for _, rel := range []string{"v2", "v3", "v4"} {
		f.mustCLI("deploy", app)
		if code, body, _ := f.get("hello.localhost"); code != 200 || !strings.Contains(body, "(release "+rel+")") {
			t.Errorf("right after the deploy of %s: %d %q", rel, code, body)
		}
		l.await(t, 100)
	}
	sent, failed := l.finish()
	t.Logf("3 redeploys under load: %d requests, %d failed", sent, failed)
	if failed != 0 {
		t.Errorf("%d of %d requests failed, last: %v", failed, sent, l.lastErr.Load())
	}
}
