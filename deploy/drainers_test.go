package deploy_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/flock-paas/flock/deploy"
)

// TestDrainersDrainEveryPath: both paths to an instance (HAProxy's, then
// the waker's) drain, in order, even when the first fails; the first
// error is the one returned.
func TestDrainersDrainEveryPath(t *testing.T) {
	errRouter, errWaker := errors.New("router"), errors.New("waker")
	tests := []struct {
		name       string
		errs       []error
		want       error
		wantCalled []string
	}{
		{"both drain", []error{nil, nil}, nil, []string{"router", "waker"}},
		{"the router fails, the waker still drains", []error{errRouter, nil}, errRouter, []string{"router", "waker"}},
		{"the waker fails", []error{nil, errWaker}, errWaker, []string{"router", "waker"}},
		{"both fail: the first error", []error{errRouter, errWaker}, errRouter, []string{"router", "waker"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var called []string
			path := func(name string, err error) deploy.Drainer {
				return deploy.DrainFunc(func(context.Context, string, deploy.Instance) error {
					called = append(called, name)
					return err
				})
			}
			ds := deploy.Drainers{path("router", tt.errs[0]), path("waker", tt.errs[1])}
			if err := ds.Drain(context.Background(), "web", deploy.Instance{ID: "web.v1.1"}); !errors.Is(err, tt.want) || (tt.want == nil && err != nil) {
				t.Errorf("Drain = %v, want %v", err, tt.want)
			}
			if !slices.Equal(called, tt.wantCalled) {
				t.Errorf("drained through %v, want %v", called, tt.wantCalled)
			}
		})
	}
}
