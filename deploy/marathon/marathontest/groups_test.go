package marathontest

import (
	"testing"
)

// TestGroups: an app's id makes its groups; an id cannot be an app and a
// group at once (422, RootGroup validation); GET /v2/groups/<id> nests
// apps and groups (groups.raml); DELETE of a group deletes all its apps,
// 409 while one is deploying unless forced, 404 for a group that does not
// exist.
func TestGroups(t *testing.T) {
	s := newServer(t, Options{})
	s.SetUnhealthy("/g/a/web", true) // its deployment stays
	do(t, "POST", s.URL+"/v2/apps", `{"id":"/g/a/web","cmd":"sleep 9","instances":1,"healthChecks":[{"protocol":"TCP"}]}`)
	do(t, "POST", s.URL+"/v2/apps", `{"id":"/g/a/worker","cmd":"sleep 9","instances":1}`)
	do(t, "POST", s.URL+"/v2/apps", `{"id":"/g/b","cmd":"sleep 9","instances":1}`)
	for _, clash := range []string{"/g/a", "/g/b/web"} {
		if r := do(t, "POST", s.URL+"/v2/apps", `{"id":"`+clash+`","cmd":"sleep 9"}`); r.StatusCode != 422 {
			t.Errorf("POST %s beside the apps: %d, want 422", clash, r.StatusCode)
		}
		if r := do(t, "PUT", s.URL+"/v2/apps"+clash, `{"cmd":"sleep 9"}`); r.StatusCode != 422 {
			t.Errorf("PUT %s beside the apps: %d, want 422", clash, r.StatusCode)
		}
	}
	var g struct {
		ID     string
		Apps   []struct{ ID string }
		Groups []struct {
			ID   string
			Apps []struct{ ID string }
		}
	}
	getJSON(t, s.URL+"/v2/groups/g", &g)
	if g.ID != "/g" || len(g.Apps) != 1 || g.Apps[0].ID != "/g/b" || len(g.Groups) != 1 || g.Groups[0].ID != "/g/a" || len(g.Groups[0].Apps) != 2 {
		t.Errorf("GET /v2/groups/g = %+v", g)
	}
	if r := do(t, "DELETE", s.URL+"/v2/groups/g/a", ""); r.StatusCode != 409 {
		t.Errorf("DELETE of a group while its app deploys: %d, want 409", r.StatusCode)
	}
	if r := do(t, "DELETE", s.URL+"/v2/groups/g/a?force=true", ""); r.StatusCode != 200 {
		t.Errorf("forced DELETE of a group: %d", r.StatusCode)
	}
	if ids := s.AppsIn("/g"); len(ids) != 1 || ids[0] != "/g/b" {
		t.Errorf("apps left in /g: %v, want /g/b only", ids)
	}
	if r := do(t, "DELETE", s.URL+"/v2/groups/g/a?force=true", ""); r.StatusCode != 404 {
		t.Errorf("DELETE of a group that is gone: %d, want 404", r.StatusCode)
	}
	if r := do(t, "POST", s.URL+"/v2/apps", `{"id":"/g/a","cmd":"sleep 9"}`); r.StatusCode != 201 {
		t.Errorf("POST /g/a once the group is gone: %d, want 201", r.StatusCode)
	}
}
