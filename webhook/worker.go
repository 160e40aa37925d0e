package webhook

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/google/go-github/v57/github"
)

// Run fetches and deploys queued pushes with cfg.Workers workers until ctx
// ends. A push in progress when ctx ends is cancelled through its context.
//
// Pushes to one repository deploy one at a time: a push that arrives while
// its repository deploys is parked, and a newer push replaces a parked one
// (it is reported superseded), so a burst of pushes deploys the first and
// the last, and never holds a worker that other repositories could use.
func (g *GitHub) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for range g.cfg.Workers {
		wg.Go(func() {
			for {
				select {
				case <-ctx.Done():
					return
				case p := <-g.queue:
					for ok := g.start(ctx, p); ok; {
						g.runRecovered(ctx, p)
						g.pending.Add(-1)
						p, ok = g.next(p.Repo)
					}
				}
			}
		})
	}
	wg.Wait()
	return nil
}

// start reports whether p may deploy now; if its repository is deploying,
// p is parked instead, superseding the push parked before it.
func (g *GitHub) start(ctx context.Context, p Push) bool {
	g.mu.Lock()
	if !g.running[p.Repo] {
		g.running[p.Repo] = true
		g.mu.Unlock()
		return true
	}
	old, had := g.parked[p.Repo]
	g.parked[p.Repo] = p
	g.mu.Unlock()
	if had {
		g.pending.Add(-1)
		log := g.log.With("app", old.Name, "repo", old.Repo, "commit", old.Commit, "delivery", old.Delivery)
		log.Info("github push superseded", "by", p.Commit)
		g.report(ctx, log, old, "error", "Superseded by a newer push ("+short(p.Commit)+")", "")
	}
	return false
}

// next returns the push parked for repo, if any, or marks repo idle.
func (g *GitHub) next(repo string) (Push, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	p, ok := g.parked[repo]
	if ok {
		delete(g.parked, repo)
	} else {
		delete(g.running, repo)
	}
	return p, ok
}

func short(commit string) string {
	if len(commit) > 7 {
		return commit[:7]
	}
	return commit
}

// run deploys one push and reports its outcome to GitHub. Errors are logged
// here, the job's end: GitHub and the log are where a user looks.
func (g *GitHub) run(ctx context.Context, p Push) {
	log := g.log.With("app", p.Name, "repo", p.Repo, "commit", p.Commit, "delivery", p.Delivery)
	start := time.Now()
	g.report(ctx, log, p, "pending", "Flock is deploying "+p.Name, "")
	url, err := g.fetchAndDeploy(ctx, p, log)
	if errors.Is(err, errOlder) {
		log.Info("github push ignored", "why", err.Error())
		g.report(ctx, log, p, "success", "Not deployed: older than the running commit; flock rollback runs old releases", "")
		return
	}
	if err != nil {
		log.Error("github push failed", "err", err, "took", time.Since(start).Round(time.Millisecond))
		g.report(ctx, log, p, "failure", "Deploy failed: "+err.Error(), "")
		return
	}
	log.Info("github push deployed", "url", url, "took", time.Since(start).Round(time.Millisecond))
	g.report(ctx, log, p, "success", "Deployed to "+url, url)
}

func (g *GitHub) fetchAndDeploy(ctx context.Context, p Push, log *slog.Logger) (string, error) {
	out := &logLines{log: log}
	defer out.Flush()
	dir, err := g.fetch(ctx, p, out)
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	return g.deploy(ctx, p, dir, out) // its errors name the app already
}

// report sets the commit status "flock" on the pushed commit when a token
// is configured. A failure to report is logged, never fatal to the deploy.
func (g *GitHub) report(ctx context.Context, log *slog.Logger, p Push, state, desc, appURL string) {
	if g.status == nil {
		return
	}
	owner, repo, ok := strings.Cut(p.Repo, "/")
	if !ok {
		return
	}
	if len(desc) > 140 { // GitHub's limit
		desc = desc[:137] + "..."
	}
	st := &github.RepoStatus{State: &state, Description: &desc, Context: github.String("flock")}
	if g.cfg.DashboardURL != "" {
		st.TargetURL = github.String(g.cfg.DashboardURL + "/apps/" + url.PathEscape(p.Name))
	} else if appURL != "" {
		st.TargetURL = &appURL
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	if _, _, err := g.status.Repositories.CreateStatus(ctx, owner, repo, p.Commit, st); err != nil {
		log.Warn("github commit status not set", "state", state, "err", err)
	}
}

// logLines writes a deploy's output to the logger, one record per line, at
// debug level: the caller's DeployFunc keeps the deploy's own record.
type logLines struct {
	log *slog.Logger
	buf []byte
}

func (l *logLines) Write(p []byte) (int, error) {
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			break
		}
		l.log.Debug("deploy", "line", string(l.buf[:i]))
		l.buf = l.buf[i+1:]
	}
	return len(p), nil
}

// Flush logs a last line that did not end in a newline.
func (l *logLines) Flush() {
	if len(l.buf) > 0 {
		l.log.Debug("deploy", "line", string(l.buf))
		l.buf = nil
	}
}

var _ io.Writer = (*logLines)(nil)
