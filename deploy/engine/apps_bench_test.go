package engine

import (
	"context"
	"fmt"
	"io"
	"testing"

	"github.com/flock-paas/flock/deploy"
)

// nopSched and nopBuilder stand in for the parts Apps does not measure.
type nopSched struct{}

func (nopSched) Run(ctx context.Context) error                                { return nil }
func (nopSched) Deploy(context.Context, deploy.Spec, io.Writer) error         { return nil }
func (nopSched) Scale(context.Context, string, int) error                     { return nil }
func (nopSched) Remove(context.Context, string) error                         { return nil }
func (nopSched) Instances(context.Context, string) ([]deploy.Instance, error) { return nil, nil }
func (nopSched) Logs(context.Context, string, bool, io.Writer) error          { return nil }
func (nopSched) Changes() <-chan string                                       { return nil }

type nopBuilder struct{}

func (nopBuilder) Build(context.Context, string, string, string, string, io.Writer) (string, string, error) {
	return "", "", nil
}

// BenchmarkApps lists 50 deployed apps. Apps runs when the router starts
// following the engine and every few seconds after (its resync), and on
// every scaler tick; each event reads one app (App) for its snapshot.
func BenchmarkApps(b *testing.B) {
	st, err := OpenStore(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	for i := range 50 {
		name := fmt.Sprintf("app%d", i)
		if _, err := st.updateApp(name, true, func(r *appRecord) error { r.Current = "v1"; r.Desired = 1; return nil }); err != nil {
			b.Fatal(err)
		}
		err := st.putRelease(deploy.Release{App: name, Name: "v1", Version: 1, Env: map[string]string{"A": "b"},
			Descriptor: deploy.Descriptor{Name: name, Instances: 1, Checks: []deploy.Check{{Path: "/", IntervalSeconds: 10}}, Domains: []string{"x.example"}}})
		if err != nil {
			b.Fatal(err)
		}
	}
	s, err := New(Config{}, st, nopSched{}, nopBuilder{})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Apps(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}
