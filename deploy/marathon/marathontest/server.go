// Package marathontest is a recorded fake Marathon for tests: an httptest
// server holding apps in memory (seeded from real Marathon documents),
// answering the REST calls and the event stream Flock uses, recording every
// request, and failing on demand. With Options.RunTasks each task is a real
// child process, so a whole Flock can run on it.
package marathontest

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"
)

// Options configure a Server.
type Options struct {
	// RunTasks starts a real process per task: `sh -c cmd` in a temp dir
	// with the fetch URIs downloaded (a .tar.gz extracted) and PORT0…,
	// PORT, HOST set. A task is healthy when its HTTP/TCP check passes.
	RunTasks bool
	// CheckEvery is how often RunTasks health checks run (Marathon uses
	// the app's intervalSeconds; tests want faster). Default 100ms.
	CheckEvery time.Duration
	// Settle is how long a deployment of healthy tasks takes at least.
	// Default 20ms.
	Settle time.Duration
	// Version is what /v2/info reports. It decides the event format:
	// heavy deployment events (plan.original and plan.target, the whole
	// root group) before 1.7, unless a 1.6 client asks for
	// plan-format=light (changelog, "/v2/events" in 1.6 and 1.8).
	// Default "1.5.0".
	Version string
	// User and Password make the server demand HTTP basic auth on every
	// request, as Marathon started with --http_credentials does: 401
	// otherwise. Token demands "Authorization: token=<Token>" instead,
	// as the DC/OS admin router in front of Marathon does.
	User, Password, Token string
	// Leader makes this server a standby of the Marathon at that URL: it
	// answers /v2/events with a 302 to the leader's /v2/events, query kept
	// (Marathon ≥1.7, changelog "Non-leader/standby Marathon instances
	// respond to /v2/events with a redirect"; LeaderProxyFilter), and
	// proxies every other request to it.
	Leader string
	// Second is how long one Marathon second lasts here, for the app's
	// gracePeriodSeconds, taskKillGracePeriodSeconds and launch backoff
	// (backoffSeconds, backoffFactor, maxLaunchDelaySeconds). Default 10ms.
	Second time.Duration
	// Heartbeat is how often an event stream gets an empty line, as
	// Jetty's EventSourceServlet (Marathon's HttpEventStreamServlet)
	// writes one every 10 s. Default 10s.
	Heartbeat time.Duration
	// Stage is how long a task stays TASK_STAGING before TASK_RUNNING
	// (without RunTasks; with it, until its process runs). Default 20ms.
	Stage time.Duration
}

// Request is one recorded request.
type Request struct {
	Method string
	Path   string
	Query  string
	Body   []byte
	// Authorized: the request carried the credentials Options demand
	// (always true without them).
	Authorized bool
}

// Server is the fake Marathon. Its methods are safe for concurrent use.
type Server struct {
	URL string

	srv  *httptest.Server
	opts Options
	tmp  string

	mu          sync.Mutex
	apps        map[string]map[string]any // id → app (no tasks)
	rawTasks    map[string][]any          // seeded tasks, served verbatim
	tasks       map[string][]*task        // generated tasks by app id
	history     map[string]map[string]map[string]any
	deployments map[string]*deployment
	seededDeps  []any
	static      map[string][]byte
	requests    []Request
	fails       []failure
	down        bool
	unhealthy   map[string]bool
	delay       map[string]*backoff // launch delay by app id, after a failure
	streams     map[chan []byte]*stream
	proxy       http.Handler // to Options.Leader
	stalled     bool         // event streams send nothing (Stall)
	seq         int
	stop        chan struct{}
	wg          sync.WaitGroup
	agent       *Agent // the Mesos agent stand-in, once asked for
}

type failure struct {
	method, prefix string
	status         int
	times          int
}

// New starts a fake Marathon on 127.0.0.1. Close it when done.
func New(opts Options) *Server {
	if opts.CheckEvery <= 0 {
		opts.CheckEvery = 100 * time.Millisecond
	}
	if opts.Settle <= 0 {
		opts.Settle = 20 * time.Millisecond
	}
	if opts.Version == "" {
		opts.Version = "1.5.0"
	}
	if opts.Second <= 0 {
		opts.Second = 10 * time.Millisecond
	}
	if opts.Heartbeat <= 0 {
		opts.Heartbeat = 10 * time.Second
	}
	if opts.Stage <= 0 {
		opts.Stage = 20 * time.Millisecond
	}
	tmp, _ := os.MkdirTemp("", "marathontest-")
	s := &Server{
		opts:        opts,
		tmp:         tmp,
		apps:        map[string]map[string]any{},
		rawTasks:    map[string][]any{},
		tasks:       map[string][]*task{},
		history:     map[string]map[string]map[string]any{},
		deployments: map[string]*deployment{},
		static:      map[string][]byte{},
		unhealthy:   map[string]bool{},
		delay:       map[string]*backoff{},
		streams:     map[chan []byte]*stream{},
		stop:        make(chan struct{}),
	}
	if opts.Leader != "" {
		if u, err := url.Parse(opts.Leader); err == nil {
			s.proxy = httputil.NewSingleHostReverseProxy(u)
		}
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	s.wg.Add(1)
	go s.loop()
	return s
}

// Close stops every task process, the event streams and the server.
func (s *Server) Close() {
	s.mu.Lock()
	select {
	case <-s.stop:
		s.mu.Unlock()
		return
	default:
	}
	close(s.stop)
	var all []*task
	for _, ts := range s.tasks {
		all = append(all, ts...)
	}
	for c := range s.streams {
		close(c)
		delete(s.streams, c)
	}
	agent := s.agent
	s.mu.Unlock()
	for _, t := range all {
		t.kill()
	}
	s.srv.CloseClientConnections()
	s.srv.Close()
	agent.close()
	s.wg.Wait()
	os.RemoveAll(s.tmp)
}

// SeedApps adds the apps of a GET /v2/apps document ({"apps": [...]}) or of
// one app definition. Unknown fields are kept and served back as they are.
func (s *Server) SeedApps(doc []byte) error {
	var list struct {
		Apps []map[string]any `json:"apps"`
	}
	if err := json.Unmarshal(doc, &list); err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	if list.Apps == nil {
		var one map[string]any
		if err := json.Unmarshal(doc, &one); err != nil {
			return fmt.Errorf("seed: %w", err)
		}
		list.Apps = []map[string]any{one}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, a := range list.Apps {
		id := normID(fmt.Sprint(a["id"]))
		a["id"] = id
		ts, _ := a["tasks"].([]any)
		s.rawTasks[id] = append([]any{}, ts...) // seeded: served as is, never run
		delete(a, "tasks")
		s.apps[id] = a
	}
	return nil
}

// SeedDeployments adds foreign deployments (a GET /v2/deployments
// document); they stay in progress forever, as another team's would.
func (s *Server) SeedDeployments(doc []byte) error {
	var ds []any
	if err := json.Unmarshal(doc, &ds); err != nil {
		return fmt.Errorf("seed deployments: %w", err)
	}
	s.mu.Lock()
	s.seededDeps = append(s.seededDeps, ds...)
	s.mu.Unlock()
	return nil
}

// Static serves body for method and path (e.g. GET /v2/info from a
// fixture), before any built-in answer.
func (s *Server) Static(method, path string, body []byte) {
	s.mu.Lock()
	s.static[method+" "+path] = body
	s.mu.Unlock()
}

// Fail makes the next n requests whose method matches (empty: any) and
// whose path starts with prefix answer status. A 409 carries Marathon's
// "app is locked" body.
func (s *Server) Fail(method, prefix string, status, n int) {
	s.mu.Lock()
	s.fails = append(s.fails, failure{method, prefix, status, n})
	s.mu.Unlock()
}

// SetDown makes the server drop every connection (and its event streams)
// as a dead Marathon would, or come back.
func (s *Server) SetDown(down bool) {
	s.mu.Lock()
	s.down = down
	s.mu.Unlock()
	if down {
		s.DropStreams()
		s.srv.CloseClientConnections()
	}
}

// SetUnhealthy makes the tasks the app starts from now on fail their
// health checks (without RunTasks), so its deployments never finish.
func (s *Server) SetUnhealthy(appID string, bad bool) {
	s.mu.Lock()
	s.unhealthy[normID(appID)] = bad
	s.mu.Unlock()
}

// Requests returns the recorded requests, oldest first.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// App returns a copy of the app as stored (nil if absent), tasks excluded.
func (s *Server) App(id string) map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.apps[normID(id)]
	if !ok {
		return nil
	}
	return clone(a)
}

// Tasks is app id's tasks as GET /v2/apps/<id>/tasks shows them; nil
// for an app that does not exist.
func (s *Server) Tasks(id string) []any {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.apps[normID(id)]; !ok {
		return nil
	}
	tasks, _ := s.appJSON(normID(id), true)["tasks"].([]any)
	return tasks
}

// serve records the request, applies failures and routes it.
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	authorized := s.authorized(r)
	s.requests = append(s.requests, Request{r.Method, r.URL.Path, r.URL.RawQuery, body, authorized})
	down := s.down
	status := 0
	for i := range s.fails {
		f := &s.fails[i]
		if f.times > 0 && (f.method == "" || f.method == r.Method) && strings.HasPrefix(r.URL.Path, f.prefix) {
			f.times--
			status = f.status
			break
		}
	}
	static, hasStatic := s.static[r.Method+" "+r.URL.Path]
	s.mu.Unlock()
	if !authorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="Mesosphere Marathon"`)
		writeJSON(w, http.StatusUnauthorized, map[string]any{"message": "Invalid username or password."})
		return
	}
	if down {
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				c.Close()
				return
			}
		}
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	switch {
	case status == http.StatusConflict:
		writeJSON(w, status, map[string]any{
			"message":     "App is locked by one or more deployments. Override with the option '?force=true'.",
			"deployments": []any{map[string]any{"id": "marathontest-other-deployment"}},
		})
		return
	case status != 0:
		writeJSON(w, status, map[string]any{"message": http.StatusText(status)})
		return
	case hasStatic:
		w.Header().Set("Content-Type", "application/json")
		w.Write(static)
		return
	case s.opts.Leader != "" && r.URL.Path == "/v2/events":
		http.Redirect(w, r, strings.TrimSuffix(s.opts.Leader, "/")+r.URL.RequestURI(), http.StatusFound)
		return
	case s.proxy != nil:
		r.Body = io.NopCloser(bytes.NewReader(body))
		s.proxy.ServeHTTP(w, r)
		return
	}
	s.route(w, r, body)
}

// SetToken changes the DC/OS token the server demands, as after the
// operator's job issued a new one.
func (s *Server) SetToken(token string) {
	s.mu.Lock()
	s.opts.Token = token
	s.mu.Unlock()
}

// authorized checks the credentials Options demand. Caller holds s.mu.
func (s *Server) authorized(r *http.Request) bool {
	switch {
	case s.opts.Token != "":
		return subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), []byte("token="+s.opts.Token)) == 1
	case s.opts.User != "":
		u, p, ok := r.BasicAuth()
		return ok && subtle.ConstantTimeCompare([]byte(u+"\x00"+p), []byte(s.opts.User+"\x00"+s.opts.Password)) == 1
	}
	return true
}

func (s *Server) route(w http.ResponseWriter, r *http.Request, body []byte) {
	p := r.URL.Path
	switch {
	case p == "/ping":
		io.WriteString(w, "pong\n")
	case p == "/v2/info" && r.Method == http.MethodGet:
		writeJSON(w, 200, map[string]any{"name": "marathon", "version": s.opts.Version,
			"elected": true, "leader": s.srv.Listener.Addr().String()})
	case p == "/v2/queue" && r.Method == http.MethodGet:
		s.queue(w)
	case strings.HasPrefix(p, "/v2/queue/") && strings.HasSuffix(p, "/delay") && r.Method == http.MethodDelete:
		s.resetDelay(w, normID(strings.TrimSuffix(strings.TrimPrefix(p, "/v2/queue"), "/delay")))
	case p == "/v2/leader" && r.Method == http.MethodGet:
		writeJSON(w, 200, map[string]any{"leader": s.srv.Listener.Addr().String()})
	case p == "/v2/events":
		s.events(w, r)
	case p == "/v2/apps" && r.Method == http.MethodGet:
		s.listApps(w, r)
	case p == "/v2/apps" && r.Method == http.MethodPost:
		s.createApp(w, body)
	case strings.HasPrefix(p, "/v2/apps/") && strings.HasSuffix(p, "/tasks") && r.Method == http.MethodGet:
		s.appTasks(w, normID(strings.TrimSuffix(strings.TrimPrefix(p, "/v2/apps"), "/tasks")))
	case strings.HasPrefix(p, "/v2/apps/"):
		s.oneApp(w, r, normID(strings.TrimPrefix(p, "/v2/apps")), body)
	case p == "/v2/groups" || strings.HasPrefix(p, "/v2/groups/"):
		s.group(w, r, normID(strings.TrimPrefix(p, "/v2/groups")))
	case p == "/v2/tasks" && r.Method == http.MethodGet:
		s.allTasks(w)
	case p == "/v2/tasks/delete" && r.Method == http.MethodPost:
		s.killTasks(w, r, body)
	case p == "/v2/deployments" && r.Method == http.MethodGet:
		s.listDeployments(w)
	case strings.HasPrefix(p, "/v2/deployments/") && r.Method == http.MethodDelete:
		s.cancelDeployment(w, strings.TrimPrefix(p, "/v2/deployments/"), r.URL.Query().Get("force") == "true")
	default:
		writeJSON(w, http.StatusNotFound, map[string]any{"message": "not found: " + r.Method + " " + p})
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func normID(id string) string {
	return "/" + strings.Trim(id, "/")
}

// clone deep-copies a JSON object.
func clone(m map[string]any) map[string]any {
	b, _ := json.Marshal(m)
	var c map[string]any
	json.Unmarshal(b, &c)
	return c
}
