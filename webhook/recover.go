package webhook

import (
	"context"
	"fmt"
	"runtime/debug"
)

// runRecovered deploys one push like run, turning a panic into that push's
// failure: it is logged with the app and its stack and reported to GitHub,
// and the worker goes on with the next push. One push's bug fails that
// push, not Flock.
func (g *GitHub) runRecovered(ctx context.Context, p Push) {
	defer func() {
		if v := recover(); v != nil {
			log := g.log.With("app", p.Name, "repo", p.Repo, "commit", p.Commit, "delivery", p.Delivery)
			log.Error("github push panicked", "panic", v, "stack", string(debug.Stack()))
			g.report(ctx, log, p, "failure", fmt.Sprintf("Deploy failed: panic: %v", v), "")
		}
	}()
	g.run(ctx, p)
}
