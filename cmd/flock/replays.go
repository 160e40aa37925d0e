package main

import (
	"context"
	"slices"

	"github.com/flock-paas/flock/deploy/engine"

	"github.com/flock-paas/flock/deploy"
)

// deployedCommits tells the GitHub webhook what an app runs and ran, so a
// replayed push of such a commit is ignored (webhook.GitHubConfig.Deployed).
// Ran means a deploy of it succeeded: a release whose rollout failed may be
// pushed again.
func deployedCommits(svc *engine.Service) func(app string) (string, map[string]string) {
	return func(app string) (string, map[string]string) {
		a, err := svc.App(context.Background(), app)
		if err != nil {
			return "", nil
		}
		ds, _ := svc.Deploys(context.Background(), app) // newest first
		ran := make(map[string]string, len(ds))
		for _, d := range slices.Backward(ds) {
			if d.Status == deploy.RolloutSucceeded && d.Commit != "" && ran[d.Commit] == "" {
				ran[d.Commit] = d.Release
			}
		}
		return a.Commit, ran
	}
}
