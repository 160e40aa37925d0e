package webhook

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/cgi"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"
)

// RemoteConfig configures Flock's own git remote.
type RemoteConfig struct {
	// Dir holds the bare repositories, <Dir>/<app>.git, each created by the
	// first push to its name. Required.
	Dir string
	// Token is the HTTP Basic password (any user name) a push or fetch must
	// carry. Required: the remote is never open.
	Token string
	// HookCommand is how the pre-receive hook runs Flock. Default:
	// {os.Executable(), "git-hook"}, the hidden subcommand that calls HookMain.
	HookCommand []string
	// HookURL is the base URL the hook calls back ("http://127.0.0.1:8080").
	// Default: http:// and the local address the push arrived on.
	HookURL string
	// MaxSize bounds a pushed tree (the files of the commit) and a pushed
	// pack, in bytes. Default 1 GiB.
	MaxSize int64
	// AuthFailures is how many wrong tokens one client address may send
	// within AuthWindow; then it is answered 429 until the window ends.
	// Default 10.
	AuthFailures int
	// AuthWindow: see AuthFailures. Default 1 minute.
	AuthWindow time.Duration
	// Unpack extracts the pushed tree (a .tar.gz) into a folder, refusing
	// entries that escape it. Required; cmd/flock passes builder.Unpack, the
	// extractor uploads go through too, so there is one to get right.
	Unpack func(r io.Reader, dir string, maxBytes int64) error
	// Logger receives one line per push. Default slog.Default().
	Logger *slog.Logger
}

// Remote is the http.Handler for everything under /git/: git's smart HTTP
// protocol through `git http-backend`, and the hook's deploy call. Mount it
// at "/git/" without stripping the prefix.
type Remote struct {
	cfg    RemoteConfig
	deploy DeployFunc
	log    *slog.Logger
	git    string // path of git; "" when it is missing
	hook   []byte // the pre-receive script
	// repoMu serialises creating repositories; it is not mu, so a slow
	// `git init` does not hold up other pushes' hook secrets.
	repoMu sync.Mutex
	mu     sync.Mutex
	pushes map[string]pendingPush // by hook secret, while the push runs
	wrong  *failures
}

// pendingPush is a push whose hook has yet to call back.
type pendingPush struct {
	app string
	ctx context.Context // the push request's: done when the pusher leaves
}

// NewRemote validates cfg and returns the remote. It starts nothing and
// creates no folder until the first push.
func NewRemote(cfg RemoteConfig, deploy DeployFunc) (*Remote, error) {
	switch {
	case deploy == nil:
		return nil, errors.New("git remote: nil deploy function")
	case cfg.Dir == "":
		return nil, errors.New("git remote: no repository folder")
	case cfg.Token == "":
		return nil, errors.New("git remote: no token; the remote is never open")
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("git remote: %w", err)
	}
	cfg.Dir = dir
	if len(cfg.HookCommand) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("git remote: hook command: %w", err)
		}
		cfg.HookCommand = []string{exe, "git-hook"}
	}
	if cfg.MaxSize <= 0 {
		cfg.MaxSize = 1 << 30
	}
	if cfg.AuthFailures <= 0 {
		cfg.AuthFailures = 10
	}
	if cfg.AuthWindow <= 0 {
		cfg.AuthWindow = time.Minute
	}
	if cfg.Unpack == nil {
		return nil, fmt.Errorf("new remote: no Unpack function")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.HookURL = strings.TrimRight(cfg.HookURL, "/")
	git, _ := exec.LookPath("git")
	return &Remote{
		cfg:    cfg,
		deploy: deploy,
		log:    cfg.Logger,
		git:    git,
		hook:   hookScript(cfg.HookCommand),
		pushes: make(map[string]pendingPush),
		wrong:  newFailures(cfg.AuthFailures, cfg.AuthWindow),
	}, nil
}

// ServeHTTP serves /git/<app>.git/... .
func (rm *Remote) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := rm.serve(w, r); err != nil {
		var he *httpError
		if !errors.As(err, &he) {
			he = &httpError{code: http.StatusInternalServerError, msg: err.Error()}
		}
		if he.code == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Basic realm="flock"`)
		}
		if he.retry != "" {
			w.Header().Set("Retry-After", he.retry)
		}
		writeJSON(w, he.code, map[string]string{"error": he.msg})
	}
}

func (rm *Remote) serve(w http.ResponseWriter, r *http.Request) error {
	rest, ok := strings.CutPrefix(r.URL.Path, "/git/")
	repo, sub, _ := strings.Cut(rest, "/")
	app, isGit := strings.CutSuffix(repo, ".git")
	if !ok || !isGit {
		return errorf(http.StatusNotFound, "not a git remote: use /git/<app>.git")
	}
	if !validName(app) {
		return errorf(http.StatusBadRequest,
			"app name %q: must be a DNS label (a-z, 0-9 and '-', at most 63, no '-' at either end)", app)
	}
	if strings.Contains(sub, "..") || strings.Contains(sub, "//") || strings.ContainsAny(sub, "\\\x00") {
		return errorf(http.StatusBadRequest, "bad path %q", r.URL.Path)
	}
	// Bodies are bounded however they are framed: a declared length is
	// refused before a byte is read, a chunked body when it passes the bound.
	if r.ContentLength > rm.cfg.MaxSize {
		return errorf(http.StatusRequestEntityTooLarge, "push larger than %d bytes", rm.cfg.MaxSize)
	}
	if r.Body != nil && r.Body != http.NoBody {
		r.Body = http.MaxBytesReader(w, r.Body, rm.cfg.MaxSize)
	}
	if sub == "flock-deploy" {
		return rm.hookDeploy(w, r, app)
	}
	user, err := rm.authorized(r)
	if err != nil {
		return err
	}
	if rm.git == "" {
		return errorf(http.StatusServiceUnavailable, "git is not installed on the Flock server")
	}
	dir := filepath.Join(rm.cfg.Dir, app+".git")
	receive := sub == "git-receive-pack" ||
		(sub == "info/refs" && r.URL.Query().Get("service") == "git-receive-pack")
	if receive {
		if err := rm.ensureRepo(app, dir); err != nil {
			return err
		}
	} else if _, err := os.Stat(dir); err != nil {
		return errorf(http.StatusNotFound, "no repository for app %s: push to it first", app)
	}
	env := append(baseGitEnv(),
		"GIT_PROJECT_ROOT="+rm.cfg.Dir,
		"GIT_HTTP_EXPORT_ALL=1",
		"REMOTE_USER="+user,
		"GIT_HTTP_MAX_REQUEST_BUFFER=100M",
	)
	if sub == "git-receive-pack" && r.Method == http.MethodPost {
		secret := rm.register(app, r.Context())
		defer rm.unregister(secret)
		env = append(env, "FLOCK_HOOK_URL="+rm.hookURL(r, app), "FLOCK_HOOK_SECRET="+secret)
		rm.log.Info("git push", "app", app, "user", user)
	}
	if r.ContentLength < 0 && r.Body != nil && r.Body != http.NoBody {
		// net/http/cgi refuses chunked bodies, which git sends for packs
		// over 1 MiB: spool the body so it has a length.
		cleanup, err := spool(r, rm.cfg.MaxSize)
		if err != nil {
			return err
		}
		defer cleanup()
	}
	rc := http.NewResponseController(w)
	_ = rc.EnableFullDuplex()
	h := &cgi.Handler{
		Path:   rm.git,
		Args:   []string{"http-backend"},
		Root:   "/git",
		Dir:    rm.cfg.Dir,
		Env:    env,
		Logger: slog.NewLogLogger(rm.log.Handler(), slog.LevelWarn),
	}
	h.ServeHTTP(&flushingResponse{ResponseWriter: w, rc: rc}, r)
	return nil
}

// authorized checks the token, sent as the Basic password (any user) or as
// a Bearer token, and returns a user name fit for git's reflog. A request
// without credentials is asked for them (401, which git answers with the
// stored password); wrong ones count against the client's address.
func (rm *Remote) authorized(r *http.Request) (string, error) {
	user, pass, ok := r.BasicAuth()
	if !ok {
		pass, ok = strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	}
	if !ok {
		return "", errorf(http.StatusUnauthorized, "Flock's token is the password of its git remote")
	}
	if wait := rm.wrong.blocked(r); wait > 0 {
		return "", &httpError{code: http.StatusTooManyRequests, retry: retryAfter(wait),
			msg: "too many wrong tokens from " + clientAddr(r) + "; retry in " + retryAfter(wait) + " s"}
	}
	if subtle.ConstantTimeCompare([]byte(pass), []byte(rm.cfg.Token)) != 1 {
		rm.wrong.fail(r)
		rm.log.Warn("git remote: wrong token", "from", clientAddr(r))
		return "", errorf(http.StatusUnauthorized, "Flock's token is the password of its git remote")
	}
	if !userRE.MatchString(user) {
		user = "flock"
	}
	return user, nil
}

var userRE = regexp.MustCompile(`^[A-Za-z0-9._@-]{1,64}$`)

// ensureRepo creates the bare repository of app on its first push, and
// (re)writes its pre-receive hook, which names the Flock binary and so must
// follow it when Flock is upgraded or moved.
func (rm *Remote) ensureRepo(app, dir string) error {
	rm.repoMu.Lock()
	defer rm.repoMu.Unlock()
	if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(rm.cfg.Dir, 0o750); err != nil {
			return fmt.Errorf("create repository %s: %w", app, err)
		}
		// Build it aside and rename, so a half-made repository is never served.
		tmp, err := os.MkdirTemp(rm.cfg.Dir, ".new-"+app+"-")
		if err != nil {
			return fmt.Errorf("create repository %s: %w", app, err)
		}
		defer os.RemoveAll(tmp)
		for _, args := range [][]string{
			{"init", "-q", "--bare", "--template=", "--initial-branch=main", tmp},
			{"-C", tmp, "config", "http.receivepack", "true"},
		} {
			if err := runGit(context.Background(), gitEnv(), io.Discard, args...); err != nil {
				return fmt.Errorf("create repository %s: %w", app, err)
			}
		}
		if err := os.Rename(tmp, dir); err != nil {
			return fmt.Errorf("create repository %s: %w", app, err)
		}
		rm.log.Info("git repository created", "app", app)
	}
	return rm.installHook(dir)
}

func (rm *Remote) installHook(dir string) error {
	path := filepath.Join(dir, "hooks", "pre-receive")
	if old, err := os.ReadFile(path); err == nil && string(old) == string(rm.hook) {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("install hook: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, rm.hook, 0o755); err != nil {
		return fmt.Errorf("install hook: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("install hook: %w", err)
	}
	return nil
}

// register makes the one-time secret the hook of one push shows to call
// back; it is handed to the hook through the CGI environment.
func (rm *Remote) register(app string, ctx context.Context) string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	secret := hex.EncodeToString(b)
	rm.mu.Lock()
	rm.pushes[secret] = pendingPush{app, ctx}
	rm.mu.Unlock()
	return secret
}

func (rm *Remote) unregister(secret string) {
	rm.mu.Lock()
	delete(rm.pushes, secret)
	rm.mu.Unlock()
}

// claim consumes secret and returns the context of its push, reporting
// whether it belongs to a running push to app. Each secret deploys at most
// once.
func (rm *Remote) claim(secret, app string) (context.Context, bool) {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	got, ok := rm.pushes[secret]
	if !ok || got.app != app {
		return nil, false
	}
	delete(rm.pushes, secret)
	return got.ctx, true
}

// hookURL is the URL the hook posts the pushed tree to.
func (rm *Remote) hookURL(r *http.Request, app string) string {
	base := rm.cfg.HookURL
	if base == "" {
		host := r.Host
		if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
			host = a.String()
		}
		base = "http://" + host
	}
	return base + "/git/" + app + ".git/flock-deploy"
}

// spool replaces a chunked request body by a temporary file of known length.
func spool(r *http.Request, limit int64) (func(), error) {
	f, err := os.CreateTemp("", "flock-pack-")
	if err != nil {
		return nil, fmt.Errorf("spool push: %w", err)
	}
	cleanup := func() { f.Close(); os.Remove(f.Name()) }
	n, err := io.Copy(f, io.LimitReader(r.Body, limit+1))
	var tooBig *http.MaxBytesError
	if (err == nil && n > limit) || errors.As(err, &tooBig) {
		err = errorf(http.StatusRequestEntityTooLarge, "push larger than %d bytes", limit)
	}
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		cleanup()
		return nil, err
	}
	r.Body, r.ContentLength, r.TransferEncoding = f, n, nil
	return cleanup, nil
}

// flushingResponse sends every write to the client at once, so git's
// progress and the hook's "remote:" lines arrive while they happen.
type flushingResponse struct {
	http.ResponseWriter
	rc *http.ResponseController
}

func (f *flushingResponse) Write(p []byte) (int, error) {
	n, err := f.ResponseWriter.Write(p)
	if err == nil {
		err = f.rc.Flush()
	}
	return n, err
}

// Unwrap lets http.ResponseController reach the real writer.
func (f *flushingResponse) Unwrap() http.ResponseWriter { return f.ResponseWriter }

var _ http.Handler = (*Remote)(nil)
