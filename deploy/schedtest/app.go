package schedtest

// The suite's app (the test binary, started by the scheduler under test)
// and the recorders the suite gives the scheduler.

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flock-paas/flock/deploy"
)

// appEnv marks the test binary as the suite's app; modeEnv picks how it
// behaves: "" healthy, "unhealthy" (its /health answers 503), "slow"
// (listens only after slowBoot).
const (
	appEnv  = "FLOCK_SCHEDTEST_APP"
	modeEnv = "FLOCK_SCHEDTEST_MODE"
	binEnv  = "FLOCK_SCHEDTEST_BIN"
	// banner is what the app writes to its output once it listens.
	banner = "schedtest app listening"
	// slowBoot is how long a "slow" app takes to listen.
	slowBoot = 1500 * time.Millisecond
)

// ServeIfApp makes the test binary the suite's app when a scheduler
// started it as one (it then serves until killed and never returns);
// otherwise it returns at once. Call it first thing in TestMain.
func ServeIfApp() {
	if os.Getenv(appEnv) != "1" {
		return
	}
	serveApp()
	os.Exit(0)
}

// answer is what the app says on GET /.
type answer struct {
	App     string `json:"app"`
	Release string `json:"release"`
	Port    int    `json:"port"`
	Port1   int    `json:"port1"` // PORT1, when the release has two ports
	Greet   string `json:"greet"` // GREETING, from the spec's Env
	Text    string `json:"text"`  // the slug's release.txt
	Pid     int    `json:"pid"`
}

func serveApp() {
	text, err := os.ReadFile("release.txt") // in the unpacked slug, the working directory
	if err != nil {
		fmt.Fprintln(os.Stderr, "schedtest app:", err)
		os.Exit(2)
	}
	host, port := os.Getenv("HOST"), os.Getenv("PORT0")
	if host == "" || host == "0.0.0.0" {
		host = "127.0.0.1"
	}
	p, _ := strconv.Atoi(port)
	p1, _ := strconv.Atoi(os.Getenv("PORT1"))
	me := answer{App: os.Getenv("FLOCK_APP"), Release: os.Getenv("FLOCK_RELEASE"), Port: p, Port1: p1,
		Greet: os.Getenv("GREETING"), Text: string(text), Pid: os.Getpid()}
	if os.Getenv(modeEnv) == "slow" {
		time.Sleep(slowBoot)
	}
	var sick atomic.Bool // set by /sick, cleared by /well
	sick.Store(os.Getenv(modeEnv) == "unhealthy")
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { json.NewEncoder(w).Encode(me) })
	mux.HandleFunc("/health", func(w http.ResponseWriter, _ *http.Request) {
		if sick.Load() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
		}
	})
	mux.HandleFunc("/sick", func(http.ResponseWriter, *http.Request) { sick.Store(true) })
	mux.HandleFunc("/well", func(http.ResponseWriter, *http.Request) { sick.Store(false) })
	mux.HandleFunc("/exit", func(http.ResponseWriter, *http.Request) { os.Exit(3) })
	// Listen first, then say so: the banner means the port answers. (Not
	// a poll of its own port with a deadline, which a loaded machine
	// could outlast, leaving the output without its banner.)
	ln, err := net.Listen("tcp", net.JoinHostPort(host, port))
	if err != nil {
		fmt.Fprintln(os.Stderr, "schedtest app:", err)
		os.Exit(2)
	}
	fmt.Println(banner)
	fmt.Fprintln(os.Stderr, (&http.Server{Handler: mux}).Serve(ln))
	os.Exit(2)
}

// slugOf packs release.txt holding text as a .tar.gz.
func slugOf(text string) []byte {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	tw.WriteHeader(&tar.Header{Name: "release.txt", Mode: 0o644, Size: int64(len(text)), Typeflag: tar.TypeReg})
	io.WriteString(tw, text)
	tw.Close()
	gz.Close()
	return buf.Bytes()
}

var client = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// call sends GET path to an instance and forgets the answer.
func call(in deploy.Instance, path string) {
	resp, err := client.Get(fmt.Sprintf("http://%s:%d%s", in.Host, in.Port, path))
	if err == nil {
		resp.Body.Close()
	}
}

// ask asks an instance who it is; ok is false when it does not answer.
func ask(in deploy.Instance) (a answer, ok bool) {
	resp, err := client.Get(fmt.Sprintf("http://%s:%d/", in.Host, in.Port))
	if err != nil {
		return answer{}, false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&a) != nil {
		return answer{}, false
	}
	return a, true
}

// drains is the Drainer the suite gives the scheduler: it records each
// instance it is asked to drain, and whether that instance still answered
// then (drained before it was stopped).
type drains struct {
	mu   sync.Mutex
	list []drained
}

type drained struct {
	app      string
	id       string
	answered bool
}

func (d *drains) Drain(_ context.Context, app string, in deploy.Instance) error {
	_, ok := ask(in)
	d.mu.Lock()
	d.list = append(d.list, drained{app: app, id: in.ID, answered: ok})
	d.mu.Unlock()
	return nil
}

// of returns the drains of app's instances, by id.
func (d *drains) of(app string) map[string]drained {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := map[string]drained{}
	for _, x := range d.list {
		if x.app == app {
			out[x.id] = x
		}
	}
	return out
}

// changes counts the names Changes delivered.
type changes struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *changes) add(app string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[app]++
}

func (c *changes) count(app string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[app]
}

func itoa(n int) string { return strconv.Itoa(n) }
