package web

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/flock-paas/flock/deploy"
)

// fakePlatform is an in-memory Platform: apps change at once and every
// change is told to subscribers, as the real Service does.
type fakePlatform struct {
	mu       sync.Mutex
	apps     map[string]*deploy.App
	releases map[string][]deploy.Release
	deploys  map[string][]deploy.Rollout
	subs     map[int]chan deploy.Event
	nextSub  int
	logs     string
	logsErr  error
	deployFn func(req deploy.DeployRequest, log io.Writer) (deploy.Release, error)
}

func newFake() *fakePlatform {
	return &fakePlatform{
		apps:     map[string]*deploy.App{},
		releases: map[string][]deploy.Release{},
		deploys:  map[string][]deploy.Rollout{},
		subs:     map[int]chan deploy.Event{},
		logs:     "hello from the app\nsecond line\n",
	}
}

// add puts a running app with n healthy instances and one release.
func (f *fakePlatform) add(name string, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.addLocked(name, n)
}

func (f *fakePlatform) addLocked(name string, n int) {
	now := time.Now()
	last := now.Add(-3 * time.Minute)
	a := &deploy.App{Name: name, URL: "http://" + name + ".localhost:8000", State: deploy.StateRunning,
		Desired: n, Release: "v1", Version: 1, Commit: "0123456789abcdef", LastRequestAt: &last,
		Idle: "15m0s", RequestRate: 1.5, SavedInstanceSeconds: 7200}
	a.Instances = instances(name, n)
	f.apps[name] = a
	started, finished := now.Add(-time.Minute), now.Add(-30*time.Second)
	f.releases[name] = []deploy.Release{{App: name, Name: "v1", Version: 1, Commit: a.Commit, Trigger: "cli", CreatedAt: started}}
	f.deploys[name] = []deploy.Rollout{{ID: name + "-1", App: name, Release: "v1", Commit: a.Commit, Trigger: "cli",
		Status: deploy.RolloutSucceeded, QueuedAt: started, StartedAt: &started, FinishedAt: &finished,
		Log: "-----> building " + name + "\n-----> v1 live\n"}}
}

func instances(name string, n int) []deploy.Instance {
	out := make([]deploy.Instance, n)
	for i := range out {
		out[i] = deploy.Instance{ID: fmt.Sprintf("%s-%d", name, i), Release: "v1", Host: "127.0.0.1",
			Port: 20000 + i, Ports: []int{20000 + i}, Healthy: true, StartedAt: time.Now().Add(-time.Hour)}
	}
	return out
}

// emit tells every subscriber; like the Service it never blocks.
func (f *fakePlatform) emit(ev deploy.Event) {
	ev.Time = time.Now()
	for _, ch := range f.subs {
		select {
		case ch <- ev:
		default:
		}
	}
}

// Emit is emit for tests that hold no lock.
func (f *fakePlatform) Emit(ev deploy.Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.emit(ev)
}

func (f *fakePlatform) subscribers() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.subs)
}

func (f *fakePlatform) get(name string) (*deploy.App, error) {
	a := f.apps[name]
	if a == nil {
		return nil, fmt.Errorf("app %s: %w", name, deploy.ErrNotFound)
	}
	return a, nil
}

func (f *fakePlatform) Apps(ctx context.Context) ([]deploy.App, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]deploy.App, 0, len(f.apps))
	for _, a := range f.apps {
		out = append(out, *a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (f *fakePlatform) App(ctx context.Context, name string) (deploy.App, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a, err := f.get(name)
	if err != nil {
		return deploy.App{}, err
	}
	return *a, nil
}

func (f *fakePlatform) Releases(ctx context.Context, name string) ([]deploy.Release, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.get(name); err != nil {
		return nil, err
	}
	return append([]deploy.Release(nil), f.releases[name]...), nil
}

func (f *fakePlatform) Deploys(ctx context.Context, name string) ([]deploy.Rollout, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.get(name); err != nil {
		return nil, err
	}
	// Like the Service: newest first, without logs.
	out := make([]deploy.Rollout, 0, len(f.deploys[name]))
	for i := len(f.deploys[name]) - 1; i >= 0; i-- {
		d := f.deploys[name][i]
		d.Log = ""
		out = append(out, d)
	}
	return out, nil
}

func (f *fakePlatform) DeployByID(ctx context.Context, id string) (deploy.Rollout, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ds := range f.deploys {
		for _, d := range ds {
			if d.ID == id {
				return d, nil
			}
		}
	}
	return deploy.Rollout{}, fmt.Errorf("deploy %s: %w", id, deploy.ErrNotFound)
}

func (f *fakePlatform) FollowDeploy(ctx context.Context, id string, w io.Writer) error {
	d, err := f.DeployByID(ctx, id)
	if err != nil {
		return err
	}
	_, err = io.WriteString(w, d.Log)
	return err
}

func (f *fakePlatform) Deploy(ctx context.Context, req deploy.DeployRequest, log io.Writer) (deploy.Release, error) {
	if f.deployFn != nil {
		return f.deployFn(req, log)
	}
	b, err := os.ReadFile(filepath.Join(req.Dir, "package.json"))
	if err != nil {
		return deploy.Release{}, fmt.Errorf("read descriptor: %w", deploy.ErrInvalid)
	}
	name := req.App
	if name == "" {
		name = strings.TrimSpace(string(b))
	}
	fmt.Fprintf(log, "-----> building %s\n", name)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.addLocked(name, 1)
	f.emit(deploy.Event{App: name, Type: "deploy", Message: "v1 live"})
	fmt.Fprintf(log, "-----> v1 live\n")
	return deploy.Release{App: name, Name: "v1", Version: 1, Commit: req.Commit}, nil
}

func (f *fakePlatform) Rollback(ctx context.Context, name, release string, log io.Writer) (deploy.Release, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a, err := f.get(name)
	if err != nil {
		return deploy.Release{}, err
	}
	for _, r := range f.releases[name] {
		if r.Name == release || release == "" {
			fmt.Fprintf(log, "-----> rolling back to %s\n", r.Name)
			nr := r
			nr.Version = len(f.releases[name]) + 1
			nr.Name = fmt.Sprintf("v%d", nr.Version)
			nr.Trigger = "rollback to " + r.Name
			f.releases[name] = append(f.releases[name], nr)
			a.Release = nr.Name
			f.emit(deploy.Event{App: name, Type: "release"})
			return nr, nil
		}
	}
	return deploy.Release{}, fmt.Errorf("release %s: %w", release, deploy.ErrNotFound)
}

func (f *fakePlatform) ScaleProcess(ctx context.Context, name, process string, n int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	a, err := f.get(name)
	if err != nil {
		return err
	}
	for i := range a.Processes {
		if a.Processes[i].Type == process {
			a.Processes[i].Desired = n
			return nil
		}
	}
	return fmt.Errorf("scale %s: no process type %q: %w", name, process, deploy.ErrInvalid)
}

func (f *fakePlatform) Scale(ctx context.Context, name string, n int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	a, err := f.get(name)
	if err != nil {
		return err
	}
	a.Desired, a.Instances, a.State = n, instances(name, n), deploy.StateRunning
	if n == 0 {
		a.State = deploy.StateStopped
	}
	f.emit(deploy.Event{App: name, Type: "instances", State: a.State, Message: fmt.Sprintf("scaled to %d", n)})
	return nil
}

func (f *fakePlatform) Sleep(ctx context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	a, err := f.get(name)
	if err != nil {
		return err
	}
	now := time.Now()
	a.State, a.Instances, a.AsleepSince = deploy.StateSleeping, nil, &now
	f.emit(deploy.Event{App: name, Type: "state", State: a.State})
	return nil
}

func (f *fakePlatform) Wake(ctx context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	a, err := f.get(name)
	if err != nil {
		return err
	}
	if a.State == deploy.StateRunning {
		return fmt.Errorf("wake %s: already awake: %w", name, deploy.ErrConflict)
	}
	a.State, a.Instances, a.AsleepSince = deploy.StateRunning, instances(name, a.Desired), nil
	f.emit(deploy.Event{App: name, Type: "state", State: a.State})
	return nil
}

func (f *fakePlatform) Destroy(ctx context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.get(name); err != nil {
		return err
	}
	delete(f.apps, name)
	f.emit(deploy.Event{App: name, Type: "destroyed"})
	return nil
}

func (f *fakePlatform) Logs(ctx context.Context, name string, follow bool, w io.Writer) error {
	f.mu.Lock()
	logs, lerr := f.logs, f.logsErr
	f.mu.Unlock()
	if lerr != nil {
		return lerr
	}
	for _, l := range strings.SplitAfter(logs, "\n") {
		if _, err := io.WriteString(w, l); err != nil {
			return err
		}
	}
	if follow {
		<-ctx.Done()
	}
	return nil
}

func (f *fakePlatform) Subscribe() (<-chan deploy.Event, func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := f.nextSub
	f.nextSub++
	ch := make(chan deploy.Event, 64)
	f.subs[id] = ch
	return ch, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		delete(f.subs, id)
	}
}

var _ Platform = (*fakePlatform)(nil)
