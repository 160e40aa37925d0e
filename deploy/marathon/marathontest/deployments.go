package marathontest

import (
	"fmt"
	"net/http"
	"slices"
)

func (s *Server) listDeployments(w http.ResponseWriter) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := append([]any{}, s.seededDeps...)
	for _, d := range s.deployments {
		out = append(out, map[string]any{"id": d.ID, "version": d.Version, "affectedApps": []string{d.AppID},
			"affectedPods":   []string{},
			"steps":          []any{map[string]any{"actions": []any{map[string]any{"action": "RestartApplication", "app": d.AppID}}}},
			"currentActions": []any{map[string]any{"action": "RestartApplication", "app": d.AppID, "readinessCheckResults": []any{}}},
			"currentStep":    1, "totalSteps": 1})
	}
	writeJSON(w, 200, out)
}

// cancelDeployment is DELETE /v2/deployments/{id}: without force Marathon
// rolls the app back to what it was (deleting an app that was created).
func (s *Server) cancelDeployment(w http.ResponseWriter, id string, force bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.deployments[id]
	if !ok {
		writeJSON(w, 404, map[string]any{"message": "DeploymentPlan " + id + " does not exist"})
		return
	}
	delete(s.deployments, id)
	s.push(map[string]any{"eventType": "deployment_failed", "timestamp": s.now(), "id": id})
	if force {
		writeJSON(w, 202, map[string]any{})
		return
	}
	for _, t := range s.tasks[d.AppID] {
		if slices.Contains(d.tasks, t.ID) {
			s.killLocked(t)
		}
	}
	var rb *deployment
	if d.prev == nil {
		for _, t := range s.tasks[d.AppID] {
			s.killLocked(t)
		}
		delete(s.apps, d.AppID)
		delete(s.tasks, d.AppID)
		s.push(map[string]any{"eventType": "app_terminated_event", "timestamp": s.now(), "appId": d.AppID})
		writeJSON(w, 200, map[string]any{"deploymentId": s.nextID(), "version": s.now()})
		return
	}
	prev := clone(d.prev)
	if vi, ok := prev["versionInfo"].(map[string]any); ok {
		prev["restoreConfigAt"] = fmt.Sprint(vi["lastConfigChangeAt"])
	}
	rb = s.change(d.AppID, prev, nil)
	writeJSON(w, 200, map[string]any{"deploymentId": rb.ID, "version": rb.Version})
}
