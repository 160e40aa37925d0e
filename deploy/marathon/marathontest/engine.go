package marathontest

import (
	"encoding/json"
	"fmt"
	"net/http"
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
			if t.Version >= cfgAt {
				fresh = append(fresh, t)
			} else {
				old = append(old, t)
			}
		}
		for len(fresh) < n && !time.Now().Before(s.delay[id]) {
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
	alive := !s.unhealthy[id]
	t.Alive = &alive
	t.State, t.StartedAt = "TASK_RUNNING", now
	s.push(statusEvent(t))
	if t.Checks > 0 {
		s.push(healthEvent(t))
	}
	return t
}

// killLocked stops a task and forgets it. Caller holds s.mu.
func (s *Server) killLocked(t *task) {
	s.removeLocked(t, "TASK_KILLED", "")
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

// push sends an event to every stream. Caller holds s.mu.
func (s *Server) push(ev map[string]any) {
	data, _ := json.Marshal(ev)
	s.sendLocked([]byte(fmt.Sprintf("event: %s\ndata: %s\n\n", ev["eventType"], data)))
}

func (s *Server) sendLocked(b []byte) {
	for c := range s.streams {
		select {
		case c <- b:
		default: // a stuck reader misses events, as with Marathon
		}
	}
}

// Push sends one event (the JSON of an event-bus message, e.g. a fixture)
// to every open stream, named after its eventType.
func (s *Server) Push(event []byte) error {
	var e struct {
		EventType string `json:"eventType"`
	}
	if err := json.Unmarshal(event, &e); err != nil {
		return fmt.Errorf("push: %w", err)
	}
	compact := strings.Join(strings.Fields(string(event)), " ")
	s.mu.Lock()
	s.sendLocked([]byte("event: " + e.EventType + "\ndata: " + compact + "\n\n"))
	s.mu.Unlock()
	return nil
}

// PushRaw sends raw text/event-stream bytes (e.g. a recorded transcript).
func (s *Server) PushRaw(b []byte) {
	s.mu.Lock()
	s.sendLocked(append([]byte(nil), b...))
	s.mu.Unlock()
}

// Streams returns how many event streams are open.
func (s *Server) Streams() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.streams)
}

// DropStreams ends every open event stream, as a leader change does.
func (s *Server) DropStreams() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.streams {
		delete(s.streams, c)
		close(c)
	}
}

// events serves GET /v2/events (text/event-stream). Like Marathon it
// starts with an event_stream_attached event.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "no flusher", 500)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	c := make(chan []byte, 1024)
	s.mu.Lock()
	s.streams[c] = true
	attached, _ := json.Marshal(map[string]any{"remoteAddress": r.RemoteAddr, "eventType": "event_stream_attached", "timestamp": s.now()})
	s.mu.Unlock()
	fmt.Fprintf(w, "event: event_stream_attached\ndata: %s\n\n", attached)
	fl.Flush()
	for {
		select {
		case b, ok := <-c:
			if !ok {
				return
			}
			if _, err := w.Write(b); err != nil {
				return
			}
			fl.Flush()
		case <-r.Context().Done():
			s.mu.Lock()
			if s.streams[c] {
				delete(s.streams, c)
			}
			s.mu.Unlock()
			return
		case <-s.stop:
			return
		}
	}
}
