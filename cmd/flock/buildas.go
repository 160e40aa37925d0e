package main

import (
	"log/slog"

	"github.com/flock-paas/flock/deploy"
	"github.com/flock-paas/flock/deploy/local"
)

// buildsRunAs is builder.Config.RunAs: the local scheduler's uid of each
// app, so that npm, pip, go build and the app's own build scripts run as
// the uid its instances run as. With another scheduler, builds run as
// Flock's own user, and the log says so once; when Flock is not root, the
// local scheduler's own warning says so.
func buildsRunAs(sched deploy.Scheduler, logger *slog.Logger) func(app string) (int, bool, error) {
	if ls, ok := sched.(*local.Scheduler); ok {
		return ls.UID
	}
	logger.Warn("builds run as flock's own user: only the local scheduler gives apps uids of their own", "docs", "docs/buildpacks.md")
	return nil
}
