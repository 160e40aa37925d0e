package local

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy/procgroup"
	"github.com/flock-paas/flock/deploy/testkit"
)

// TestDetachedSchedulerLetsGo: once a detached Run has returned, its
// instances run on, but the Scheduler no longer supervises them: its
// supervisors end, and a process that dies afterwards (stopped by the
// next Flock, say) is not restarted by it, nor is state.json rewritten.
func TestDetachedSchedulerLetsGo(t *testing.T) {
	dir := t.TempDir()
	s, err := New(Config{Dir: dir, StopGrace: 2 * time.Second, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	s.backoffMin = 10 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	if err := s.Deploy(ctx, appSpec("web", "v1", 1), nil); err != nil {
		t.Fatal(err)
	}
	id := instances(t, s, "web")[0].ID
	s.mu.Lock()
	in := s.apps["web"].instances[id]
	s.mu.Unlock()
	pid := info(t, in.snapshot().Port).Pid
	s.Detach()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	state, err := os.ReadFile(filepath.Join(dir, "state.json"))
	if err != nil {
		t.Fatalf("detached Run left no state.json: %v", err)
	}
	if !procgroup.Alive(pid) {
		t.Fatal("the instance did not outlive the detached Run")
	}
	select {
	case <-in.exited:
	case <-time.After(10 * time.Second):
		t.Fatal("the instance's supervisor still runs 10s after the detached Run returned")
	}
	in.mu.Lock()
	pgid := in.pgid
	in.mu.Unlock()
	procgroup.Kill(pgid) // as the next Flock would stop it
	testkit.WaitFor(t, 5*time.Second, "the instance's process gone", func() bool { return !procgroup.Alive(pid) })
	if b, _ := os.ReadFile(filepath.Join(dir, "state.json")); string(b) != string(state) {
		t.Errorf("state.json rewritten after the detached Run returned")
	}
}
