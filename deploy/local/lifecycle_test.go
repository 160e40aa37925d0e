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

func TestDeployBeforeRunAndStopOnRunEnd(t *testing.T) {
	s, err := New(Config{Dir: t.TempDir(), StopGrace: 2 * time.Second, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Deploy(ctx, appSpec("web", "v1", 2), nil); err != nil {
		t.Fatalf("Deploy before Run: %v", err)
	}
	var pids []int
	for _, in := range instances(t, s, "web") {
		pids = append(pids, info(t, in.Port).Pid)
	}
	if _, err := os.Stat(filepath.Join(s.cfg.Dir, "state.json")); err != nil {
		t.Errorf("no state file while instances run: %v", err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Run(rctx) }()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		if procgroup.Alive(pid) {
			t.Errorf("pid %d survives Run", pid)
		}
	}
	if err := s.Deploy(ctx, appSpec("web", "v2", 1), nil); err == nil {
		t.Error("Deploy after Run returned succeeded")
	}
}

// TestDeployOfTheRunningReleaseKeepsItsInstances: deploying the release
// that runs (the service's reconcile after a restart) tops it up and
// keeps the instances it has; a release deployed with 0 instances (the
// contract: schedtest's ZeroInstancesRecordsTheRelease) is the one that
// runs once scaled.
func TestDeployOfTheRunningReleaseKeepsItsInstances(t *testing.T) {
	s := startScheduler(t, nil)
	ctx := context.Background()
	if err := s.Deploy(ctx, appSpec("web", "v1", 1), nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Deploy(ctx, appSpec("web", "v2", 0), nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Scale(ctx, "web", 1); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 10*time.Second, "a healthy v2 instance", func() bool {
		list := instances(t, s, "web")
		return len(list) == 1 && list[0].Release == "v2" && list[0].Healthy
	})
	before := instances(t, s, "web")
	if err := s.Deploy(ctx, appSpec("web", "v2", 2), nil); err != nil {
		t.Fatal(err)
	}
	after := instances(t, s, "web")
	if len(after) != 2 || after[0].ID != before[0].ID || !after[1].Healthy {
		t.Errorf("redeploy of v2 with 2: %+v (before %+v)", after, before)
	}
	if err := s.Scale(ctx, "web", 1); err != nil {
		t.Fatal(err)
	}
	if got := instances(t, s, "web"); len(got) != 1 || got[0].ID != before[0].ID {
		t.Errorf("scale to 1 after the redeploy: %+v", got)
	}
}
