package backup

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy"
	"github.com/flock-paas/flock/deploy/testkit"
)

// testPlatform is a small engine.Service of its own: Wake starts real
// child processes (the test binary as the app), a health checker per
// instance reports their health honestly and a supervisor restarts
// instances that crash while the app is awake.
type testPlatform struct {
	tb         testing.TB
	checkEvery time.Duration  // the platform's own check interval, slower than the waker's probe
	drainer    deploy.Drainer // the waker, drained before an instance stops

	mu     sync.Mutex
	apps   map[string]*testApp
	subs   map[chan deploy.Event]struct{}
	closed bool
	wg     sync.WaitGroup
}

type appOpts struct {
	state        deploy.State
	desired      int
	boot         time.Duration // the app's own delay before it listens
	sick         bool          // its /health answers 500 forever
	checkPath    string        // "" : TCP check
	restartDelay time.Duration // before the supervisor replaces a crashed instance
	staleFor     time.Duration // how long a dead instance stays listed (and healthy)
}

type testApp struct {
	name string
	appOpts
	wakes     int
	fails     []string
	seq       int
	instances []*child
	boots     []time.Duration // exec → listening of every instance started
}

type child struct {
	id       string
	port     int
	cmd      *exec.Cmd
	execAt   time.Time
	healthy  bool
	exited   bool
	stopping bool // stopped on purpose: not replaced
	done     chan struct{}
}

func newTestPlatform(tb testing.TB) *testPlatform {
	p := &testPlatform{tb: tb, checkEvery: 25 * time.Millisecond, apps: map[string]*testApp{}, subs: map[chan deploy.Event]struct{}{}}
	tb.Cleanup(p.close)
	return p
}

func (p *testPlatform) add(name string, o appOpts) {
	if o.desired == 0 {
		o.desired = 1
	}
	if o.state == "" {
		o.state = deploy.StateSleeping
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	a := &testApp{name: name, appOpts: o}
	p.apps[name] = a
	if o.state == deploy.StateRunning {
		for range o.desired {
			p.startLocked(a)
		}
	}
}

func (p *testPlatform) App(_ context.Context, name string) (deploy.App, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	a := p.apps[name]
	if a == nil {
		return deploy.App{}, fmt.Errorf("app %s: %w", name, deploy.ErrNotFound)
	}
	out := deploy.App{Name: name, State: a.state, Desired: a.desired}
	if a.checkPath != "" {
		out.Descriptor.Checks = []deploy.Check{{Path: a.checkPath}}
	}
	for _, c := range a.instances {
		out.Instances = append(out.Instances, deploy.Instance{ID: c.id, Host: "127.0.0.1", Port: c.port,
			Ports: []int{c.port}, Healthy: c.healthy, StartedAt: c.execAt})
	}
	return out, nil
}

func (p *testPlatform) Wake(_ context.Context, name string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	a := p.apps[name]
	if a == nil {
		return fmt.Errorf("wake %s: %w", name, deploy.ErrNotFound)
	}
	if a.state == deploy.StateStopped {
		return fmt.Errorf("wake %s: app is stopped: %w", name, deploy.ErrConflict)
	}
	a.wakes++
	if a.state == deploy.StateSleeping || a.state == deploy.StateFailed {
		a.state = deploy.StateWaking
	}
	for n := p.liveLocked(a); n < a.desired; n++ {
		p.startLocked(a)
	}
	p.publishLocked(name, "state")
	return nil
}

func (p *testPlatform) Fail(name, reason string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if a := p.apps[name]; a != nil {
		a.fails = append(a.fails, reason)
		a.state = deploy.StateFailed
		p.publishLocked(name, "state")
	}
}

func (p *testPlatform) Subscribe() (<-chan deploy.Event, func()) {
	ch := make(chan deploy.Event, 256)
	p.mu.Lock()
	p.subs[ch] = struct{}{}
	p.mu.Unlock()
	return ch, func() {
		p.mu.Lock()
		delete(p.subs, ch)
		p.mu.Unlock()
	}
}

func (p *testPlatform) publishLocked(app, typ string) {
	ev := deploy.Event{App: app, Type: typ, Time: time.Now()}
	if a := p.apps[app]; a != nil {
		ev.State = a.state
	}
	for ch := range p.subs {
		select {
		case ch <- ev:
		default:
		}
	}
}

func (p *testPlatform) liveLocked(a *testApp) int {
	n := 0
	for _, c := range a.instances {
		if !c.exited && !c.stopping {
			n++
		}
	}
	return n
}

// startLocked starts one instance on a free port.
func (p *testPlatform) startLocked(a *testApp) {
	if p.closed {
		return
	}
	port := testkit.FreePort(p.tb)
	a.seq++
	c := &child{id: fmt.Sprintf("%s.%d", a.name, a.seq), port: port, done: make(chan struct{})}
	c.cmd = exec.Command(os.Args[0])
	c.cmd.Env = append(os.Environ(), "FLOCK_BACKUP_CHILD=1", "PORT="+strconv.Itoa(port),
		"FLOCK_INSTANCE="+c.id, "FLOCK_CHILD_BOOT="+a.boot.String())
	if a.sick {
		c.cmd.Env = append(c.cmd.Env, "FLOCK_CHILD_SICK=1")
	}
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	out, err := c.cmd.StdoutPipe()
	if err != nil {
		return
	}
	c.execAt = time.Now()
	if err := c.cmd.Start(); err != nil {
		return
	}
	a.instances = append(a.instances, c)
	p.publishLocked(a.name, "instances")
	p.wg.Add(3)
	go func() { // stdout: when did it listen
		defer p.wg.Done()
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if ns, ok := strings.CutPrefix(sc.Text(), "LISTENING "); ok {
				n, _ := strconv.ParseInt(ns, 10, 64)
				p.mu.Lock()
				a.boots = append(a.boots, time.Unix(0, n).Sub(c.execAt))
				p.mu.Unlock()
			}
		}
	}()
	go func() { // waiter and supervisor
		defer p.wg.Done()
		_ = c.cmd.Wait()
		p.mu.Lock()
		c.exited, c.healthy = true, false
		stale, stopping := a.staleFor, c.stopping
		if stale > 0 && !stopping {
			c.healthy = true // the platform has not noticed yet
		}
		close(c.done)
		p.mu.Unlock()
		if !stopping {
			time.Sleep(stale)
		}
		p.mu.Lock()
		defer p.mu.Unlock()
		for i, x := range a.instances {
			if x == c {
				a.instances = append(a.instances[:i], a.instances[i+1:]...)
				break
			}
		}
		p.publishLocked(a.name, "instances")
		if stopping || (a.state != deploy.StateRunning && a.state != deploy.StateWaking) {
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			time.Sleep(a.restartDelay)
			p.mu.Lock()
			defer p.mu.Unlock()
			if (a.state == deploy.StateRunning || a.state == deploy.StateWaking) && p.liveLocked(a) < a.desired {
				p.startLocked(a)
			}
		}()
	}()
	go func() { // the platform's own health check
		defer p.wg.Done()
		t := time.NewTicker(p.checkEvery)
		defer t.Stop()
		for {
			select {
			case <-c.done:
				return
			case <-t.C:
			}
			ok := checkOnce(port, a.checkPath)
			p.mu.Lock()
			if !c.exited && ok != c.healthy {
				c.healthy = ok
				if ok && a.state == deploy.StateWaking {
					a.state = deploy.StateRunning
				}
				p.publishLocked(a.name, "instances")
			}
			p.mu.Unlock()
		}
	}()
}

// sleep puts the app to sleep as the scaler would: instances are taken
// out of rotation, drained (by the waker, as the router would be) and
// stopped. With stateFirst the state flips to sleeping before the
// instances stop, else after.
func (p *testPlatform) sleep(name string, stateFirst bool) {
	p.mu.Lock()
	a := p.apps[name]
	if stateFirst {
		a.state = deploy.StateSleeping
		p.publishLocked(name, "state")
	}
	var stop []*child
	var ins []deploy.Instance
	for _, c := range a.instances {
		c.stopping, c.healthy = true, false
		stop = append(stop, c)
		ins = append(ins, deploy.Instance{ID: c.id, Host: "127.0.0.1", Port: c.port})
	}
	p.publishLocked(name, "instances")
	drainer := p.drainer
	p.mu.Unlock()
	for i, c := range stop {
		if drainer != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = drainer.Drain(ctx, name, ins[i])
			cancel()
		}
		_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGTERM)
		<-c.done
	}
	p.mu.Lock()
	a.state = deploy.StateSleeping
	p.publishLocked(name, "state")
	p.mu.Unlock()
}

// crash kills every instance of the app without telling anyone.
func (p *testPlatform) crash(name string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.apps[name].instances {
		_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
	}
}

func (p *testPlatform) wakes(name string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.apps[name].wakes
}

func (p *testPlatform) fails(name string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.apps[name].fails...)
}

func (p *testPlatform) state(name string) deploy.State {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.apps[name].state
}

func (p *testPlatform) healthy(name string) int {
	a, _ := p.App(context.Background(), name)
	return a.HealthyCount()
}

// lastBoot is the exec → listening time of the app's latest instance.
func (p *testPlatform) lastBoot(name string) (time.Duration, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	b := p.apps[name].boots
	if len(b) == 0 {
		return 0, false
	}
	return b[len(b)-1], true
}

func (p *testPlatform) close() {
	p.mu.Lock()
	p.closed = true
	var dones []chan struct{}
	for _, a := range p.apps {
		a.state = deploy.StateStopped
		for _, c := range a.instances {
			c.stopping = true
			_ = syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
			dones = append(dones, c.done)
		}
	}
	p.mu.Unlock()
	for _, d := range dones {
		<-d
	}
	p.wg.Wait()
}

var _ Platform = (*testPlatform)(nil)
