package marathontest

import (
	"net/http"
	"sort"
	"strings"
)

// Groups, as Marathon's groups.raml and RootGroup validation describe
// them: an app's id names the groups above it ("/flock/hello/web" is in
// /flock/hello, created with the app); an id cannot be an app and a group
// at once ("Groups and Applications may not have the same identifier",
// 422); GET /v2/groups/<id> shows a group with its apps and child groups;
// DELETE /v2/groups/<id> "destroys a group. All data about that group and
// all associated applications will be deleted", refused with 409 while a
// deployment holds one of them unless forced (the deployable trait).

// clash says why id cannot be a new app's id: an app above it (its group
// would be an app) or apps below it (it is a group). Caller holds s.mu.
func (s *Server) clash(id string) string {
	for other := range s.apps {
		if strings.HasPrefix(id, other+"/") || strings.HasPrefix(other, id+"/") {
			return "Groups and Applications may not have the same identifier."
		}
	}
	return ""
}

// groupApps lists the ids of the apps in group id and below. Caller holds
// s.mu.
func (s *Server) groupApps(id string) []string {
	prefix := strings.TrimSuffix(id, "/") + "/"
	var ids []string
	for other := range s.apps {
		if strings.HasPrefix(other, prefix) {
			ids = append(ids, other)
		}
	}
	sort.Strings(ids)
	return ids
}

// AppsIn lists the ids of the apps in group id and below.
func (s *Server) AppsIn(id string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.groupApps(normID(id))
}

func (s *Server) group(w http.ResponseWriter, r *http.Request, id string) {
	force := r.URL.Query().Get("force") == "true"
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := s.groupApps(id)
	if len(ids) == 0 && id != "/" {
		writeJSON(w, 404, map[string]any{"message": "Group '" + id + "' does not exist"})
		return
	}
	switch r.Method {
	case http.MethodGet:
		writeJSON(w, 200, s.groupJSON(id, ids))
	case http.MethodDelete:
		if !force {
			for _, app := range ids {
				if d := s.locked(app); d != "" {
					writeJSON(w, 409, map[string]any{"message": "App is locked by one or more deployments.", "deployments": []any{map[string]any{"id": d}}})
					return
				}
			}
		}
		for _, app := range ids {
			s.deleteLocked(app)
		}
		v := s.now()
		s.push(map[string]any{"eventType": "group_change_success", "timestamp": v, "groupId": id, "version": v})
		writeJSON(w, 200, map[string]any{"deploymentId": s.nextID(), "version": v})
	default:
		writeJSON(w, 405, map[string]any{"message": "method not allowed"})
	}
}

// groupJSON is group id as GET /v2/groups/<id> shows it (examples/
// group.json): its own apps, and its child groups nested the same way.
func (s *Server) groupJSON(id string, ids []string) map[string]any {
	prefix := strings.TrimSuffix(id, "/") + "/"
	apps := []any{}
	children := map[string][]string{}
	for _, app := range ids {
		rest := strings.TrimPrefix(app, prefix)
		if child, _, nested := strings.Cut(rest, "/"); nested {
			children[prefix+child] = append(children[prefix+child], app)
			continue
		}
		apps = append(apps, s.appJSON(app, false))
	}
	names := make([]string, 0, len(children))
	for c := range children {
		names = append(names, c)
	}
	sort.Strings(names)
	groups := []any{}
	for _, c := range names {
		groups = append(groups, s.groupJSON(c, children[c]))
	}
	return map[string]any{"id": id, "apps": apps, "groups": groups, "dependencies": []any{}}
}
