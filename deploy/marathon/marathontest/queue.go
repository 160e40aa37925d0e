package marathontest

import (
	"maps"
	"math"
	"net/http"
	"slices"
	"time"
)

// backoff is an app's launch delay, as Marathon's rate limiter keeps it:
// after each failed task the next launch waits backoffSeconds, then that
// times backoffFactor per further failure, up to maxLaunchDelaySeconds
// (app.raml). It belongs to one configuration: a config change starts
// afresh; a scale does not. DELETE /v2/queue/<id>/delay ends it.
type backoff struct {
	cfg   string    // lastConfigChangeAt it applies to
	until time.Time // no launch before
	next  float64   // seconds of the next delay
}

// num reads a number of the app, or def.
func num(a map[string]any, key string, def float64) float64 {
	if f, ok := a[key].(float64); ok {
		return f
	}
	return def
}

func cfgAt(a map[string]any) string {
	if vi, ok := a["versionInfo"].(map[string]any); ok {
		if v, ok := vi["lastConfigChangeAt"].(string); ok {
			return v
		}
	}
	return ""
}

// failedLocked advances the app's launch delay after a task failed.
// Caller holds s.mu.
func (s *Server) failedLocked(id string) {
	a := s.apps[id]
	if a == nil {
		return
	}
	b := s.delay[id]
	if b == nil || b.cfg != cfgAt(a) {
		b = &backoff{cfg: cfgAt(a), next: num(a, "backoffSeconds", 1)}
		s.delay[id] = b
	}
	b.until = time.Now().Add(time.Duration(b.next * float64(s.opts.Second)))
	b.next = math.Min(b.next*num(a, "backoffFactor", 1.15), num(a, "maxLaunchDelaySeconds", 3600))
}

// delayedLocked reports whether the app may not launch a task now.
// Caller holds s.mu.
func (s *Server) delayedLocked(id string, a map[string]any) bool {
	b := s.delay[id]
	return b != nil && b.cfg == cfgAt(a) && time.Now().Before(b.until)
}

// Crash ends the app's tasks with TASK_FAILED, as a crashing process
// does; Marathon relaunches them after the app's launch delay.
func (s *Server) Crash(appID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := normID(appID)
	for _, t := range append([]*task(nil), s.tasks[id]...) {
		if t.State == "TASK_KILLING" {
			continue
		}
		s.removeLocked(t, "TASK_FAILED", "crashed (marathontest)")
		go t.kill()
		s.failedLocked(id)
	}
}

// queue is GET /v2/queue: apps waiting for tasks, with their delay
// (examples/queue.json).
func (s *Server) queue(w http.ResponseWriter) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := slices.Sorted(maps.Keys(s.apps))
	out := []any{}
	for _, id := range ids {
		a := s.apps[id]
		missing := toInt(a["instances"])
		for _, t := range s.tasks[id] {
			if t.State != "TASK_KILLING" {
				missing--
			}
		}
		if missing <= 0 {
			continue
		}
		left := 0.0
		if s.delayedLocked(id, a) {
			left = math.Ceil(time.Until(s.delay[id].until).Seconds() / s.opts.Second.Seconds())
		}
		out = append(out, map[string]any{"app": s.appJSON(id, false), "count": missing, "role": "*",
			"delay": map[string]any{"timeLeftSeconds": left, "overdue": left == 0}, "since": cfgAt(a)})
	}
	writeJSON(w, 200, map[string]any{"queue": out})
}

// resetDelay is DELETE /v2/queue/<id>/delay: 200 without a body, 404 when
// the app has no delay (queue.raml).
func (s *Server) resetDelay(w http.ResponseWriter, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.apps[id]
	if a == nil || !s.delayedLocked(id, a) {
		writeJSON(w, 404, map[string]any{"message": "Application " + id + " not found in tasks queue."})
		return
	}
	delete(s.delay, id)
	w.WriteHeader(http.StatusOK)
}

// Delayed reports whether the app waits out a launch delay now.
func (s *Server) Delayed(appID string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := normID(appID)
	a := s.apps[id]
	return a != nil && s.delayedLocked(id, a)
}
