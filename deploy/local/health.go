package local

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/flock-paas/flock/deploy"
)

// check is a deploy.Check with defaults applied and units resolved.
type check struct {
	path        string // "" means a TCP connect
	portIndex   int
	interval    time.Duration
	timeout     time.Duration
	grace       time.Duration
	maxFailures int
}

// checksOf resolves the descriptor's checks: deploy.EffectiveChecks
// applies the defaults (the one place they are written), and the path
// rule is deploy.ValidCheckPath, as everywhere else.
func checksOf(d deploy.Descriptor) ([]check, error) {
	in := d.EffectiveChecks()
	out := make([]check, 0, len(in))
	for i, c := range in {
		if c.Path != "" && !deploy.ValidCheckPath(c.Path) {
			return nil, fmt.Errorf("checks[%d].path %q must be a URL path starting with /: %w", i, c.Path, deploy.ErrInvalid)
		}
		idx := c.PortIndex
		if i < len(d.Checks) {
			idx = d.Checks[i].PortIndex // as given: Normalized clamps a negative one
		}
		if idx < 0 || (d.Ports > 0 && idx >= d.Ports) {
			return nil, fmt.Errorf("checks[%d].portIndex %d is not one of the app's %d ports: %w", i, idx, d.Ports, deploy.ErrInvalid)
		}
		out = append(out, check{
			path: c.Path, portIndex: c.PortIndex,
			interval: c.Interval(), timeout: c.Timeout(), grace: c.GracePeriod(),
			maxFailures: c.MaxConsecutiveFailures,
		})
	}
	return out, nil
}

// policy is what the supervisor applies when an instance has several
// checks: it is healthy when all pass; it probes at the shortest interval,
// gives up after the fewest allowed failures, and waits for the longest
// grace period.
type policy struct {
	interval    time.Duration
	grace       time.Duration
	maxFailures int
}

func policyOf(checks []check) policy {
	p := policy{interval: checks[0].interval, grace: checks[0].grace, maxFailures: checks[0].maxFailures}
	for _, c := range checks[1:] {
		p.interval = min(p.interval, c.interval)
		p.grace = max(p.grace, c.grace)
		p.maxFailures = min(p.maxFailures, c.maxFailures)
	}
	return p
}

// startDeadline is how long an instance may take to pass its checks for
// the first time: the grace period plus one check timeout, so a probe
// started just before the grace period ends may still finish.
func startDeadline(checks []check) time.Duration {
	d := time.Duration(0)
	for _, c := range checks {
		d = max(d, c.grace+c.timeout)
	}
	return d
}

// fastProbe is the pause between probes until an instance first passes:
// 5 ms at first, growing with the time spent booting (1/200 of it) up to
// 50 ms. A quick app is seen healthy within milliseconds of listening, and
// a slow one is not hammered with 200 requests a second for a minute.
func fastProbe(booting time.Duration) time.Duration {
	return min(max(booting/200, 5*time.Millisecond), 50*time.Millisecond)
}

// prober runs checks against one host.
type prober struct {
	host   string
	client *http.Client
}

func newProber(host string) *prober {
	return &prober{
		host: host,
		client: &http.Client{
			// No proxy from the environment, no kept-alive connections that
			// would count as open requests while an instance drains, and
			// redirects are an answer, not something to follow.
			Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
	}
}

// probe runs every check once; the error names the first that failed.
func (p *prober) probe(ctx context.Context, checks []check, portList []int, limit time.Duration) error {
	for _, c := range checks {
		if c.portIndex >= len(portList) {
			continue // an app without ports is judged by staying up
		}
		timeout := c.timeout
		if limit > 0 {
			timeout = min(timeout, max(limit, 100*time.Millisecond))
		}
		cctx, cancel := context.WithTimeout(ctx, timeout)
		err := p.one(cctx, c, portList[c.portIndex])
		cancel()
		if err != nil {
			return err
		}
	}
	return nil
}

func (p *prober) one(ctx context.Context, c check, port int) error {
	addr := net.JoinHostPort(p.host, strconv.Itoa(port))
	if c.path == "" {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return fmt.Errorf("tcp check on port %d: %w", port, err)
		}
		conn.Close()
		return nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+c.path, nil)
	if err != nil {
		return fmt.Errorf("http check %s: %w", c.path, err)
	}
	req.Header.Set("User-Agent", "flock-health-check")
	resp, err := p.client.Do(req)
	if err != nil {
		return fmt.Errorf("http check GET %s on port %d: %w", c.path, port, err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		return fmt.Errorf("http check GET %s on port %d: status %d", c.path, port, resp.StatusCode)
	}
	return nil
}

// outcome is how one run of an instance ended.
type outcome struct {
	kind     int
	err      error     // the last failed check
	passedAt time.Time // when it first passed; zero if never
	endedAt  time.Time // when it exited or failed for good
	settling bool      // passed, but a deploy waits for it to stay up its stability window
}

const (
	stopped = iota
	exited
	neverHealthy
	unhealthy
	released // Run ended detached: the process is the next Flock's now
)

func (o outcome) describe(in *instance, p *proc) error {
	var msg string
	switch o.kind {
	case exited:
		msg = fmt.Sprintf("instance %s exited with %s", in.id, exitStatus(p.state))
		if p.adopted {
			msg = fmt.Sprintf("instance %s (adopted from a previous Flock, exit status unknown) exited", in.id)
		}
		if oom := in.oomKilled(); oom != "" {
			msg = fmt.Sprintf("instance %s was killed: %s", in.id, oom)
		}
		if o.passedAt.IsZero() {
			msg += " before passing its check"
		} else if o.settling {
			msg += fmt.Sprintf(" %s after passing its check (a new instance must stay up %s)",
				o.endedAt.Sub(o.passedAt).Round(time.Millisecond), in.rel.stable)
		}
	case neverHealthy:
		msg = fmt.Sprintf("instance %s did not pass its check within %s (%v)", in.id, startDeadline(in.rel.checks), o.err)
	default:
		msg = fmt.Sprintf("instance %s failed %d checks in a row (%v)", in.id, policyOf(in.rel.checks).maxFailures, o.err)
		if o.settling {
			msg += fmt.Sprintf(" %s after passing its first (a new instance must stay healthy %s)",
				o.endedAt.Sub(o.passedAt).Round(time.Millisecond), in.rel.stable)
		}
	}
	return fmt.Errorf("%s: %s", msg, in.lastOutput())
}

func exitStatus(st *os.ProcessState) string {
	if st == nil {
		return "unknown status"
	}
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return "signal " + ws.Signal().String()
	}
	return fmt.Sprintf("status %d", st.ExitCode())
}

// watch probes a running process until it exits, is asked to stop, never
// passes within its start deadline, or fails too many checks in a row.
// Until the first pass it probes every few milliseconds (fastProbe), after
// that at the check interval.
func (in *instance) watch(p *proc) outcome {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-p.done:
		case <-in.stopCh:
		case <-in.s.done:
		case <-ctx.Done():
		}
		cancel()
	}()
	pol := policyOf(in.rel.checks)
	started := time.Now()
	deadline := started.Add(startDeadline(in.rel.checks))
	list := in.portList()
	var out outcome
	if p.adopted {
		// It passed under the previous Flock and keeps the health it had
		// there; from now on it is checked at the interval, as usual.
		out.passedAt = started
	}
	fails := 0
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-in.stopCh:
			out.kind = stopped
			return out
		case <-in.s.done:
			out.kind = released
			return out
		case <-p.done:
			out.kind, out.endedAt = exited, time.Now()
			return out
		case <-t.C:
		}
		var limit time.Duration
		if out.passedAt.IsZero() {
			limit = time.Until(deadline)
		}
		err := in.s.prober.probe(ctx, in.rel.checks, list, limit)
		if ctx.Err() != nil {
			continue // exited or stopping: the next select says which
		}
		if out.passedAt.IsZero() {
			if err == nil {
				out.passedAt = time.Now()
				in.setHealthy(true)
				// A deploy waiting for this instance hears of the pass at
				// once (it may hand the app's traffic over: handover.go),
				// and of the outcome once the instance has also stayed up
				// and healthy for the release's stability window: an app
				// that listens, then exits (a missing build), fails the
				// deploy instead of going live.
				out.settling = in.awaited()
				in.sendPass()
				if out.settling && in.rel.stable <= 0 {
					in.sendReport(nil)
					out.settling = false
				}
				t.Reset(probeEvery(pol.interval, out.settling))
				continue
			}
			out.err = err
			if time.Now().After(deadline) {
				out.kind = neverHealthy
				return out
			}
			t.Reset(fastProbe(time.Since(started)))
			continue
		}
		if err == nil {
			fails = 0
			in.setHealthy(true)
			if out.settling && time.Since(out.passedAt) >= in.rel.stable {
				in.sendReport(nil)
				out.settling = false
			}
		} else {
			fails++
			out.err = err
			in.setHealthy(false)
			if fails >= pol.maxFailures {
				out.kind, out.endedAt = unhealthy, time.Now()
				return out
			}
		}
		t.Reset(probeEvery(pol.interval, out.settling))
	}
}

// settleProbe is how often an instance in its stability window is
// checked: often enough to see it fail within the window, whatever the
// check interval.
const settleProbe = 200 * time.Millisecond

// probeEvery is the time to the next check of a passed instance.
func probeEvery(interval time.Duration, settling bool) time.Duration {
	if settling {
		return min(interval, settleProbe)
	}
	return interval
}

// awaited reports whether a deploy waits for this instance's first pass.
func (in *instance) awaited() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.report != nil
}

// sendPass tells the deploy that waits for this instance of its first
// pass, once (see handover).
func (in *instance) sendPass() {
	in.mu.Lock()
	f := in.onPass
	in.onPass = nil
	in.mu.Unlock()
	if f != nil {
		f()
	}
}

// sendReport sends the outcome to the deploy that waits for it, once.
func (in *instance) sendReport(err error) {
	if r := in.takeReport(); r != nil {
		r(err)
	}
}
