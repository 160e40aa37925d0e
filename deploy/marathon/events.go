package marathon

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// event is the part of a Marathon event-bus message Flock reads: enough to
// name the app it is about. Events are triggers to re-read that app, never
// the truth (STYLE.md Do/not 2).
type event struct {
	EventType  string `json:"eventType"`
	AppID      string `json:"appId"`
	RunSpecID  string `json:"runSpecId"`  // instance_* events (Marathon ≥1.4)
	TaskID     string `json:"taskId"`     // health_status_changed_event before 1.4
	InstanceID string `json:"instanceId"` // health_status_changed_event from 1.4
	ID         string `json:"id"`         // deployment_success / deployment_failed
	GroupID    string `json:"groupId"`
	AppDef     *struct {
		ID string `json:"id"`
	} `json:"appDefinition"`
	Plan *struct {
		ID    string `json:"id"`
		Steps []step `json:"steps"`
	} `json:"plan"`
	CurrentStep *step `json:"currentStep"`
}

// step is a deployment step in either shape Marathon used: {app} or
// {actions: [{app}]}.
type step struct {
	App     string `json:"app"`
	Actions []struct {
		App string `json:"app"`
	} `json:"actions"`
}

// trigger is what an event asks for: re-read some apps (Marathon ids), or
// everything.
type trigger struct {
	ids []string
	all bool
	// deployment outcome, for a waiting Deploy.
	deployment string
	succeeded  bool
}

// parseEvent reads one event's data. Unknown types and undecodable data
// trigger nothing.
func parseEvent(data []byte) (trigger, bool) {
	var e event
	if err := json.Unmarshal(data, &e); err != nil {
		return trigger{}, false
	}
	var t trigger
	switch e.EventType {
	case "status_update_event", "failed_health_check_event", "unhealthy_instance_kill_event",
		"app_terminated_event", "health_status_changed_event":
		id := e.AppID
		if id == "" {
			id = appFromTask(e.InstanceID + e.TaskID)
		}
		t.ids = []string{id}
	case "instance_changed_event", "instance_health_changed_event":
		id := e.RunSpecID
		if id == "" {
			id = appFromTask(e.InstanceID)
		}
		t.ids = []string{id}
	case "api_post_event":
		if e.AppDef != nil && e.AppDef.ID != "" {
			t.ids = []string{e.AppDef.ID}
		} else {
			t.all = true
		}
	case "deployment_info", "deployment_step_success":
		if e.Plan != nil {
			for _, s := range e.Plan.Steps {
				t.ids = append(t.ids, s.apps()...)
			}
		}
		if e.CurrentStep != nil {
			t.ids = append(t.ids, e.CurrentStep.apps()...)
		}
	case "deployment_success", "deployment_failed":
		t.deployment = e.ID
		t.succeeded = e.EventType == "deployment_success"
		t.all = true
	case "group_change_success", "event_stream_attached":
		t.all = true
	default:
		return trigger{}, false
	}
	if len(t.ids) == 0 && t.deployment == "" {
		t.all = true
	}
	return t, true
}

func (s step) apps() []string {
	var ids []string
	if s.App != "" {
		ids = append(ids, s.App)
	}
	for _, a := range s.Actions {
		if a.App != "" {
			ids = append(ids, a.App)
		}
	}
	return ids
}

// appFromTask guesses the app id from a task or instance id
// ("group_app.instance-…" → "/group/app"), for events without appId.
func appFromTask(id string) string {
	i := strings.IndexByte(id, '.')
	if i <= 0 {
		return ""
	}
	return "/" + strings.ReplaceAll(id[:i], "_", "/")
}

// maxEvent bounds the data of one event Flock keeps in memory. A bigger
// one (a heavy deployment event from a Marathon before 1.6, which carries
// the whole root group twice) is skipped, not fatal: the reader asks for a
// resync instead, since events only say what to re-read.
var maxEvent = 1 << 20

// readSSE calls fn with the name and data of each text/event-stream
// message of r until r ends. Lines have no length limit; an event whose
// data passes maxEvent is read through and dropped, and fn gets it with
// nil data so that the caller can resync.
func readSSE(r io.Reader, fn func(event string, data []byte)) error {
	br := bufio.NewReaderSize(r, 64<<10)
	ev := sseEvent{}
	var line []byte
	long := false // the current line passed maxEvent and was dropped
	for {
		chunk, err := br.ReadSlice('\n')
		if len(line)+len(chunk) > maxEvent+len("data: \r\n") {
			long, line = true, line[:0]
		} else if !long {
			line = append(line, chunk...)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue // the line goes on
		}
		switch l := bytes.TrimRight(line, "\r\n"); {
		case long:
			ev.over = true
		case len(l) == 0 && err == nil:
			ev.flush(fn)
		default:
			ev.field(l)
		}
		line, long = line[:0], false
		if err != nil {
			ev.flush(fn)
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// sseEvent is the event being read.
type sseEvent struct {
	name string
	data []byte
	size int
	over bool // data passed maxEvent: dropped
}

// flush hands the event to fn: nil data for an event too big to keep.
func (e *sseEvent) flush(fn func(string, []byte)) {
	switch {
	case e.over:
		fn(e.name, nil)
	case len(e.data) > 0:
		fn(e.name, e.data)
	}
	*e = sseEvent{}
}

// field applies one line of an event.
func (e *sseEvent) field(l []byte) {
	switch {
	case len(l) == 0 || l[0] == ':':
	case bytes.HasPrefix(l, []byte("event:")):
		e.name = strings.TrimSpace(string(l[len("event:"):]))
	case bytes.HasPrefix(l, []byte("data:")):
		v := bytes.TrimPrefix(l[len("data:"):], []byte(" "))
		e.size += len(v) + 1
		if e.over || e.size > maxEvent {
			e.over, e.data = true, nil
			return
		}
		if len(e.data) > 0 {
			e.data = append(e.data, '\n')
		}
		e.data = append(e.data, v...)
	}
}

// Run implements deploy.Scheduler: it follows Marathon's event stream
// (reconnecting with backoff, moving to the next Marathon), re-reads the
// apps events name (debounced), resyncs everything on every (re)connect and
// every Resync, and feeds Changes. It returns when ctx ends.
func (s *Scheduler) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	triggers := make(chan trigger, 256)
	wg.Go(func() { s.pump(ctx) })
	wg.Go(func() { s.follow(ctx, triggers) })

	resync := time.NewTicker(s.cfg.Resync)
	defer resync.Stop()
	ids := map[string]bool{}
	all := true
	var flush <-chan time.Time
	var timer *time.Timer
	arm := func() {
		if timer == nil {
			timer = time.NewTimer(s.debounce)
			flush = timer.C
		}
	}
	arm()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-resync.C:
			all = true
			arm()
		case t := <-triggers:
			if t.deployment != "" {
				s.deploymentDone(t.deployment, t.succeeded)
				if app, ok := s.waitingApp(t.deployment); ok {
					ids[s.appID(app)] = true
					t.all = false
				}
			}
			for _, id := range t.ids {
				ids[id] = true
			}
			all = all || t.all
			arm()
		case <-flush:
			timer, flush = nil, nil
			s.apply(ctx, ids, all)
			ids, all = map[string]bool{}, false
		}
	}
}

// apply re-reads what the debounced triggers asked for.
func (s *Scheduler) apply(ctx context.Context, ids map[string]bool, all bool) {
	if all {
		if err := s.resync(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("marathon resync failed; serving the last known state", "err", err)
		}
		return
	}
	for id := range ids {
		name, _, ok := s.appName(id)
		if !ok {
			continue
		}
		if err := s.refresh(ctx, name); err != nil && ctx.Err() == nil {
			s.log.Warn("marathon refresh failed", "app", name, "err", err)
		}
	}
}

func (s *Scheduler) deploymentDone(id string, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, w := s.waiting[id]; w {
		s.done[id] = ok
	}
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

func (s *Scheduler) waitingApp(id string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	app, ok := s.waiting[id]
	return app, ok
}

// follow keeps one event stream open until ctx ends. Every (re)connect
// asks for a full resync: events missed while away are not replayed.
func (s *Scheduler) follow(ctx context.Context, out chan<- trigger) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		body, from, err := s.api.Events(ctx)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("marathon event stream unavailable", "err", err, "retry", backoff)
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, s.backoffMax)
			continue
		}
		s.log.Info("marathon event stream attached", "url", from)
		backoff = 100 * time.Millisecond
		send(ctx, out, trigger{all: true})
		stop := context.AfterFunc(ctx, func() { body.Close() })
		idle := newIdleReader(body, s.cfg.EventIdle)
		err = readSSE(idle, func(name string, data []byte) {
			if data == nil { // too big to keep: re-read everything instead
				s.log.Warn("marathon event too big; resyncing", "event", name, "limit", maxEvent)
				send(ctx, out, trigger{all: true})
				return
			}
			if t, ok := parseEvent(data); ok {
				send(ctx, out, t)
			}
		})
		stop()
		idle.Close()
		if ctx.Err() != nil {
			return
		}
		if idle.timedOut() {
			err = fmt.Errorf("silent for %s (Marathon sends a heartbeat every 10 s)", s.cfg.EventIdle)
		}
		s.log.Warn("marathon event stream dropped; reconnecting", "url", from, "err", err)
		if r, ok := s.api.(interface{ rotate() }); ok {
			r.rotate()
		}
	}
}

func send(ctx context.Context, out chan<- trigger, t trigger) {
	select {
	case out <- t:
	case <-ctx.Done():
	}
}

// idleReader closes a stream that sends nothing for d: Marathon's event
// servlet is Jetty's EventSourceServlet, which writes a heartbeat line
// every 10 s, so a silent stream is a dead connection (a leader gone
// without a FIN, a proxy that dropped it) that would otherwise never end.
type idleReader struct {
	rc    io.ReadCloser
	d     time.Duration
	timer *time.Timer
	fired atomic.Bool
}

func newIdleReader(rc io.ReadCloser, d time.Duration) *idleReader {
	r := &idleReader{rc: rc, d: d}
	r.timer = time.AfterFunc(d, func() {
		r.fired.Store(true)
		rc.Close()
	})
	return r
}

func (r *idleReader) Read(p []byte) (int, error) {
	n, err := r.rc.Read(p)
	if n > 0 {
		r.timer.Reset(r.d)
	}
	return n, err
}

func (r *idleReader) Close() error {
	r.timer.Stop()
	return r.rc.Close()
}

func (r *idleReader) timedOut() bool { return r.fired.Load() }
