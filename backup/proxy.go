package backup

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/flock-paas/flock/deploy"
)

// attempt is one try at proxying a request to one instance. The reverse
// proxy's hooks fill it in; it travels in the request's context.
type attempt struct {
	app       string
	arrived   time.Time
	held      bool // the request waited on a gate
	target    *url.URL
	start     time.Time
	responded bool // response headers came back: the attempt cannot be retried
	err       error
}

type attemptKey struct{}

// trackedBody counts what the proxy read of a request body and ignores
// Close, so that a body nobody read survives a failed attempt.
type trackedBody struct {
	rc io.ReadCloser
	n  atomic.Int64
}

func (b *trackedBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.n.Add(int64(n))
	return n, err
}

func (b *trackedBody) Close() error { return nil }

func (w *Waker) newProxy() *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			a := pr.In.Context().Value(attemptKey{}).(*attempt)
			pr.SetURL(a.target)
			// The instance sees the request as HAProxy would pass it: the
			// user's Host and HAProxy's X-Forwarded-* (the waker only
			// listens on loopback, so they come from HAProxy).
			pr.Out.Host = pr.In.Host
			for _, h := range []string{"X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"} {
				if v := pr.In.Header.Values(h); len(v) > 0 {
					pr.Out.Header[h] = v
				}
			}
			pr.Out.Header.Del(HeaderApp)
		},
		Transport: w.tr,
		ModifyResponse: func(resp *http.Response) error {
			a := resp.Request.Context().Value(attemptKey{}).(*attempt)
			a.responded = true
			now := time.Now()
			if a.held {
				w.m.phase.WithLabelValues(a.app, "first_byte").Observe(now.Sub(a.start).Seconds())
				w.m.total.WithLabelValues(a.app).Observe(now.Sub(a.arrived).Seconds())
			}
			// HAProxy sends a request here only while the app has no live
			// server, so every proxied answer is part of a cold start.
			resp.Header.Set(HeaderColdStart, coldStart(a.arrived, now))
			return nil
		},
		ErrorHandler: func(_ http.ResponseWriter, r *http.Request, err error) {
			r.Context().Value(attemptKey{}).(*attempt).err = err
		},
		ErrorLog: nil,
	}
}

// serve answers a request for app: straight to a healthy instance when
// there is one, else after a hold. When the chosen instance vanishes
// before it answers, a request that is safe to repeat is tried once more.
func (w *Waker) serve(rw http.ResponseWriter, r *http.Request, app deploy.App, arrived time.Time) {
	var body *trackedBody
	if r.Body != nil && r.Body != http.NoBody {
		body = &trackedBody{rc: r.Body}
		r.Body = body
		// An app may answer while it still reads the body (an echo, an
		// upload with progress): let the response start before the body
		// has all come in, as HAProxy would.
		_ = http.NewResponseController(rw).EnableFullDuplex()
	}
	held := false
	var exclude []string
	tries := 0
	for turn := 0; turn < 8; turn++ {
		in, wasHeld, err := w.target(r.Context(), app, arrived, exclude)
		held = held || wasHeld
		if err != nil {
			var perr *pageError
			if errors.As(err, &perr) {
				writePage(rw, perr, coldStartIf(held, arrived))
			}
			return // else the client went away
		}
		if !w.acquire(app.Name, in) {
			// Drained since it was chosen: choose again.
			exclude = append(exclude, in.ID)
			continue
		}
		a := &attempt{app: app.Name, arrived: arrived, held: held, target: instanceURL(in), start: time.Now()}
		w.proxyTo(rw, r, in, a)
		if a.err == nil || r.Context().Err() != nil {
			return
		}
		tries++
		if tries == 1 && !a.responded && retryable(r, body, a.err) {
			w.log.Info("instance vanished; retrying request", "app", app.Name, "instance", in.ID, "err", a.err)
			w.forget(app.Name, in.ID)
			exclude = append(exclude, in.ID)
			if app, err = w.p.App(r.Context(), app.Name); err != nil {
				break
			}
			continue
		}
		w.log.Warn("proxy to instance failed", "app", app.Name, "instance", in.ID, "err", a.err)
		if a.responded {
			return
		}
		break
	}
	writePage(rw, &pageError{status: http.StatusBadGateway, msg: "the app's instance went away"}, coldStartIf(held, arrived))
}

// proxyTo proxies one attempt to in. The release is deferred because
// ReverseProxy aborts the handler with a panic (http.ErrAbortHandler)
// when the client leaves in the middle of a streamed response: without
// it, a closed websocket or stream would count as in flight for ever and
// keep its app awake.
func (w *Waker) proxyTo(rw http.ResponseWriter, r *http.Request, in deploy.Instance, a *attempt) {
	defer w.release(in)
	w.proxy.ServeHTTP(rw, r.WithContext(context.WithValue(r.Context(), attemptKey{}, a)))
}

// target picks where the request goes. It reports whether the request
// was held.
func (w *Waker) target(ctx context.Context, app deploy.App, arrived time.Time, exclude []string) (deploy.Instance, bool, error) {
	switch app.State {
	case deploy.StateStopped:
		w.m.rejected.WithLabelValues(app.Name, "stopped").Inc()
		return deploy.Instance{}, false, stoppedError(app.Name)
	case deploy.StateFailed:
		w.mu.Lock()
		at, ok := w.failedAt[app.Name]
		w.mu.Unlock()
		if left := w.cfg.FailedBackoff - time.Since(at); ok && left > 0 {
			w.m.rejected.WithLabelValues(app.Name, "failed").Inc()
			return deploy.Instance{}, false, &pageError{status: http.StatusServiceUnavailable,
				retryAfter: int(left/time.Second) + 1, msg: app.Name + " failed to wake"}
		}
	case deploy.StateCrashed:
		// Its instances keep ending; the scheduler restarts them with
		// backoff. Say so at once instead of holding the request for a
		// wake that is not coming; a healthy instance, if one came back
		// meanwhile, still serves.
		if in, ok := w.pick(app, exclude); ok {
			return in, false, nil
		}
		w.m.rejected.WithLabelValues(app.Name, "crashed").Inc()
		return deploy.Instance{}, false, &pageError{status: http.StatusServiceUnavailable, retryAfter: 5,
			msg: app.Name + " has crashed: its instances keep ending and are being restarted (flock logs " + app.Name + " says why)"}
	case deploy.StateSleeping:
		// Instances still listed belong to a sleep in progress: hold.
	default:
		if in, ok := w.pick(app, exclude); ok {
			return in, false, nil
		}
	}
	in, err := w.hold(ctx, app, arrived)
	return in, true, err
}

// pick returns a healthy instance not in exclude nor draining: one the platform
// reports healthy, or the one the last wake proved healthy if it is still
// listed (the platform's own checks may not have passed yet).
func (w *Waker) pick(app deploy.App, exclude []string) (deploy.Instance, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	verified, hasVerified := w.verified[app.Name]
	var healthy []deploy.Instance
	for _, in := range app.Instances {
		if _, drained := w.draining[in.ID]; drained || slices.Contains(exclude, in.ID) {
			continue
		}
		if in.Healthy || (hasVerified && in.ID == verified.ID) {
			healthy = append(healthy, in)
		}
	}
	if len(healthy) == 0 {
		return deploy.Instance{}, false
	}
	w.next++
	return healthy[w.next%uint64(len(healthy))], true
}

// forget drops a vanished instance from what the waker believes healthy.
func (w *Waker) forget(app, id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if in, ok := w.verified[app]; ok && in.ID == id {
		delete(w.verified, app)
	}
}

// retryable reports whether a request whose attempt failed before any
// response may be sent again: a safe method, or any method when the
// connection was never made; in both cases only if no byte of its body
// was consumed.
func retryable(r *http.Request, body *trackedBody, err error) bool {
	if body != nil && body.n.Load() > 0 {
		return false
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return true
	}
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

func instanceURL(in deploy.Instance) *url.URL {
	host := in.Host
	if host == "" {
		host = "127.0.0.1"
	}
	return &url.URL{Scheme: "http", Host: net.JoinHostPort(host, strconv.Itoa(in.Port))}
}

func coldStart(arrived, now time.Time) string {
	return strconv.FormatInt(now.Sub(arrived).Milliseconds(), 10)
}

func coldStartIf(held bool, arrived time.Time) string {
	if !held {
		return ""
	}
	return coldStart(arrived, time.Now())
}
