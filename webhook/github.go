package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-github/v57/github"
)

// GitHubConfig configures the GitHub push webhook.
type GitHubConfig struct {
	// Secret is the webhook secret (--github-secret). Without it every
	// delivery is answered 503: unsigned payloads are never accepted.
	Secret string
	// Token is a GitHub token (--github-token), used to fetch private
	// repositories over https and to report commit statuses. Optional.
	Token string
	// APIURL is the GitHub API base URL for commit statuses; empty means
	// https://api.github.com. For GitHub Enterprise give the server's URL
	// ("https://ghe.example.com", "/api/v3/" is added).
	APIURL string
	// DashboardURL is the base of the statuses' target_url
	// (<DashboardURL>/apps/<app>). Empty: statuses carry no link.
	DashboardURL string
	// Branch returns the branch to deploy for a repository's full name, or ""
	// for the repository's default branch. May be nil.
	Branch func(repo string) string
	// Deployed reports the commit the app of that name runs now and, for
	// every commit it ran before (a deploy of it went live), the release
	// it ran as; "" and nil for an app Flock does not know. A push of one of those commits
	// is acknowledged and ignored: a replayed delivery must not take an
	// app back in time (a rollback does that on purpose). May be nil.
	Deployed func(app string) (current string, releases map[string]string)
	// MaxBody is the largest delivery accepted, in bytes. Default 25 MiB,
	// GitHub's own cap.
	MaxBody int64
	// MaxUnverified is how many deliveries are read at once before their
	// signature is checked; more are answered 503 at once, unread.
	// Default 64.
	MaxUnverified int
	// SpoolBudget bounds the bytes of unverified deliveries held in
	// temporary files at once (each holds at most 64 KiB in memory); a
	// delivery that would pass it is answered 503. Default 4 × MaxBody.
	SpoolBudget int64
	// SpoolDir is where large deliveries are spooled while their
	// signature is checked. Default os.TempDir().
	SpoolDir string
	// BodyTimeout is how long a delivery's body may take to arrive. GitHub
	// gives up on a delivery after 10 s. Default 30 s.
	BodyTimeout time.Duration
	// Workers is how many pushes are fetched and deployed at once, each of
	// a different repository. Default 2.
	Workers int
	// Queue is how many accepted pushes may wait for a worker; more are
	// answered 503 so GitHub shows the failure. Default 256.
	Queue int
	// Logger receives one line per job. Default slog.Default().
	Logger *slog.Logger
}

// GitHub is the http.Handler for POST /hooks/github. It verifies and sorts
// deliveries and answers at once; Run fetches and deploys accepted pushes.
type GitHub struct {
	cfg     GitHubConfig
	deploy  DeployFunc
	log     *slog.Logger
	seen    *deliveries
	gate    *unverified
	queue   chan Push
	pending atomic.Int64
	status  *github.Client // nil without a token
	mu      sync.Mutex
	running map[string]bool // repositories deploying now
	parked  map[string]Push // by repository: the newest push waiting for it
	// fetch checks a push's commit out into a new folder; tests replace it.
	fetch func(ctx context.Context, p Push, log io.Writer) (string, error)
}

// NewGitHub validates cfg and returns the webhook. It starts nothing.
func NewGitHub(cfg GitHubConfig, deploy DeployFunc) (*GitHub, error) {
	if deploy == nil {
		return nil, errors.New("github webhook: nil deploy function")
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = 25 << 20
	}
	if cfg.MaxUnverified <= 0 {
		cfg.MaxUnverified = 64
	}
	if cfg.SpoolBudget <= 0 {
		cfg.SpoolBudget = 4 * cfg.MaxBody
	}
	if cfg.BodyTimeout <= 0 {
		cfg.BodyTimeout = 30 * time.Second
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 2
	}
	if cfg.Queue <= 0 {
		cfg.Queue = 256
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.DashboardURL = strings.TrimRight(cfg.DashboardURL, "/")
	g := &GitHub{
		cfg:     cfg,
		deploy:  deploy,
		log:     cfg.Logger,
		seen:    newDeliveries(4096),
		gate:    newUnverified(cfg.MaxUnverified, cfg.SpoolBudget),
		queue:   make(chan Push, cfg.Queue),
		running: make(map[string]bool),
		parked:  make(map[string]Push),
	}
	if cfg.Token != "" {
		c := github.NewClient(nil).WithAuthToken(cfg.Token)
		if cfg.APIURL != "" {
			var err error
			if c, err = c.WithEnterpriseURLs(cfg.APIURL, cfg.APIURL); err != nil {
				return nil, fmt.Errorf("github api url %q: %w", cfg.APIURL, err)
			}
		}
		g.status = c
	}
	g.fetch = g.checkout
	return g, nil
}

// Pending reports how many accepted pushes are queued or being deployed.
func (g *GitHub) Pending() int { return int(g.pending.Load()) }

// reply is the JSON body of every answer that is not an error.
type reply struct {
	Status string `json:"status"`
	App    string `json:"app,omitempty"`
	Commit string `json:"commit,omitempty"`
}

// ServeHTTP answers one delivery. It never clones: an accepted push is
// queued and answered 202 at once, well inside GitHub's 10 s timeout.
func (g *GitHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	code, body, err := g.serve(w, r)
	if err != nil {
		var he *httpError
		if !errors.As(err, &he) {
			he = &httpError{code: http.StatusInternalServerError, msg: err.Error()}
		}
		if he.code == http.StatusServiceUnavailable {
			// Full, or not configured: GitHub may redeliver later.
			w.Header().Set("Retry-After", "10")
		}
		writeJSON(w, he.code, map[string]string{"error": he.msg})
		return
	}
	writeJSON(w, code, body)
}

func (g *GitHub) serve(w http.ResponseWriter, r *http.Request) (int, reply, error) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		return 0, reply{}, errorf(http.StatusMethodNotAllowed, "use POST")
	}
	if g.cfg.Secret == "" {
		return 0, reply{}, errorf(http.StatusServiceUnavailable,
			"GitHub webhook disabled: no secret configured (start flock with --github-secret-file or FLOCK_GITHUB_SECRET)")
	}
	sig := r.Header.Get(github.SHA256SignatureHeader)
	if !strings.HasPrefix(sig, "sha256=") {
		return 0, reply{}, errorf(http.StatusUnauthorized, "missing or malformed X-Hub-Signature-256")
	}
	raw, err := g.readSigned(w, r, sig)
	if err != nil {
		return 0, reply{}, err
	}
	payload, err := formPayload(r.Header.Get("Content-Type"), raw)
	if err != nil {
		return 0, reply{}, err
	}
	event := github.WebHookType(r)
	ev, err := github.ParseWebHook(event, payload)
	if err != nil {
		return 0, reply{}, errorf(http.StatusBadRequest, "parse %q event: %v", event, err)
	}
	switch ev := ev.(type) {
	case *github.PingEvent:
		return http.StatusOK, reply{Status: "pong"}, nil
	case *github.PushEvent:
		return g.push(github.DeliveryID(r), ev)
	default:
		return 0, reply{}, errorf(http.StatusBadRequest,
			"unsupported event %q: Flock handles push and ping; let the webhook send only push events", event)
	}
}

// push sorts a push event: ignored, refused or queued.
func (g *GitHub) push(delivery string, ev *github.PushEvent) (int, reply, error) {
	p, why, err := g.decide(delivery, ev)
	if err != nil {
		return 0, reply{}, err
	}
	if why == "" {
		why = g.deployedBefore(p)
	}
	if why != "" {
		return http.StatusOK, reply{Status: "ignored: " + why, App: p.Name, Commit: p.Commit}, nil
	}
	if delivery != "" && !g.seen.add(delivery) {
		return http.StatusOK, reply{Status: "ignored: delivery " + delivery + " was already received"}, nil
	}
	g.pending.Add(1)
	select {
	case g.queue <- p:
	default:
		g.pending.Add(-1)
		g.seen.remove(delivery)
		return 0, reply{}, errorf(http.StatusServiceUnavailable, "deploy queue full (%d pushes waiting); redeliver later", g.cfg.Queue)
	}
	g.log.Info("github push queued", "app", p.Name, "repo", p.Repo, "commit", p.Commit, "delivery", delivery)
	return http.StatusAccepted, reply{Status: "queued", App: p.Name, Commit: p.Commit}, nil
}

// deployedBefore says why p is not deployed when the app runs its commit
// now, or ran it before; else it returns "".
func (g *GitHub) deployedBefore(p Push) string {
	if g.cfg.Deployed == nil {
		return ""
	}
	current, releases := g.cfg.Deployed(p.Name)
	switch {
	case current == p.Commit:
		return fmt.Sprintf("commit %s is already deployed", short(p.Commit))
	case releases[p.Commit] != "":
		rel := releases[p.Commit]
		return fmt.Sprintf("commit %s was deployed before (%s) and %s has moved on; to run it again: flock rollback %s %s",
			short(p.Commit), rel, p.Name, p.Name, rel)
	}
	return ""
}

// decide turns a push event into a Push, or says why it is not deployed.
func (g *GitHub) decide(delivery string, ev *github.PushEvent) (Push, string, error) {
	repo := ev.GetRepo()
	ref := ev.GetRef()
	p := Push{
		Delivery: delivery,
		Repo:     repo.GetFullName(),
		Name:     defaultName(repo.GetName()),
		CloneURL: repo.GetCloneURL(),
		Ref:      ref,
		Commit:   ev.GetAfter(),
		Pusher:   ev.GetPusher().GetName(),
	}
	if p.Pusher == "" {
		p.Pusher = ev.GetSender().GetLogin()
	}
	branch, isBranch := strings.CutPrefix(ref, "refs/heads/")
	switch {
	case strings.HasPrefix(ref, "refs/tags/"):
		return p, "tag push " + ref + " (Flock deploys branches)", nil
	case !isBranch:
		return p, "ref " + ref + " is not a branch", nil
	case ev.GetDeleted() || zeroCommit(p.Commit):
		return p, "branch " + branch + " was deleted", nil
	}
	p.Branch = branch
	want := ""
	if g.cfg.Branch != nil {
		want = g.cfg.Branch(p.Repo)
	}
	if want == "" {
		want = repo.GetDefaultBranch()
	}
	if want == "" {
		want = repo.GetMasterBranch()
	}
	if branch != want {
		return p, fmt.Sprintf("push to branch %s; Flock deploys %s", branch, want), nil
	}
	if p.Repo == "" || p.Name == "" {
		return p, "", errorf(http.StatusBadRequest, "push event without repository name")
	}
	if !commitRE.MatchString(p.Commit) {
		return p, "", errorf(http.StatusBadRequest, "push event: after %q is not a commit id", p.Commit)
	}
	if err := checkCloneURL(p.CloneURL); err != nil {
		return p, "", errorf(http.StatusBadRequest, "push event: %v", err)
	}
	return p, "", nil
}

// formPayload returns the JSON of a delivery. GitHub sends it raw with
// content type application/json, or as the "payload" form field with
// application/x-www-form-urlencoded; the signature covers the raw body.
func formPayload(contentType string, raw []byte) ([]byte, error) {
	if !strings.HasPrefix(contentType, "application/x-www-form-urlencoded") {
		return raw, nil
	}
	form, err := url.ParseQuery(string(raw))
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "parse form payload: %v", err)
	}
	return []byte(form.Get("payload")), nil
}

// httpError is an error with the status it is answered with.
type httpError struct {
	code  int
	msg   string
	retry string // Retry-After, if any
}

func (e *httpError) Error() string { return e.msg }

func errorf(code int, format string, args ...any) error {
	return &httpError{code: code, msg: fmt.Sprintf(format, args...)}
}

// writeJSON writes v as the JSON body of a response with the given status.
func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

var _ http.Handler = (*GitHub)(nil)
