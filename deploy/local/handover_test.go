package local

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy"
	"github.com/flock-paas/flock/deploy/testkit"
)

// rotation is a Drainer that can undo a drain, as the router and the
// waker are: it records each call, in order.
type rotation struct {
	mu    sync.Mutex
	calls []string
}

func (r *rotation) Drain(_ context.Context, _ string, in deploy.Instance) error {
	r.record("drain " + in.ID)
	return nil
}

func (r *rotation) Undrain(_ context.Context, _ string, in deploy.Instance) error {
	r.record("undrain " + in.ID)
	return nil
}

func (r *rotation) record(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, s)
}

func (r *rotation) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

// TestHandover: a new release takes the traffic (the old instance is
// drained) as soon as it passes its check, long before its stability
// window ends, while the old instance keeps running; when the deploy then
// fails (cancelled here, or a new instance that exits within the window),
// the old instance is put back in rotation and still serves.
func TestHandover(t *testing.T) {
	rot := &rotation{}
	s := startScheduler(t, func(c *Config) { c.Drainer = rot })
	if err := s.Deploy(context.Background(), appSpec("web", "v1", 1), nil); err != nil {
		t.Fatal(err)
	}
	v1 := instances(t, s, "web")[0]
	if calls := rot.list(); len(calls) != 0 {
		t.Fatalf("first deploy drained %v; nothing to hand over", calls)
	}

	window := 60 // seconds: the deploy below is cancelled long before it ends
	v2 := appSpec("web", "v2", 1)
	v2.Descriptor.StableSeconds = &window
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	var log testkit.Buffer
	go func() { done <- s.Deploy(ctx, v2, &log) }()
	testkit.WaitFor(t, 20*time.Second, "v1 drained while v2 is in its window", func() bool {
		return slices.Contains(rot.list(), "drain "+v1.ID)
	})
	select {
	case err := <-done:
		t.Fatalf("Deploy returned %v before its 60 s window ended", err)
	default:
	}
	if _, err := get(v1.Port, "/health"); err != nil {
		t.Errorf("v1 stopped at the handover; it must run through v2's window: %v", err)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Deploy = %v, want context.Canceled\n%s", err, log.String())
	}
	checkGivenBack(t, s, rot, v1, "v2 (cancelled)")

	v3 := appSpec("web", "v3", 1, "APP_MODE", "flap") // passes, then exits within the window
	v3.Descriptor.StableSeconds = &window
	before := len(rot.list())
	err := s.Deploy(context.Background(), v3, &log)
	if !errors.Is(err, deploy.ErrUnhealthy) {
		t.Fatalf("Deploy of a release that exits in its window = %v, want ErrUnhealthy\n%s", err, log.String())
	}
	if calls := rot.list()[before:]; !slices.Contains(calls, "drain "+v1.ID) {
		t.Errorf("v3 passed its check but v1 was not handed over: %v", calls)
	}
	checkGivenBack(t, s, rot, v1, "v3 (exited in its window)")
}

// checkGivenBack checks that the last rotation call about old put it
// back, and that old is the app's only instance and serves.
func checkGivenBack(t *testing.T, s *Scheduler, rot *rotation, old deploy.Instance, what string) {
	t.Helper()
	calls := rot.list()
	last := ""
	for _, c := range calls {
		if strings.HasSuffix(c, " "+old.ID) {
			last = c
		}
	}
	if last != "undrain "+old.ID {
		t.Errorf("after %s: rotation calls %v, want the last about %s to put it back", what, calls, old.ID)
	}
	now := instances(t, s, "web")
	if len(now) != 1 || now[0].ID != old.ID {
		t.Errorf("after %s: instances %v, want only %s", what, fmt.Sprint(now), old.ID)
	}
	if _, err := get(old.Port, "/health"); err != nil {
		t.Errorf("after %s: %s does not serve: %v", what, old.ID, err)
	}
}
