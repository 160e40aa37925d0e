package marathontest

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"
)

// deployment is one Marathon deployment in progress.
type deployment struct {
	ID, Version, AppID string
	prev               map[string]any // the app before; nil when created
	started            time.Time
	tasks              []string // tasks it started, killed on rollback
}

func (s *Server) nextID() string {
	s.seq++
	return fmt.Sprintf("%08x-0000-4000-8000-%012x", time.Now().UnixNano()&0xffffffff, s.seq)
}

// now is a Marathon timestamp; strictly increasing so that versions order.
func (s *Server) now() string {
	s.seq++
	return time.Now().UTC().Add(time.Duration(s.seq) * time.Microsecond).Format("2006-01-02T15:04:05.000000Z")
}

func (s *Server) listApps(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	embed := strings.Join(q["embed"], ",")
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, 0, len(s.apps))
	for id, a := range s.apps {
		if matchLabels(a, q["label"]) {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	apps := make([]any, 0, len(ids))
	for _, id := range ids {
		apps = append(apps, s.appJSON(id, strings.Contains(embed, "apps.tasks")))
	}
	writeJSON(w, 200, map[string]any{"apps": apps})
}

// matchLabels implements Marathon's label selector: "K==V", "K!=V", "K".
func matchLabels(app map[string]any, selectors []string) bool {
	labels, _ := app["labels"].(map[string]any)
	for _, sel := range selectors {
		for _, cond := range strings.Split(sel, ",") {
			k, v, eq := strings.Cut(cond, "==")
			if eq {
				if fmt.Sprint(labels[k]) != v || labels[k] == nil {
					return false
				}
				continue
			}
			k, v, ne := strings.Cut(cond, "!=")
			if ne {
				if labels[k] != nil && fmt.Sprint(labels[k]) == v {
					return false
				}
				continue
			}
			if _, ok := labels[k]; !ok {
				return false
			}
		}
	}
	return true
}

// appJSON renders an app as Marathon does, with counts, deployments and,
// when asked, tasks. Caller holds s.mu.
func (s *Server) appJSON(id string, withTasks bool) map[string]any {
	a := clone(s.apps[id])
	running, healthy := 0, 0
	var tasks []any
	tasks = append(tasks, s.rawTasks[id]...)
	for _, t := range s.tasks[id] {
		if t.State == "TASK_RUNNING" {
			running++
			if t.healthy() {
				healthy++
			}
		}
		tasks = append(tasks, t.json())
	}
	a["tasksRunning"], a["tasksHealthy"], a["tasksStaged"] = running, healthy, 0
	deps := []any{}
	for _, d := range s.deployments {
		if d.AppID == id {
			deps = append(deps, map[string]any{"id": d.ID})
		}
	}
	a["deployments"] = deps
	if withTasks {
		if tasks == nil {
			tasks = []any{}
		}
		a["tasks"] = tasks
	}
	return a
}

func (s *Server) createApp(w http.ResponseWriter, body []byte) {
	var a map[string]any
	if err := json.Unmarshal(body, &a); err != nil || a["id"] == nil {
		writeJSON(w, 400, map[string]any{"message": "Invalid JSON", "details": []any{}})
		return
	}
	if details := invalidPlacement(a); details != nil {
		writeJSON(w, 422, map[string]any{"message": "Object is not valid", "details": details})
		return
	}
	if msg := invalidApp(a); msg != "" {
		writeJSON(w, 422, map[string]any{"message": "Object is not valid", "details": []any{map[string]any{"path": "/", "errors": []any{msg}}}})
		return
	}
	id := normID(fmt.Sprint(a["id"]))
	dropNulls(a)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.apps[id]; ok {
		writeJSON(w, 409, map[string]any{"message": "An app with id [" + id + "] already exists."})
		return
	}
	if msg := s.clash(id); msg != "" {
		writeJSON(w, 422, map[string]any{"message": "Object is not valid", "details": []any{map[string]any{"path": "/id", "errors": []any{msg}}}})
		return
	}
	a["id"] = id
	s.change(id, a, nil)
	s.push(map[string]any{"eventType": "api_post_event", "timestamp": s.now(), "uri": "/v2/apps", "appDefinition": a})
	writeJSON(w, 201, s.appJSON(id, false))
}

// change installs app a under id as a new version and starts a deployment.
// Caller holds s.mu.
func (s *Server) change(id string, a map[string]any, prev map[string]any) *deployment {
	v := s.now()
	a["version"] = v
	cfgAt := v
	if prev != nil && sameConfig(prev, a) {
		if vi, ok := prev["versionInfo"].(map[string]any); ok {
			cfgAt = fmt.Sprint(vi["lastConfigChangeAt"])
		}
	}
	if p, ok := a["restoreConfigAt"].(string); ok {
		cfgAt = p
		delete(a, "restoreConfigAt")
	}
	a["versionInfo"] = map[string]any{"lastScalingAt": v, "lastConfigChangeAt": cfgAt}
	if _, ok := a["instances"]; !ok {
		a["instances"] = 1.0
	}
	s.apps[id] = a
	delete(s.rawTasks, id) // from now on the fake runs it
	if s.history[id] == nil {
		s.history[id] = map[string]map[string]any{}
	}
	s.history[id][v] = clone(a)
	for did, d := range s.deployments {
		if d.AppID == id { // superseded (force)
			delete(s.deployments, did)
		}
	}
	d := &deployment{ID: s.nextID(), Version: v, AppID: id, prev: prev, started: time.Now()}
	s.deployments[d.ID] = d
	s.push(map[string]any{"eventType": "deployment_info", "timestamp": v,
		"plan":        map[string]any{"id": d.ID, "version": v, "steps": []any{map[string]any{"actions": []any{map[string]any{"action": "RestartApplication", "app": id}}}}},
		"currentStep": map[string]any{"actions": []any{map[string]any{"action": "RestartApplication", "app": id}}}})
	return d
}

// dropNulls removes the fields a definition sets to null. Marathon reads
// a definition into its AppDefinition, where a null field is the same as
// an absent one (its default): go-marathon sends "ports": null on every
// POST and PUT, and a full PUT of the same definition must compare equal
// to what the POST stored. A PUT's nulls are dropped where it is applied.
func dropNulls(a map[string]any) {
	for k, v := range a {
		if v == nil {
			delete(a, k)
		}
	}
}

// sameConfig reports whether two versions differ only in scaling, as
// Marathon's AppDefinition.isUpgrade compares the definitions (cmd, env,
// resources, fetch, portDefinitions, health checks, labels, …; never
// instances or the version): apps.raml, PUT /v2/apps/{appId} "Usually,
// restart is required if the application configuration was changed
// (except for scaling changes)" (marathon#6269), and a PUT of the
// identical definition restarts nothing (marathon#1822, #2360). The new
// version then keeps the old versionInfo.lastConfigChangeAt, and the
// tasks of that config keep running; only lastScalingAt moves.
func sameConfig(a, b map[string]any) bool {
	strip := func(m map[string]any) string {
		c := clone(m)
		for _, k := range []string{"instances", "version", "versionInfo", "deployments", "tasksRunning", "tasksHealthy", "tasksStaged", "tasksUnhealthy"} {
			delete(c, k)
		}
		for k, v := range c {
			if v == nil { // a field sent as null is a field not sent (a PUT drops it too)
				delete(c, k)
			}
		}
		bs, _ := json.Marshal(c)
		return string(bs)
	}
	return strip(a) == strip(b)
}

// locked reports a deployment of the app in progress. Caller holds s.mu.
func (s *Server) locked(id string) string {
	for _, d := range s.deployments {
		if d.AppID == id {
			return d.ID
		}
	}
	return ""
}

func (s *Server) oneApp(w http.ResponseWriter, r *http.Request, id string, body []byte) {
	force := r.URL.Query().Get("force") == "true"
	s.mu.Lock()
	defer s.mu.Unlock()
	a, exists := s.apps[id]
	switch r.Method {
	case http.MethodGet:
		if !exists {
			writeJSON(w, 404, map[string]any{"message": "App '" + id + "' does not exist"})
			return
		}
		writeJSON(w, 200, map[string]any{"app": s.appJSON(id, true)})
	case http.MethodPut, http.MethodPatch:
		var upd map[string]any
		if err := json.Unmarshal(body, &upd); err != nil {
			writeJSON(w, 400, map[string]any{"message": "Invalid JSON"})
			return
		}
		if msg := invalidApp(upd); msg != "" {
			writeJSON(w, 422, map[string]any{"message": "Object is not valid", "details": []any{map[string]any{"path": "/", "errors": []any{msg}}}})
			return
		}
		// apps.raml: without partialUpdate=false a PUT merges what it
		// sends into the app ("All values that are not defined in the
		// json, will not change existing values"); PATCH (1.4) always does.
		replace := r.Method == http.MethodPut && r.URL.Query().Get("partialUpdate") == "false"
		if d := s.locked(id); d != "" && !force {
			writeJSON(w, 409, map[string]any{"message": "App is locked by one or more deployments. Override with the option '?force=true'.",
				"deployments": []any{map[string]any{"id": d}}})
			return
		}
		if msg := s.clash(id); msg != "" && !exists {
			writeJSON(w, 422, map[string]any{"message": "Object is not valid", "details": []any{map[string]any{"path": "/id", "errors": []any{msg}}}})
			return
		}
		var next map[string]any
		if v, ok := upd["version"].(string); ok && exists {
			old, ok := s.history[id][v]
			if !ok {
				writeJSON(w, 404, map[string]any{"message": "Version " + v + " of app " + id + " does not exist"})
				return
			}
			next = clone(old)
			if vi, ok := old["versionInfo"].(map[string]any); ok {
				next["restoreConfigAt"] = fmt.Sprint(vi["lastConfigChangeAt"])
			}
		} else {
			next = map[string]any{}
			if exists && !replace {
				next = clone(a)
			}
			for k, v := range upd {
				if v != nil && k != "version" {
					next[k] = v
				}
			}
			next["id"] = id
		}
		var prev map[string]any
		if exists {
			prev = clone(a)
		}
		d := s.change(id, next, prev)
		s.push(map[string]any{"eventType": "api_post_event", "timestamp": d.Version, "uri": "/v2/apps" + id, "appDefinition": next})
		status := 200
		if !exists {
			status = 201
		}
		writeJSON(w, status, map[string]any{"deploymentId": d.ID, "version": d.Version})
	case http.MethodDelete:
		if !exists {
			writeJSON(w, 404, map[string]any{"message": "App '" + id + "' does not exist"})
			return
		}
		if d := s.locked(id); d != "" && !force {
			writeJSON(w, 409, map[string]any{"message": "App is locked by one or more deployments.", "deployments": []any{map[string]any{"id": d}}})
			return
		}
		s.deleteLocked(id)
		writeJSON(w, 200, map[string]any{"deploymentId": s.nextID(), "version": s.now()})
	default:
		writeJSON(w, 405, map[string]any{"message": "method not allowed"})
	}
}

// deleteLocked stops app id's tasks and forgets it. Caller holds s.mu.
func (s *Server) deleteLocked(id string) {
	for did, d := range s.deployments {
		if d.AppID == id {
			delete(s.deployments, did)
		}
	}
	for _, t := range s.tasks[id] {
		s.killLocked(t)
	}
	delete(s.apps, id)
	delete(s.tasks, id)
	delete(s.rawTasks, id)
	s.push(map[string]any{"eventType": "app_terminated_event", "timestamp": s.now(), "appId": id})
}

func (s *Server) appTasks(w http.ResponseWriter, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.apps[id]; !ok {
		writeJSON(w, 404, map[string]any{"message": "App '" + id + "' does not exist"})
		return
	}
	writeJSON(w, 200, map[string]any{"tasks": s.appJSON(id, true)["tasks"]})
}

func (s *Server) allTasks(w http.ResponseWriter) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := slices.Sorted(maps.Keys(s.apps))
	tasks := []any{}
	for _, id := range ids {
		ts, _ := s.appJSON(id, true)["tasks"].([]any)
		tasks = append(tasks, ts...)
	}
	writeJSON(w, 200, map[string]any{"tasks": tasks})
}

// killTasks is POST /v2/tasks/delete[?scale=true] {"ids": [...]}.
func (s *Server) killTasks(w http.ResponseWriter, r *http.Request, body []byte) {
	var req struct {
		IDs []string `json:"ids"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		writeJSON(w, 400, map[string]any{"message": "Invalid JSON"})
		return
	}
	scale := r.URL.Query().Get("scale") == "true"
	force := r.URL.Query().Get("force") == "true"
	s.mu.Lock()
	defer s.mu.Unlock()
	if scale && !force { // TasksResource: killAndScale(toKill, force) changes the app
		for _, id := range req.IDs {
			for app, ts := range s.tasks {
				for _, t := range ts {
					if d := s.locked(app); t.ID == id && d != "" {
						writeJSON(w, 409, map[string]any{"message": "App is locked by one or more deployments. Override with the option '?force=true'.",
							"deployments": []any{map[string]any{"id": d}}})
						return
					}
				}
			}
		}
	}
	killed := map[string]int{}
	for _, id := range req.IDs {
		for app, ts := range s.tasks {
			for _, t := range ts {
				if t.ID == id {
					s.killLocked(t)
					killed[app]++
				}
			}
		}
	}
	if scale {
		for app, n := range killed {
			a := clone(s.apps[app])
			a["instances"] = max(0, toInt(a["instances"])-n)
			s.change(app, a, s.apps[app])
		}
		writeJSON(w, 200, map[string]any{"deploymentId": s.nextID(), "version": s.now()})
		return
	}
	writeJSON(w, 200, map[string]any{"tasks": []any{}})
}

func toInt(v any) int {
	f, _ := v.(float64)
	if i, ok := v.(int); ok {
		return i
	}
	return int(f)
}

// invalidApp is the part of Marathon's app validation the fake checks:
// AppDefinition.scala, "AppDefinition can contain at most one Mesos
// health check".
func invalidApp(a map[string]any) string {
	checks, _ := a["healthChecks"].([]any)
	mesos := 0
	for _, c := range checks {
		m, _ := c.(map[string]any)
		if p, _ := m["protocol"].(string); strings.HasPrefix(p, "MESOS_") {
			mesos++
		}
	}
	if mesos > 1 {
		return "AppDefinition can contain at most one Mesos health check"
	}
	return ""
}
