package main

import (
	"strings"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy"
)

// TestAppsTableKeepsItsShape: an app's error (a stack trace with newlines
// and tabs, or a very long line) never breaks the `flock apps` table: one
// line per app with every column, and the error after the table on one
// line.
func TestAppsTableKeepsItsShape(t *testing.T) {
	trace := "instance web.v2.1 exited with status 1:\n\tError: boom: missing DATABASE_URL\n    at Object.<anonymous> (/srv/app/server.js:3:7)\n" + strings.Repeat("x", 2000)
	apps := []deploy.App{
		{Name: "broken", State: deploy.StateFailed, Desired: 1, Release: "v2", URL: "http://broken.localhost:8000", Error: trace},
		{Name: "fine", State: deploy.StateRunning, Desired: 1, Release: "v1", URL: "http://fine.localhost:8000"},
	}
	var b strings.Builder
	if err := printApps(&b, apps, time.Now()); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
	if len(lines) != 5 { // header, 2 apps, blank, 1 note
		t.Fatalf("want 5 lines, got %d:\n%s", len(lines), b.String())
	}
	for _, l := range lines[:3] {
		if n := len(strings.Fields(l)); n < 6 || len(l) > 200 {
			t.Errorf("table line broken (%d fields, %d chars): %q", n, len(l), l)
		}
	}
	if !strings.HasPrefix(lines[4], "broken: instance web.v2.1 exited with status 1: Error: boom: missing DATABASE_URL") || len([]rune(lines[4])) > 320 {
		t.Errorf("error note: %q", lines[4])
	}
}
