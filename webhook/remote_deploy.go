package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"time"
)

// hookDeploy serves POST /git/<app>.git/flock-deploy, the call of one
// push's pre-receive hook: the body is the pushed tree as a .tar.gz, the answer
// streams the deploy log, and the trailer X-Flock-Status says "ok" or
// "failed". The hook authenticates with its push's one-time secret.
func (rm *Remote) hookDeploy(w http.ResponseWriter, r *http.Request, app string) error {
	if r.Method != http.MethodPost {
		return errorf(http.StatusMethodNotAllowed, "use POST")
	}
	pushCtx, ok := rm.claim(r.Header.Get(hookSecretHeader), app)
	if !ok {
		return errorf(http.StatusForbidden, "unknown or spent hook secret for app %s", app)
	}
	// The pusher leaving (Ctrl-C) ends the push request, not this one: the
	// hook would wait on. Stop following the deploy then too (the deploy
	// itself carries on, and is recorded, as when any client leaves).
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	defer context.AfterFunc(pushCtx, cancel)()
	commit, ref := r.Header.Get(hookCommitHeader), r.Header.Get(hookRefHeader)
	branch, _ := strings.CutPrefix(ref, "refs/heads/")
	if !commitRE.MatchString(commit) || (branch != "main" && branch != "master") {
		return errorf(http.StatusBadRequest, "bad commit %q or ref %q", commit, ref)
	}
	dir, err := os.MkdirTemp("", "flock-push-")
	if err != nil {
		return fmt.Errorf("push %s: %w", app, err)
	}
	defer os.RemoveAll(dir)
	if err := rm.cfg.Unpack(r.Body, dir, rm.cfg.MaxSize); err != nil {
		return errorf(http.StatusBadRequest, "push %s: %v", app, err)
	}

	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Trailer", statusTrailer)
	w.WriteHeader(http.StatusOK)
	out := &lineFlusher{w: w, rc: http.NewResponseController(w)}
	// Whatever the deploy function does, nothing writes to w once this
	// handler has returned: net/http has taken it back by then.
	defer out.close()
	p := Push{Name: app, Ref: ref, Branch: branch, Commit: commit, Pusher: "git push"}
	log := rm.log.With("app", app, "commit", commit)
	start := time.Now()
	url, err := rm.safeDeploy(ctx, p, dir, out, log)
	out.end()
	if err != nil && ctx.Err() != nil {
		// The pusher left: nobody reads on. What becomes of the deploy is
		// the deploy function's to say (Flock's goes on and is recorded).
		log.Info("git push: the pusher left", "took", time.Since(start).Round(time.Millisecond))
		w.Header().Set(statusTrailer, "failed")
		return nil
	}
	if err != nil {
		log.Error("git push failed", "err", err, "took", time.Since(start).Round(time.Millisecond))
		fmt.Fprintf(out, " !     Deploy failed: %v\n !     Push rejected; the running release is unchanged.\n", err)
		w.Header().Set(statusTrailer, "failed")
		return nil
	}
	log.Info("git push deployed", "url", url, "took", time.Since(start).Round(time.Millisecond))
	fmt.Fprintf(out, "-----> Deployed %s: %s\n", app, url)
	w.Header().Set(statusTrailer, "ok")
	return nil
}

// safeDeploy calls the deploy function, turning a panic in it into the
// push's error (logged with the app and the stack), so that one push's bug
// rejects that push and nothing else.
func (rm *Remote) safeDeploy(ctx context.Context, p Push, dir string, out io.Writer, log *slog.Logger) (url string, err error) {
	defer func() {
		if v := recover(); v != nil {
			log.Error("git push deploy panicked", "panic", v, "stack", string(debug.Stack()))
			url, err = "", fmt.Errorf("deploy %s: panic: %v", p.Name, v)
		}
	}()
	return rm.deploy(ctx, p, dir, out)
}

// errPushEnded is what a write to a push's log gets once its request ended.
var errPushEnded = errors.New("the push request has ended")

// lineFlusher is the deploy's log writer: it sends every complete line to
// the client at once, so the pusher sees the build as it happens. It is
// safe for concurrent use.
type lineFlusher struct {
	mu      sync.Mutex
	w       io.Writer
	rc      *http.ResponseController
	partial bool // the last write did not end a line
	closed  bool // the handler returned: writes are refused
}

func (l *lineFlusher) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return 0, errPushEnded
	}
	n, err := l.w.Write(p)
	if len(p) > 0 {
		l.partial = p[len(p)-1] != '\n'
	}
	if err == nil && bytes.IndexByte(p, '\n') >= 0 {
		err = l.rc.Flush()
	}
	return n, err
}

// end closes a line the deploy left open, so Flock's verdict stands on a
// line of its own.
func (l *lineFlusher) end() {
	l.mu.Lock()
	partial := l.partial
	l.mu.Unlock()
	if partial {
		l.Write([]byte("\n"))
	}
}

// close refuses every later write; it waits for a write in progress.
func (l *lineFlusher) close() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
}
