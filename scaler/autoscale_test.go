package scaler

import (
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy"
)

// servers returns app a's rows with one UP server per scur value, plus the
// waker and the BACKEND row.
func servers(scur ...int64) []Row {
	rows := []Row{waker()}
	var total int64
	for i, s := range scur {
		rows = append(rows, srv("task"+string(rune('a'+i)), s, "UP"))
		total += s
	}
	return append(rows, be(1, total))
}

func TestAutoscale(t *testing.T) {
	scaled := func(a *deploy.App) { a.Desired = 3 }
	tests := []struct {
		name     string
		desired  int
		min, max *int
		cfg      Config
		steps    []step
	}{
		{
			name: "all overloaded adds a step", desired: 2, max: ptr(10),
			steps: []step{
				{rows: servers(10, 12)},
				{after: 2 * time.Minute, rows: servers(10, 12), want: []string{"scale a 4"}},
			},
		},
		{
			name: "9 of 10 overloaded adds a step", desired: 10, max: ptr(20),
			steps: []step{
				{rows: servers(10, 10, 10, 10, 10, 10, 10, 10, 10, 0)},
				{after: 2 * time.Minute, rows: servers(10, 10, 10, 10, 10, 10, 10, 10, 10, 0), want: []string{"scale a 12"}},
			},
		},
		{
			name: "8 of 10 overloaded changes nothing", desired: 10, max: ptr(20),
			steps: []step{
				{rows: servers(10, 10, 10, 10, 10, 10, 10, 10, 0, 0)},
				{after: 2 * time.Minute, rows: servers(10, 10, 10, 10, 10, 10, 10, 10, 0, 0)},
			},
		},
		{
			name: "capped at maxInstances", desired: 4, max: ptr(5),
			steps: []step{
				{rows: servers(30, 30, 30, 30)},
				{after: 2 * time.Minute, rows: servers(30, 30, 30, 30), want: []string{"scale a 5"}},
				{after: 2 * time.Minute, rows: servers(30, 30, 30, 30, 30)},
			},
		},
		{
			name: "half overloaded removes a step", desired: 4, max: ptr(10),
			steps: []step{
				{rows: servers(10, 10, 0, 0)},
				{after: 2 * time.Minute, rows: servers(10, 10, 0, 0), want: []string{"scale a 2"}},
			},
		},
		{
			name: "floored at minInstances", desired: 4, min: ptr(3), max: ptr(10),
			steps: []step{
				{rows: servers(0, 0, 0, 0)},
				{after: 2 * time.Minute, rows: servers(0, 0, 0, 0), want: []string{"scale a 3"}},
				{after: 2 * time.Minute, rows: servers(0, 0, 0)},
			},
		},
		{
			name: "never below one instance: zero is sleeping's job", desired: 2, min: ptr(0), max: ptr(10),
			steps: []step{
				{rows: servers(0, 0)},
				{after: 2 * time.Minute, rows: servers(0, 0), want: []string{"scale a 1"}},
				{after: 2 * time.Minute, rows: servers(0)},
			},
		},
		{
			name: "cool-down after a change", desired: 2, max: ptr(10),
			steps: []step{
				{rows: servers(10, 10)},
				{after: 30 * time.Second, rows: servers(10, 10)}, // first sight starts a cool-down
				{after: 90 * time.Second, rows: servers(10, 10), want: []string{"scale a 4"}},
				{after: 30 * time.Second, rows: servers(10, 10, 10, 10)},
				{after: 31 * time.Second, rows: servers(10, 10, 10, 10), want: []string{"scale a 6"}},
			},
		},
		{
			name: "a change by hand starts a cool-down", desired: 2, max: ptr(10),
			steps: []step{
				{rows: servers(10, 10)},
				{after: 2 * time.Minute, rows: servers(10, 10, 10), app: scaled},
				{after: time.Minute, rows: servers(10, 10, 10), want: []string{"scale a 5"}},
			},
		},
		{
			name: "drained, down and backup servers do not count", desired: 2, max: ptr(10),
			steps: []step{
				{rows: []Row{srv("a", 20, "UP 1/3"), srv("b", 0, "DRAIN"), srv("c", 0, "DOWN"), srv("d", 0, "MAINT"), waker(), be(1, 20)}},
				{after: 2 * time.Minute, rows: []Row{srv("a", 20, "UP 1/3"), srv("b", 0, "DRAIN"), srv("c", 0, "DOWN"), srv("d", 0, "MAINT"), waker(), be(1, 20)}, want: []string{"scale a 4"}},
			},
		},
		{
			name: "request rate per instance", desired: 1, max: ptr(4), cfg: Config{TargetRate: 5},
			steps: []step{
				{rows: []Row{srv("a", 0, "UP"), be(0, 0)}},
				{after: 2 * time.Minute, rows: []Row{func() Row { r := srv("a", 0, "UP"); r.Stot = 1200; return r }(), be(1200, 0)}, want: []string{"scale a 3"}},
			},
		},
		{
			name: "no maxInstances: no autoscaling", desired: 1,
			steps: []step{
				{rows: servers(50)},
				{after: 2 * time.Minute, rows: servers(50)},
			},
		},
		{
			name: "not while waking", desired: 1, max: ptr(4),
			steps: []step{
				{rows: servers(50), app: state(deploy.StateWaking)},
				{after: 2 * time.Minute, rows: servers(50)},
			},
		},
		{
			name: "no running server: nothing to measure", desired: 2, max: ptr(4),
			steps: []step{
				{rows: []Row{waker(), be(1, 0)}},
				{after: 2 * time.Minute, rows: []Row{waker(), be(1, 0)}},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app := runningApp()
			app.IdleTimeout = 0
			app.Desired = tt.desired
			app.Descriptor.MinInstances, app.Descriptor.MaxInstances = tt.min, tt.max
			runSteps(t, tt.cfg, app, tt.steps)
		})
	}
}
