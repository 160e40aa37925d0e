package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// upFails runs a `flock up` on f's data dir that must stop at start, and returns
// what it printed.
func (f *flock) upFails(what string) string {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	other := newFlock(f.t) // fresh ports, so only the data dir is shared
	cmd := exec.CommandContext(ctx, flockBin, "up", "--data-dir", f.dataDir, "--http", other.http, "--api", other.api,
		"--stats", other.stats, "--waker", other.waker)
	cmd.Env = append(os.Environ(), "FLOCK_TOKEN=")
	out, err := cmd.CombinedOutput()
	if err == nil || ctx.Err() != nil {
		f.t.Fatalf("flock up with %s did not stop with an error (%v):\n%s", what, err, out)
	}
	return string(out)
}

// TestStoreDamageStopsFlockUp drives the store's failures through the real
// binary: a second `flock up` on a data dir in use, then a damaged
// flock.db, whose error tells the operator the command that brings the
// apps back.
func TestStoreDamageStopsFlockUp(t *testing.T) {
	f := newFlock(t)
	f.start()
	f.mustCLI("deploy", copyExample(t, "hello"))

	out := f.upFails("a data dir in use")
	if !strings.Contains(out, "another Flock holds the data dir "+f.dataDir) {
		t.Fatalf("second flock up said:\n%s\nwant: another Flock holds the data dir %s", out, f.dataDir)
	}
	f.stop()

	db := filepath.Join(f.dataDir, "flock.db")
	data, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 8192; i++ {
		data[i] ^= 0x5a
	}
	if err := os.WriteFile(db, data, 0o600); err != nil {
		t.Fatal(err)
	}
	out = f.upFails("a damaged store")
	i := strings.Index(out, "run: ")
	if !strings.Contains(out, db+" is damaged") || i < 0 {
		t.Fatalf("flock up on a damaged store said:\n%s\nwant it to name %s and the command to restore it", out, db)
	}
	fix := strings.TrimSpace(out[i+len("run: "):])
	if o, err := exec.Command("sh", "-c", fix).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v %s", fix, err, o)
	}
	f.start()
	if _, ok := f.apps()["hello"]; !ok {
		t.Fatalf("after %s, flock apps has no hello", fix)
	}
}
