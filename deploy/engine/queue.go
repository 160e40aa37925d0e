package engine

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"time"

	"github.com/flock-paas/flock/deploy"
)

// queue serialises the deploys of one app: one runs, at most one waits.
// A newer deploy replaces the waiting one (that one ends ErrSuperseded),
// never the running one.
type queue struct {
	running bool
	pending *job
}

// job is one queued deploy. It writes its log only to its liveLog; the
// caller's writer is fed by the caller's own follower (see await), so a
// job never holds a ResponseWriter and never outlives one.
type job struct {
	rec  deploy.Rollout
	run  func(ctx context.Context, rec *deploy.Rollout, log io.Writer) (deploy.Release, error)
	src  string // the job's own source folder (see snapshot); "" for a rollback
	done chan jobResult
}

func (j *job) removeSource() {
	if j.src != "" {
		os.RemoveAll(j.src) //nolint:errcheck // a temp folder; nothing to tell anyone
	}
}

type jobResult struct {
	rel deploy.Release
	err error
}

// enqueue queues a job for app and awaits it. src, when set, is the job's
// own source folder: it is removed when the job ends or is superseded.
func (s *Service) enqueue(ctx context.Context, app, commit, trigger, src string, log io.Writer,
	run func(ctx context.Context, rec *deploy.Rollout, log io.Writer) (deploy.Release, error)) (deploy.Release, error) {
	j := &job{
		rec: deploy.Rollout{ID: s.newID(), App: app, Commit: commit, Trigger: trigger, Status: deploy.RolloutQueued, QueuedAt: time.Now().UTC()},
		run: run, src: src, done: make(chan jobResult, 1),
	}
	if _, err := s.store.app(app); err == nil {
		if err := s.store.putDeploy(j.rec); err != nil {
			j.removeSource()
			return deploy.Release{}, fmt.Errorf("deploy %s: %w", app, err)
		}
	}
	live := newLiveLog()
	s.mu.Lock()
	s.live[j.rec.ID] = live
	q := s.queues[app]
	if q == nil {
		q = &queue{}
		s.queues[app] = q
	}
	old := q.pending
	var oldLive *liveLog
	if old != nil {
		now := time.Now().UTC()
		old.rec.Status, old.rec.FinishedAt, old.rec.Error = deploy.RolloutSuperseded, &now, "superseded by "+j.rec.ID
		oldLive = s.live[old.rec.ID]
		delete(s.live, old.rec.ID)
	}
	q.pending = j
	start := !q.running
	q.running = true
	s.mu.Unlock()
	if old != nil {
		// Record the outcome before its followers stop (they read it next)
		// and before its caller hears of it.
		if oldLive != nil {
			old.rec.Log = oldLive.String()
		}
		s.saveDeploy(old.rec)
		old.removeSource()
		if oldLive != nil {
			oldLive.Close()
		}
		old.done <- jobResult{err: fmt.Errorf("deploy %s: %w", app, deploy.ErrSuperseded)}
	}
	if start {
		go s.work(app, q)
	} else {
		fmt.Fprintf(live, "-----> Waiting for the deploy of %s in progress\n", app)
	}
	return await(ctx, j, live, log)
}

// await follows the job's log to w and returns the job's outcome, or
// ctx's error as soon as the caller leaves (the deploy, once queued,
// carries on). The follower writes from a goroutine await waits for, so
// once await returns nothing writes to w any more: a request's
// ResponseWriter is never written after its handler returned. A writer
// that fails (the client hung up) ends the following, not the deploy.
func await(ctx context.Context, j *job, live *liveLog, w io.Writer) (deploy.Release, error) {
	if w == nil {
		w = io.Discard
	}
	fctx, stop := context.WithCancel(ctx)
	defer stop()
	followed := make(chan error, 1)
	go func() {
		// This goroutine serves a request: a writer that panics ends this
		// follower with an error, not the process.
		defer func() {
			if v := recover(); v != nil {
				followed <- fmt.Errorf("panic: %v", v)
			}
		}()
		followed <- live.Follow(fctx, w)
	}()
	var r jobResult
	select {
	case r = <-j.done:
		// The log is closed before the result is sent: the follower copies
		// the rest and ends (or ends with ctx, if the caller leaves now).
		live.Close()
		<-followed
	case <-ctx.Done():
		stop()
		<-followed
		return deploy.Release{}, ctx.Err()
	case err := <-followed:
		if err != nil && ctx.Err() == nil {
			return deploy.Release{}, fmt.Errorf("deploy %s: the log's reader left: %w", j.rec.App, err)
		}
		select {
		case r = <-j.done:
		case <-ctx.Done():
			return deploy.Release{}, ctx.Err()
		}
	}
	return r.rel, r.err
}

// work runs an app's queued jobs one after the other.
func (s *Service) work(app string, q *queue) {
	for {
		s.mu.Lock()
		j := q.pending
		q.pending = nil
		if j == nil {
			q.running = false
			delete(s.queues, app) // the next deploy starts a fresh queue
			s.mu.Unlock()
			return
		}
		live := s.live[j.rec.ID]
		s.deploying[app]++
		s.mu.Unlock()
		rel, err := s.runJob(j, live)
		s.mu.Lock()
		s.deploying[app]--
		if s.deploying[app] == 0 {
			delete(s.deploying, app)
		}
		delete(s.live, j.rec.ID)
		s.mu.Unlock()
		j.done <- jobResult{rel: rel, err: err}
	}
}

func (s *Service) runJob(j *job, live *liveLog) (deploy.Release, error) {
	defer live.Close()
	rec := &j.rec
	now := time.Now().UTC()
	rec.Status, rec.StartedAt = deploy.RolloutRunning, &now
	s.saveDeploy(*rec)
	s.publish(deploy.Event{App: rec.App, Type: "deploy", State: deploy.StateDeploying, Rollout: deploy.RolloutRunning, Message: "deploy started"})
	// The deploy outlives the request that asked for it.
	rel, err := s.call(j, live)
	j.removeSource() // before the record says the deploy ended
	end := time.Now().UTC()
	rec.FinishedAt = &end
	if err != nil {
		rec.Status, rec.Error = deploy.RolloutFailed, err.Error()
		fmt.Fprintf(live, "-----> Deploy failed: %v\n", err)
	} else {
		rec.Status, rec.Release = deploy.RolloutSucceeded, rel.Name
	}
	rec.Log = live.String()
	s.saveDeploy(*rec)
	if err := s.store.pruneDeploys(rec.App, keepDeploys); err != nil {
		s.log.Error("prune deploy records", "app", rec.App, "err", err)
	}
	msg := "deploy succeeded: " + rel.Name
	if err != nil {
		msg = "deploy failed: " + err.Error()
	}
	s.publish(deploy.Event{App: rec.App, Type: "deploy", Rollout: rec.Status, Message: msg})
	return rel, err
}

// call runs the job's work. A panic in it (a builder, a scheduler, a hook
// of the router) fails this deploy only: it is logged with the app and
// its stack, and returned as the deploy's error, so the record says what
// happened and the app's queue moves on.
func (s *Service) call(j *job, log io.Writer) (rel deploy.Release, err error) {
	defer func() {
		if v := recover(); v != nil {
			s.log.Error("deploy panicked", "app", j.rec.App, "deploy", j.rec.ID, "panic", v, "stack", string(debug.Stack()))
			err = fmt.Errorf("deploy %s: panic: %v", j.rec.App, v)
			s.markFailed(j.rec.App, err.Error())
			rel = deploy.Release{}
		}
	}()
	return j.run(context.Background(), &j.rec, log)
}

func (s *Service) saveDeploy(d deploy.Rollout) {
	if _, err := s.store.app(d.App); err != nil {
		return // destroyed meanwhile, or never created
	}
	if err := s.store.putDeploy(d); err != nil {
		s.log.Error("record deploy", "app", d.App, "err", err)
	}
}
