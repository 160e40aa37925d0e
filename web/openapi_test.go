package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/flock-paas/flock/deploy"
	"github.com/getkin/kin-openapi/openapi3"
)

// loadOpenAPI loads the embedded document and validates it as OpenAPI 3.
func loadOpenAPI(t testing.TB) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(openapiJSON)
	if err != nil {
		t.Fatalf("load web/openapi.json: %v", err)
	}
	if err := doc.Validate(t.Context()); err != nil {
		t.Fatalf("web/openapi.json is not valid OpenAPI 3: %v", err)
	}
	return doc
}

func TestOpenAPIValid(t *testing.T) {
	doc := loadOpenAPI(t)
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Errorf("openapi = %q, want 3.x", doc.OpenAPI)
	}
	for _, name := range []string{"App", "Release", "Deploy", "Event", "Error", "Instance", "Releases"} {
		if doc.Components.Schemas[name] == nil {
			t.Errorf("no schema %s", name)
		}
	}
}

var ginParam = regexp.MustCompile(`[:*]([A-Za-z0-9_]+)`)

// TestOpenAPIRoutes compares the routes the gin engine registers with the
// document, both ways, by method and path (gin's :app and *path read as
// {app} and {path}). Paths served by the mounts cmd/flock gives the
// server (the GitHub webhook, the git remote) are documented under them.
func TestOpenAPIRoutes(t *testing.T) {
	doc := loadOpenAPI(t)
	mounts := map[string]http.Handler{"/hooks/github": http.NotFoundHandler(), "/git/": http.NotFoundHandler()}
	s, _ := newTestServer(t, func(c *Config) { c.Mounts = mounts })

	served := map[string]bool{}
	for _, r := range s.engine.Routes() {
		served[r.Method+" "+ginParam.ReplaceAllString(r.Path, "{$1}")] = true
	}
	documented := map[string]bool{}
	underMount := map[string]int{}
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			route := method + " " + path
			documented[route] = true
			if served[route] {
				continue
			}
			mounted := false
			for prefix := range mounts {
				if path == prefix || (strings.HasSuffix(prefix, "/") && strings.HasPrefix(path, prefix)) {
					mounted = true
					underMount[prefix]++
				}
			}
			if !mounted {
				t.Errorf("documented but not served: %s", route)
			}
		}
	}
	var missing []string
	for route := range served {
		if !documented[route] {
			missing = append(missing, route)
		}
	}
	sort.Strings(missing)
	for _, r := range missing {
		t.Errorf("served but not in web/openapi.json: %s", r)
	}
	for prefix := range mounts {
		if underMount[prefix] == 0 {
			t.Errorf("nothing documented under the mount %s", prefix)
		}
	}
	if len(served) < 30 {
		t.Errorf("only %d routes from gin: the comparison reads the wrong engine", len(served))
	}
}

func TestOpenAPIServed(t *testing.T) {
	s, _ := newTestServer(t, nil)
	w := do(t, s.Handler(), req{path: "/api/v1/openapi.json", token: testToken})
	if w.Code != 200 || !strings.HasPrefix(w.Header().Get("Content-Type"), "application/json") {
		t.Fatalf("GET /api/v1/openapi.json = %d %s", w.Code, w.Header().Get("Content-Type"))
	}
	if !bytes.Equal(w.Body.Bytes(), openapiJSON) {
		t.Error("served document differs from web/openapi.json")
	}
	if w := do(t, s.Handler(), req{path: "/api/v1/openapi.json"}); w.Code != 401 {
		t.Errorf("without a token = %d, want 401 like every read", w.Code)
	}
	ro, _ := newTestServer(t, func(c *Config) { c.ReadOnly = true })
	if w := do(t, ro.Handler(), req{path: "/api/v1/openapi.json"}); w.Code != 200 {
		t.Errorf("read-only dashboard without a token = %d, want 200", w.Code)
	}
}

// conform checks that body, decoded as JSON, matches the named schema of
// the document, and that it has no key the schema does not name: the
// document must tell of every field a client gets.
func conform(t testing.TB, doc *openapi3.T, schema string, body []byte) {
	t.Helper()
	ref := doc.Components.Schemas[schema]
	if ref == nil {
		t.Fatalf("no schema %s", schema)
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("%s: not JSON: %v: %s", schema, err, body)
	}
	if err := ref.Value.VisitJSON(v, openapi3.MultiErrors()); err != nil {
		t.Errorf("%s does not match its schema: %v\n%s", schema, err, body)
	}
	for _, k := range undocumented(ref.Value, v, schema) {
		t.Errorf("field %s is not in web/openapi.json", k)
	}
}

// undocumented lists the object keys of v, at any depth, that the schema
// does not name (where it names its properties and allows no others).
func undocumented(s *openapi3.Schema, v any, at string) []string {
	var out []string
	switch v := v.(type) {
	case map[string]any:
		free := s.AdditionalProperties.Schema != nil
		for k, x := range v {
			p := s.Properties[k]
			switch {
			case p != nil:
				out = append(out, undocumented(p.Value, x, at+"."+k)...)
			case free:
				out = append(out, undocumented(s.AdditionalProperties.Schema.Value, x, at+"."+k)...)
			case len(s.Properties) > 0:
				out = append(out, at+"."+k)
			}
		}
	case []any:
		if s.Items != nil {
			for i, x := range v {
				out = append(out, undocumented(s.Items.Value, x, fmt.Sprintf("%s[%d]", at, i))...)
			}
		}
	}
	return out
}

// TestOpenAPISchemas checks what the API answers against the schemas.
// TestWithService does the same with the real engine.Service.
func TestOpenAPISchemas(t *testing.T) {
	doc := loadOpenAPI(t)
	s, f := newTestServer(t, nil)
	f.mu.Lock()
	a := f.apps["hello"]
	a.Domains, a.Error = []string{"www.example.com"}, "router: host taken"
	a.Processes = []deploy.Process{{Type: "worker", Command: "node worker.js", Desired: 1, Instances: instances("hello--worker", 1)}}
	a.Instances[0].LastExit, a.Instances[0].LastOutput = "status 1", "Error: boom"
	f.mu.Unlock()
	get := func(path string) []byte {
		t.Helper()
		w := do(t, s.Handler(), req{path: path, token: testToken})
		return w.Body.Bytes()
	}
	conform(t, doc, "App", get("/api/v1/apps/hello"))
	var list []json.RawMessage
	if err := json.Unmarshal(get("/api/v1/apps"), &list); err != nil || len(list) != 2 {
		t.Fatalf("apps: %v %d", err, len(list))
	}
	for _, a := range list {
		conform(t, doc, "App", a)
	}
	conform(t, doc, "Releases", get("/api/v1/apps/hello/releases?log=1"))
	conform(t, doc, "Deploy", get("/api/v1/deploys/hello-1"))
	conform(t, doc, "Error", get("/api/v1/apps/nope"))
	conform(t, doc, "Health", get("/healthz"))
	w := do(t, s.Handler(), req{method: "DELETE", path: "/api/v1/apps/world", token: testToken})
	conform(t, doc, "Destroyed", w.Body.Bytes())
	ev, _ := json.Marshal(deploy.Event{App: "hello", Type: "state", State: deploy.StateSleeping, Message: "asleep"})
	conform(t, doc, "Event", ev)

	// The check is a real one: a field the schema lacks fails it.
	var tb fakeTB
	conform(&tb, doc, "Health", []byte(`{"status":"ok","uptime":3}`))
	if !tb.failed {
		t.Error("an undocumented field passed")
	}
}

// fakeTB records a failure instead of failing the test.
type fakeTB struct {
	testing.TB
	failed bool
}

func (f *fakeTB) Helper()               {}
func (f *fakeTB) Errorf(string, ...any) { f.failed = true }
func (f *fakeTB) Fatalf(string, ...any) { f.failed = true }
