// Package local is Flock's embedded scheduler: it runs each instance of an
// app as a supervised process group on this machine, in a sandbox folder
// with its own ports, checks its health, restarts it when it fails, keeps
// its output for `flock logs`, and, where the host allows, runs it under a
// uid of its own and within its cpus, mem and pids limits (cgroup v1 or v2).
package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/flock-paas/flock/deploy"
)

// Config configures the embedded scheduler.
type Config struct {
	// Dir holds the unpacked releases, the instances' sandboxes and logs,
	// and the state file from which the next Flock adopts the instances
	// after a crash or a kill -9. Required.
	Dir string
	// Host is the address instances listen on (their HOST) and are reached
	// at. Default 127.0.0.1.
	Host string
	// Unpack extracts a slug (.tar.gz) into an empty folder. cmd/flock
	// passes the builder's; required to deploy a Spec with a SlugPath.
	Unpack func(slugPath, dir string) error
	// Drainer, when set, takes an instance out of rotation before it is
	// stopped by a rollout or a scale-down.
	Drainer deploy.Drainer
	// StopGrace is how long a stopped instance gets between SIGTERM and
	// SIGKILL. Default 10s.
	StopGrace time.Duration
	// Logger receives what the scheduler does on its own (restarts,
	// cleanup). Default slog.Default().
	Logger *slog.Logger
}

// Scheduler runs apps as supervised local processes. Build it with New;
// Deploy, Scale and Remove work as soon as New returns (supervision does
// not wait for Run), and Run stops every instance when its context ends.
type Scheduler struct {
	cfg    Config
	log    *slog.Logger
	prober *prober
	cg     *cgroups
	boxes  *boxes // apps' uids; nil when Flock is not root

	// Tunables, fixed by New; tests shorten them.
	backoffMin, backoffMax, resetAfter time.Duration
	outputMax                          int64 // output.log is emptied once read past this size
	pidsMax                            int   // tasks per instance (cgroup pids limit)

	mu     sync.Mutex
	apps   map[string]*app
	logs   map[string]*appLog
	seq    uint64
	closed bool
	ran    bool
	specs  map[string]deploy.Spec // by "<app>/<release>": what state.json keeps to restart adopted instances
	detach bool                   // Run leaves the instances running (Detach)

	stateMu sync.Mutex

	changes chan string
	pendMu  sync.Mutex
	pending []string // apps changed but not yet delivered, in order
	pendSet map[string]bool
	wake    chan struct{}
	done    chan struct{} // closed when Run returns
}

// app is the scheduler's view of one app.
type app struct {
	name      string
	current   *release // the release Scale applies to; nil until deployed
	desired   int
	instances map[string]*instance
	op        chan struct{} // one Deploy, Scale or Remove at a time
	removed   bool
}

// New validates cfg, adopts the instances a previous Flock left running on
// the same Dir (see adopt), and finds out whether memory limits can be
// enforced. It starts no process; adopted instances are supervised (probed,
// restarted when they die) from the moment New returns, as deployed ones.
func New(cfg Config) (*Scheduler, error) {
	if cfg.Dir == "" {
		return nil, fmt.Errorf("local scheduler: Dir is required")
	}
	dir, err := filepath.Abs(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("local scheduler: %w", err)
	}
	cfg.Dir = dir
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	if net.ParseIP(cfg.Host) == nil {
		return nil, fmt.Errorf("local scheduler: host %q is not an IP address", cfg.Host)
	}
	if cfg.StopGrace <= 0 {
		cfg.StopGrace = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if err := os.MkdirAll(filepath.Join(cfg.Dir, "apps"), 0o755); err != nil {
		return nil, fmt.Errorf("local scheduler: %w", err)
	}
	s := &Scheduler{
		cfg: cfg, log: cfg.Logger, prober: newProber(probeHost(cfg.Host)),
		backoffMin: 100 * time.Millisecond, backoffMax: 10 * time.Second, resetAfter: 10 * time.Second, outputMax: 8 << 20,
		pidsMax: pidsLimit,
		apps:    map[string]*app{}, logs: map[string]*appLog{}, specs: map[string]deploy.Spec{},
		changes: make(chan string, 64), pendSet: map[string]bool{},
		wake: make(chan struct{}, 1), done: make(chan struct{}),
	}
	s.cg = detectCgroups()
	if !s.cg.enforcesMemory() {
		s.log.Info("memory limits not enforced", "reason", s.cg.reason)
	}
	if err := s.setupBoxes(); err != nil {
		return nil, fmt.Errorf("local scheduler: %w", err)
	}
	if err := s.adopt(); err != nil {
		return nil, fmt.Errorf("local scheduler: %w", err)
	}
	return s, nil
}

// probeHost is where checks and the router reach an instance: the
// configured host, or loopback when instances listen on every address.
func probeHost(host string) string {
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		return "127.0.0.1"
	}
	return host
}

// MemoryEnforced reports whether instances run with their "mem" as a hard
// memory limit (a cgroup, v1 or v2); otherwise "mem" is advisory.
func (s *Scheduler) MemoryEnforced() bool { return s.cg.enforcesMemory() }

// Run delivers Changes until ctx ends, then stops every instance
// (SIGTERM, then SIGKILL after StopGrace), adopted ones too, and returns:
// stopping Flock stops its apps; only a Flock that dies, or was told to
// Detach, leaves them running, for the next one to adopt. Supervision itself
// runs from the moment an instance is started, so Deploy and Scale may
// come before Run (their changes wait for it); after Run returns they fail.
func (s *Scheduler) Run(ctx context.Context) error {
	s.mu.Lock()
	if s.ran {
		s.mu.Unlock()
		return errors.New("local scheduler: Run called twice")
	}
	s.ran = true
	s.mu.Unlock()
	go s.forward()
	<-ctx.Done()
	s.mu.Lock()
	s.closed = true
	apps := make([]*app, 0, len(s.apps))
	for _, a := range s.apps {
		apps = append(apps, a)
	}
	s.mu.Unlock()
	// An operation that took its app's lock before the close (a Deploy of
	// the engine's reconcile, say) may still start instances or unpack a
	// slug: wait for it, so that none is left running, nor a file written,
	// after Run returns.
	release := awaitOps(apps, opsGrace)
	// An operation still waiting for a lock then finds the scheduler
	// closed.
	defer release()
	s.mu.Lock()
	if s.detach {
		s.mu.Unlock()
		s.saveState()
		s.closeLogs()
		close(s.done)
		return nil
	}
	var all []*instance
	for _, a := range s.apps {
		for _, in := range a.instances {
			all = append(all, in)
		}
	}
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, in := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.retire(context.Background(), in, false)
		}()
	}
	wg.Wait()
	s.closeLogs()
	os.Remove(s.statePath())
	close(s.done)
	return nil
}

// Detach makes Run leave every instance running when its context ends,
// with state.json up to date, for the next Scheduler on the same Dir to
// adopt: how Flock exits for an upgrade without stopping its apps. When
// Run returns, this Scheduler lets go of them: no more probes, restarts,
// output tailing or writes of state.json, which are the next one's.
func (s *Scheduler) Detach() {
	s.mu.Lock()
	s.detach = true
	s.mu.Unlock()
}

func (s *Scheduler) closeLogs() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, l := range s.logs {
		l.close()
	}
}

var errClosed = errors.New("scheduler stopped")

// Changes delivers the name of an app whenever its instances change. A
// name waiting to be read is not queued twice, and one taken off the queue
// is queued again by the next change: a slow reader misses repeats, never
// the last change.
func (s *Scheduler) Changes() <-chan string { return s.changes }

func (s *Scheduler) notify(name string) {
	s.pendMu.Lock()
	if !s.pendSet[name] {
		s.pendSet[name] = true
		s.pending = append(s.pending, name)
	}
	s.pendMu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// forward moves pending names into the changes channel while Run runs;
// it is the only sender, so notify never blocks. Run starts it, so that a
// Scheduler that is never run leaves no goroutine behind.
func (s *Scheduler) forward() {
	for {
		s.pendMu.Lock()
		var name string
		if len(s.pending) > 0 {
			name = s.pending[0]
			s.pending = s.pending[1:]
			delete(s.pendSet, name)
		}
		s.pendMu.Unlock()
		if name == "" {
			select {
			case <-s.wake:
				continue
			case <-s.done:
				return
			}
		}
		select {
		case s.changes <- name:
		case <-s.done:
			return
		}
	}
}

// Instances lists the app's instances of every release, in the order they
// were created. An app the scheduler does not run has none.
func (s *Scheduler) Instances(ctx context.Context, name string) ([]deploy.Instance, error) {
	if !deploy.ValidName(name) {
		return nil, fmt.Errorf("instances %q: %w", name, deploy.ErrInvalid)
	}
	s.mu.Lock()
	var list []*instance
	if a := s.apps[name]; a != nil {
		for _, in := range a.instances {
			list = append(list, in)
		}
	}
	s.mu.Unlock()
	sort.Slice(list, func(i, j int) bool { return list[i].seq < list[j].seq })
	out := make([]deploy.Instance, 0, len(list))
	for _, in := range list {
		out = append(out, in.snapshot())
	}
	return out, nil
}

func (in *instance) snapshot() deploy.Instance {
	in.mu.Lock()
	defer in.mu.Unlock()
	d := deploy.Instance{
		ID: in.id, Release: in.rel.name, Host: in.s.prober.host,
		Ports: append([]int{}, in.ports...), Healthy: in.healthy, StartedAt: in.startedAt,
		LastExit: in.lastExit, LastOutput: in.lastRunOut,
	}
	if len(in.ports) > 0 {
		d.Port = in.ports[0]
	}
	return d
}

// opsGrace bounds how long Run waits for operations in flight when it
// stops; they see their context end and return well within it.
const opsGrace = 10 * time.Second

// awaitOps takes the operation lock of every app, waiting up to grace in
// all for operations in flight, and returns what gives back the locks it
// took. The scheduler is closed by then, so an operation that takes a
// lock afterwards sees that and returns errClosed.
func awaitOps(apps []*app, grace time.Duration) (release func()) {
	t := time.NewTimer(grace)
	defer t.Stop()
	var held []*app
	release = func() {
		for _, a := range held {
			a.unlock()
		}
	}
	for _, a := range apps {
		select {
		case a.op <- struct{}{}:
			held = append(held, a)
		case <-t.C:
			return release
		}
	}
	return release
}

// lock takes the app's operation lock, creating the app if create is set.
// It returns nil (and no error) for an unknown app when create is not set.
func (s *Scheduler) lock(ctx context.Context, name string, create bool) (*app, error) {
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return nil, errClosed
		}
		a := s.apps[name]
		if a == nil && create {
			a = &app{name: name, instances: map[string]*instance{}, op: make(chan struct{}, 1)}
			s.apps[name] = a
		}
		s.mu.Unlock()
		if a == nil {
			return nil, nil
		}
		select {
		case a.op <- struct{}{}:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		s.mu.Lock()
		gone := a.removed || s.closed
		s.mu.Unlock()
		if !gone {
			return a, nil
		}
		<-a.op // removed meanwhile: look again
	}
}

func (a *app) unlock() { <-a.op }

// logf writes a progress line of a deploy.
func logf(w io.Writer, format string, args ...any) {
	fmt.Fprintf(w, format+"\n", args...)
}

var _ deploy.Scheduler = (*Scheduler)(nil)

// isClosed reports whether Run has begun to stop.
func (s *Scheduler) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}
