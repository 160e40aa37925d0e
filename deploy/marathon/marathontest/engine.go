package marathontest

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// task is one task the fake started.
type task struct {
	ID, AppID, Host, Version, StagedAt, StartedAt, State string
	Ports                                                []int
	Checks                                               int   // health checks of its app
	Alive                                                *bool // nil: no result yet
	proc                                                 *proc // RunTasks only

	// Without RunTasks: when it runs, when its first check answers,
	// how long failures are ignored (gracePeriodSeconds), whether its
	// checks fail (SetUnhealthy), when a kill completes.
	runAt, checkAt, killAt time.Time
	grace                  time.Duration
	bad                    bool
}

func (t *task) healthy() bool {
	return t.State == "TASK_RUNNING" && (t.Checks == 0 || (t.Alive != nil && *t.Alive))
}

func (t *task) json() map[string]any {
	m := map[string]any{"id": t.ID, "appId": t.AppID, "host": t.Host, "ports": t.Ports,
		"stagedAt": t.StagedAt, "version": t.Version, "state": t.State, "slaveId": "marathontest-agent-0",
		"ipAddresses": []any{map[string]any{"ipAddress": t.Host, "protocol": "IPv4"}}}
	if t.StartedAt != "" {
		m["startedAt"] = t.StartedAt
	}
	if t.Checks > 0 && t.Alive != nil {
		m["healthCheckResults"] = []any{map[string]any{"alive": *t.Alive, "consecutiveFailures": 0,
			"instanceId": t.ID, "taskId": t.ID, "lastSuccess": t.StartedAt}}
	}
	return m
}

func (t *task) kill() {
	if t.proc != nil {
		t.proc.stop()
	}
}

// loop drives deployments until Close.
func (s *Server) loop() {
	defer s.wg.Done()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-tick.C:
			s.mu.Lock()
			s.step()
			s.mu.Unlock()
		}
	}
}

// step moves every app toward its definition: start missing tasks of the
// current config, stop surplus ones, and once enough are healthy stop the
// old ones and finish the deployment (minimumHealthCapacity 1). Caller
// holds s.mu.
func (s *Server) step() {
	now := time.Now()
	for _, ts := range s.tasks {
		for _, t := range append([]*task(nil), ts...) {
			s.advanceLocked(t, now)
		}
	}
	for id, a := range s.apps {
		if _, seeded := s.rawTasks[id]; seeded {
			continue
		}
		n := toInt(a["instances"])
		cfgAt := ""
		if vi, ok := a["versionInfo"].(map[string]any); ok {
			cfgAt = fmt.Sprint(vi["lastConfigChangeAt"])
		}
		var fresh, old []*task
		for _, t := range s.tasks[id] {
			if t.State == "TASK_KILLING" {
				continue
			}
			if t.Version >= cfgAt {
				fresh = append(fresh, t)
			} else {
				old = append(old, t)
			}
		}
		for len(fresh) < n && !s.delayedLocked(id, a) {
			fresh = append(fresh, s.startLocked(id, a))
		}
		if len(fresh) > n {
			sort.SliceStable(fresh, func(i, j int) bool { return fresh[i].StagedAt < fresh[j].StagedAt })
			for _, t := range fresh[n:] {
				s.killLocked(t)
			}
			fresh = fresh[:n]
		}
		healthy := 0
		for _, t := range fresh {
			if t.healthy() {
				healthy++
			}
		}
		if healthy < n {
			continue
		}
		for _, t := range old {
			s.killLocked(t)
		}
		for did, d := range s.deployments {
			if d.AppID == id && time.Since(d.started) >= s.opts.Settle {
				delete(s.deployments, did)
				s.push(map[string]any{"eventType": "deployment_success", "timestamp": s.now(), "id": did})
			}
		}
	}
}

// startLocked starts one task of app a. Caller holds s.mu.
func (s *Server) startLocked(id string, a map[string]any) *task {
	checks, _ := a["healthChecks"].([]any)
	now := s.now()
	t := &task{
		ID:       strings.ReplaceAll(strings.TrimPrefix(id, "/"), "/", "_") + "." + s.nextID(),
		AppID:    id,
		Host:     "127.0.0.1",
		Version:  fmt.Sprint(a["version"]),
		StagedAt: now,
		State:    "TASK_STAGING",
		Checks:   len(checks),
	}
	ports := portCount(a)
	for d := range s.deployments {
		if s.deployments[d].AppID == id {
			s.deployments[d].tasks = append(s.deployments[d].tasks, t.ID)
		}
	}
	s.tasks[id] = append(s.tasks[id], t)
	if s.opts.RunTasks {
		t.Ports = freePorts(ports)
		s.launch(t, clone(a))
		return t
	}
	for i := range ports {
		t.Ports = append(t.Ports, 31000+(s.seq*7+i)%2000)
	}
	t.bad = s.unhealthy[id]
	t.runAt = time.Now().Add(s.opts.Stage)
	t.checkAt = t.runAt.Add(s.opts.CheckEvery)
	if len(checks) > 0 {
		hc, _ := checks[0].(map[string]any)
		t.grace = time.Duration(num(hc, "gracePeriodSeconds", 300) * float64(s.opts.Second))
	}
	s.push(statusEvent(t))
	return t
}

// advanceLocked moves a task the fake runs without processes along
// Marathon's life cycle: TASK_STAGING, TASK_RUNNING, its first health
// result (failures within gracePeriodSeconds are not reported, as
// Marathon ignores them), and the end of TASK_KILLING. Caller holds s.mu.
func (s *Server) advanceLocked(t *task, now time.Time) {
	switch {
	case t.State == "TASK_KILLING":
		if t.proc == nil && !now.Before(t.killAt) {
			s.removeLocked(t, "TASK_KILLED", "")
		}
	case t.proc != nil:
	case t.State == "TASK_STAGING" && !now.Before(t.runAt):
		t.State, t.StartedAt = "TASK_RUNNING", s.now()
		s.push(statusEvent(t))
	case t.State == "TASK_RUNNING" && t.Checks > 0 && !now.Before(t.checkAt):
		alive := !t.bad
		if !alive && now.Before(t.runAt.Add(t.grace)) {
			return
		}
		if t.Alive == nil || *t.Alive != alive {
			t.Alive = &alive
			s.push(healthEvent(t))
		}
	}
}

// killLocked kills a task: it reports TASK_KILLING (Mesos ≥0.28, which
// Marathon handles since 1.1, changelog #3813) and leaves the app's tasks
// once its process ended, or after the app's taskKillGracePeriodSeconds
// without RunTasks. Caller holds s.mu.
func (s *Server) killLocked(t *task) {
	if t.State != "TASK_STAGING" && t.State != "TASK_RUNNING" {
		return
	}
	t.State = "TASK_KILLING"
	grace := 0.0
	if a := s.apps[t.AppID]; a != nil {
		grace = num(a, "taskKillGracePeriodSeconds", 0)
	}
	t.killAt = time.Now().Add(time.Duration(grace * float64(s.opts.Second)))
	s.push(statusEvent(t))
	go t.kill()
}

// removeLocked forgets a task that ended in state. Caller holds s.mu.
func (s *Server) removeLocked(t *task, state, msg string) {
	ts := s.tasks[t.AppID]
	for i, x := range ts {
		if x == t {
			s.tasks[t.AppID] = append(ts[:i:i], ts[i+1:]...)
			break
		}
	}
	t.State = state
	ev := statusEvent(t)
	ev["message"] = msg
	s.push(ev)
}

func statusEvent(t *task) map[string]any {
	return map[string]any{"eventType": "status_update_event", "timestamp": time.Now().UTC().Format(time.RFC3339Nano),
		"slaveId": "marathontest-agent-0", "taskId": t.ID, "taskStatus": t.State, "message": "",
		"appId": t.AppID, "host": t.Host, "ports": t.Ports, "version": t.Version}
}

func healthEvent(t *task) map[string]any {
	alive := t.Alive != nil && *t.Alive
	return map[string]any{"eventType": "health_status_changed_event", "timestamp": time.Now().UTC().Format(time.RFC3339Nano),
		"appId": t.AppID, "instanceId": t.ID, "version": t.Version, "alive": alive}
}
