package scaler

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/flock-paas/flock/deploy"
	"github.com/flock-paas/flock/router/hap"
)

// fakePlatform is an in-memory Platform that records the calls it gets.
type fakePlatform struct {
	mu       sync.Mutex
	apps     map[string]deploy.App
	calls    []string // "sleep a", "scale a 3"
	activity map[string]deploy.Activity
	err      error  // returned by Sleep and Scale when set
	onSleep  func() // called by Sleep, without the fake's lock
}

func newFakePlatform(apps ...deploy.App) *fakePlatform {
	p := &fakePlatform{apps: map[string]deploy.App{}, activity: map[string]deploy.Activity{}}
	for _, a := range apps {
		p.apps[a.Name] = a
	}
	return p
}

func (p *fakePlatform) Apps(context.Context) ([]deploy.App, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []deploy.App
	for _, a := range p.apps {
		out = append(out, a)
	}
	return out, nil
}

func (p *fakePlatform) Sleep(_ context.Context, app string) error {
	if p.onSleep != nil {
		p.onSleep()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return p.err
	}
	p.calls = append(p.calls, "sleep "+app)
	a := p.apps[app]
	a.State = deploy.StateSleeping
	p.apps[app] = a
	return nil
}

func (p *fakePlatform) Scale(_ context.Context, app string, n int) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return p.err
	}
	p.calls = append(p.calls, fmt.Sprintf("scale %s %d", app, n))
	a := p.apps[app]
	a.Desired = n
	p.apps[app] = a
	return nil
}

func (p *fakePlatform) RecordActivity(app string, a deploy.Activity) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.activity[app] = a
}

func (p *fakePlatform) update(app string, f func(*deploy.App)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	a := p.apps[app]
	f(&a)
	p.apps[app] = a
}

// takeCalls returns the calls since the last takeCalls.
func (p *fakePlatform) takeCalls() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.calls
	p.calls = nil
	return c
}

func (p *fakePlatform) app(name string) deploy.App {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.apps[name]
}

// fakeClock is a clock that only moves when told.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// fakeStats serves a CSV dump built from rows, which tests swap.
type fakeStats struct {
	mu    sync.Mutex
	rows  []Row
	err   error
	reads int // scaler ticks that read the stats
}

// readCount returns how many times the stats were read.
func (f *fakeStats) readCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reads
}

func (f *fakeStats) set(rows []Row) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rows = rows
}

func (f *fakeStats) read(context.Context) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	if f.err != nil {
		return nil, f.err
	}
	return csvOf(f.rows), nil
}

// oneWorker presents one CSV source as one HAProxy worker with a fixed
// pid, as if HAProxy never reloaded: a drop of its counters is a reset on
// the same pid.
func oneWorker(f func(context.Context) ([]byte, error)) StatsFunc {
	return func(ctx context.Context) ([]hap.WorkerStats, error) {
		b, err := f(ctx)
		if err != nil {
			return nil, err
		}
		return []hap.WorkerStats{{Pid: 1, Current: true, CSV: b}}, nil
	}
}

// csvOf renders rows as a HAProxy 2.6-like dump (a subset of columns, in
// HAProxy's order, with the trailing comma).
func csvOf(rows []Row) []byte {
	var b strings.Builder
	b.WriteString("# pxname,svname,qcur,scur,stot,status,bck,lbtot,rate,lastsess,req_rate,req_tot,\n")
	for _, r := range rows {
		bck := 0
		if r.Backup {
			bck = 1
		}
		fmt.Fprintf(&b, "%s,%s,%d,%d,%d,%s,%d,%d,%d,%d,%d,%d,\n", r.Proxy, r.Server, r.Qcur, r.Scur,
			r.Stot, r.Status, bck, r.Lbtot, r.Rate, r.LastSess, r.ReqRate, r.ReqTot)
	}
	return []byte(b.String())
}

func ptr[T any](v T) *T { return &v }

// lastRequest is the last request the scaler reported for app.
func (p *fakePlatform) lastRequest(app string) time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.activity[app].LastRequestAt
}

// requestRate is the request rate the scaler last reported for app.
func (p *fakePlatform) requestRate(app string) float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.activity[app].RequestRate
}
