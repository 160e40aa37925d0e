package marathon

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
)

// A task's output lives in its sandbox on the Mesos agent that runs it.
// Agents serve it over HTTP (Mesos' "HTTP Endpoints" for the agent):
// GET /state lists the frameworks' executors with their sandbox
// "directory" (Marathon's command executor has the task's id as its id),
// and GET /files/read?path=…&offset=…&length=… returns {"offset", "data"}
// of a file in a sandbox. Flock reaches the agent at the task's host and
// the agents' port (Config.AgentPort): Marathon's task document names the
// host, not the port.

// DefaultAgentPort is the Mesos agent's default HTTP port (mesos-agent
// --port).
const DefaultAgentPort = 5051

// agentHostRE is a host name or IP address that is safe in a URL.
var agentHostRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9.:-]{0,252})$`)

// agents reads sandboxes from Mesos agents. It caches each task's
// sandbox directory; it is used by one Logs call, from one goroutine.
type agents struct {
	port int
	hc   *http.Client
	dirs map[string]string // task id → sandbox directory
}

func newAgents(port int, hc *http.Client) *agents {
	if port <= 0 {
		port = DefaultAgentPort
	}
	return &agents{port: port, hc: hc, dirs: map[string]string{}}
}

// agentState is the part of an agent's GET /state that locates sandboxes.
type agentState struct {
	Frameworks          []agentFramework `json:"frameworks"`
	CompletedFrameworks []agentFramework `json:"completed_frameworks"`
}

type agentFramework struct {
	Executors          []agentExecutor `json:"executors"`
	CompletedExecutors []agentExecutor `json:"completed_executors"`
}

type agentExecutor struct {
	ID             string                `json:"id"`
	Directory      string                `json:"directory"`
	Tasks          []struct{ ID string } `json:"tasks"`
	CompletedTasks []struct{ ID string } `json:"completed_tasks"`
}

// sandbox returns the sandbox directory of task on host.
func (a *agents) sandbox(ctx context.Context, host, task string) (string, error) {
	if d, ok := a.dirs[task]; ok {
		return d, nil
	}
	var st agentState
	if err := a.get(ctx, host, "/state", &st); err != nil {
		return "", err
	}
	for _, f := range append(st.Frameworks, st.CompletedFrameworks...) {
		for _, e := range append(f.Executors, f.CompletedExecutors...) {
			if e.Directory == "" {
				continue
			}
			a.dirs[e.ID] = e.Directory
			for _, t := range append(e.Tasks, e.CompletedTasks...) {
				a.dirs[t.ID] = e.Directory
			}
		}
	}
	if d, ok := a.dirs[task]; ok {
		return d, nil
	}
	return "", fmt.Errorf("agent %s does not list task %s", host, task)
}

// read returns up to one read's worth (Mesos caps it at 16 pages) of the
// file at path from offset, and the offset the agent answered for: the
// file's size when offset is -1 or at or past the end.
func (a *agents) read(ctx context.Context, host, path string, offset int64) (string, int64, error) {
	q := url.Values{"path": {path}, "offset": {strconv.FormatInt(offset, 10)}}
	if offset >= 0 {
		q.Set("length", strconv.Itoa(readChunk))
	}
	var r struct {
		Offset int64  `json:"offset"`
		Data   string `json:"data"`
	}
	if err := a.get(ctx, host, "/files/read?"+q.Encode(), &r); err != nil {
		return "", 0, err
	}
	return r.Data, r.Offset, nil
}

// readChunk is what Flock asks of one read: Mesos' cap with 4 KiB pages.
const readChunk = 64 << 10

// get decodes the JSON answer of GET path on host's agent.
func (a *agents) get(ctx context.Context, host, path string, v any) error {
	if !agentHostRE.MatchString(host) {
		return fmt.Errorf("agent host %q is not a host name", host)
	}
	base := "http://" + net.JoinHostPort(host, strconv.Itoa(a.port))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	if err != nil {
		return fmt.Errorf("agent %s: %w", host, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := a.hc.Do(req)
	if err != nil {
		return fmt.Errorf("agent %s: %w", host, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return fmt.Errorf("agent %s: %w", host, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("agent %s: GET %s: status %d", host, endpoint(path), resp.StatusCode)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("agent %s: GET %s: %w", host, endpoint(path), err)
	}
	return nil
}

// endpoint is path without its query, for messages.
func endpoint(path string) string {
	if u, err := url.Parse(path); err == nil {
		return u.Path
	}
	return path
}
