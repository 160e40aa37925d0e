package marathontest

import (
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Agent is the Mesos agent of the Server's tasks (Options.RunTasks), as
// far as its HTTP API goes: the endpoints Mesos documents under "HTTP
// Endpoints" for the agent, answered as Mesos' own code answers them
// (src/files/files.cpp for /files/*, the agent's /state for executors).
//
//   - GET /state: {"id", "hostname", "pid", "frameworks": [{"id", "name":
//     "marathon", "executors": [{"id", "name", "source", "directory",
//     "tasks": [{"id", "framework_id", "executor_id", "slave_id",
//     "state"}], "completed_tasks": []}], "completed_executors": []}],
//     "completed_frameworks": []}. Marathon's command executor has the
//     task's id as its id; directory is the sandbox.
//   - GET /files/browse?path=DIR: a JSON array of {"path", "size", "mode",
//     "nlink", "mtime", "uid", "gid"}, sorted by path; 404 for a path
//     outside every sandbox.
//   - GET /files/read?path=FILE&offset=N&length=L: {"offset", "data"}.
//     offset defaults to -1, which means the file's size (so
//     offset=-1 answers the size and no data); length defaults to the rest
//     of the file and is capped at 16 pages; an offset at or past the end
//     answers {"offset": size, "data": ""}. 400 for a directory or a bad
//     number, 404 for a path outside every sandbox.
//
// Every task runs "on" this one agent, at the tasks' host (127.0.0.1).
type Agent struct {
	URL  string
	Port int

	s   *Server
	srv *httptest.Server
}

// Agent starts the Mesos agent stand-in on first use and returns it; it
// stops with the Server.
func (s *Server) Agent() *Agent {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.agent != nil {
		return s.agent
	}
	a := &Agent{s: s}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /state", a.state)
	mux.HandleFunc("GET /files/browse", a.browse)
	mux.HandleFunc("GET /files/read", a.read)
	a.srv = httptest.NewServer(mux)
	a.URL = a.srv.URL
	_, port, _ := net.SplitHostPort(a.srv.Listener.Addr().String())
	a.Port, _ = strconv.Atoi(port)
	s.agent = a
	return a
}

// close stops the agent's server.
func (a *Agent) close() {
	if a != nil {
		a.srv.CloseClientConnections()
		a.srv.Close()
	}
}

// sandboxes returns the sandbox directory of every task with one, by task
// id.
func (a *Agent) sandboxes() map[string]string {
	s := a.s
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]string{}
	for _, ts := range s.tasks {
		for _, t := range ts {
			dir := filepath.Join(s.tmp, t.ID)
			if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
				out[t.ID] = dir
			}
		}
	}
	return out
}

func (a *Agent) state(w http.ResponseWriter, _ *http.Request) {
	const agentID, frameworkID = "marathontest-agent-0", "marathontest-framework-0"
	executors := []any{}
	for id, dir := range a.sandboxes() {
		executors = append(executors, map[string]any{
			"id": id, "name": "Command Executor (Task: " + id + ") (Command: sh -c ...)", "source": id,
			"framework_id": frameworkID, "directory": dir,
			"tasks": []any{map[string]any{"id": id, "framework_id": frameworkID, "executor_id": "",
				"slave_id": agentID, "state": "TASK_RUNNING"}},
			"queued_tasks": []any{}, "completed_tasks": []any{},
		})
	}
	writeJSON(w, 200, map[string]any{
		"id": agentID, "hostname": "127.0.0.1", "pid": "slave(1)@" + strings.TrimPrefix(a.URL, "http://"),
		"frameworks": []any{map[string]any{"id": frameworkID, "name": "marathon",
			"executors": executors, "completed_executors": []any{}}},
		"completed_frameworks": []any{},
	})
}

// resolve maps a path of the query to a file inside a sandbox, as Mesos
// resolves attached paths; ok is false for anything outside.
func (a *Agent) resolve(p string) (string, bool) {
	if p == "" {
		return "", false
	}
	real, err := filepath.EvalSymlinks(filepath.Clean(p))
	if err != nil {
		return "", false
	}
	for _, dir := range a.sandboxes() {
		root, err := filepath.EvalSymlinks(dir)
		if err == nil && (real == root || strings.HasPrefix(real, root+"/")) {
			return real, true
		}
	}
	return "", false
}

func (a *Agent) browse(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query().Get("path")
	if q == "" {
		http.Error(w, "Expecting 'path=value' in query.", http.StatusBadRequest)
		return
	}
	dir, ok := a.resolve(q)
	if !ok {
		http.NotFound(w, r)
		return
	}
	entries, _ := os.ReadDir(dir)
	list := []any{}
	for _, e := range entries { // os.ReadDir sorts by name, as Mesos sorts by path
		fi, err := e.Info()
		if err != nil {
			continue
		}
		list = append(list, map[string]any{
			"path": strings.TrimSuffix(q, "/") + "/" + e.Name(), "size": fi.Size(), "mode": fi.Mode().String(),
			"nlink": 1, "mtime": fi.ModTime().Unix(), "uid": "root", "gid": "root",
		})
	}
	writeJSON(w, 200, list)
}

// readCap is Mesos' cap on one read: 16 pages.
var readCap = int64(os.Getpagesize() * 16)

func (a *Agent) read(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("path") == "" {
		http.Error(w, "Expecting 'path=value' in query.", http.StatusBadRequest)
		return
	}
	offset, length := int64(-1), int64(-1)
	for _, p := range []struct {
		name string
		dst  *int64
	}{{"offset", &offset}, {"length", &length}} {
		if v := q.Get(p.name); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				http.Error(w, "Failed to parse "+p.name+": "+err.Error()+".", http.StatusBadRequest)
				return
			}
			*p.dst = n
		}
	}
	path, ok := a.resolve(q.Get("path"))
	if !ok {
		http.NotFound(w, r)
		return
	}
	f, err := os.Open(path)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.IsDir() {
		http.Error(w, "Cannot read a directory.", http.StatusBadRequest)
		return
	}
	size := fi.Size()
	if offset == -1 {
		offset = size
	}
	if length == -1 {
		length = size - offset
	}
	if offset < 0 { // lseek refuses it
		http.Error(w, "Failed to seek file: Invalid argument", http.StatusInternalServerError)
		return
	}
	length = min(length, readCap)
	if offset >= size || length <= 0 {
		writeJSON(w, 200, map[string]any{"offset": size, "data": ""})
		return
	}
	buf := make([]byte, length)
	n, _ := f.ReadAt(buf, offset)
	writeJSON(w, 200, map[string]any{"offset": offset, "data": string(buf[:n])})
}
