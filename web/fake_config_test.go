package web

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"

	"github.com/flock-paas/flock/deploy"
)

// The fake's config vars and domains: kept on the app, changed at once.
// The API's own tests of them run the real engine (config_test.go).

func (f *fakePlatform) Config(ctx context.Context, name string) (map[string]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.get(name); err != nil {
		return nil, err
	}
	return map[string]string{}, nil
}

func (f *fakePlatform) Domains(ctx context.Context, name string) ([]deploy.Domain, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a, err := f.get(name)
	if err != nil {
		return nil, err
	}
	out := []deploy.Domain{}
	for _, h := range a.Domains {
		out = append(out, deploy.Domain{Host: h, Source: deploy.DomainAdded})
	}
	return out, nil
}

func (f *fakePlatform) Create(ctx context.Context, name string) (deploy.App, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.apps[name]; ok {
		return deploy.App{}, fmt.Errorf("create %s: %w", name, deploy.ErrConflict)
	}
	a := &deploy.App{Name: name, State: deploy.StateStopped, Instances: []deploy.Instance{}}
	f.apps[name] = a
	return *a, nil
}

func (f *fakePlatform) SetConfig(ctx context.Context, name string, patch map[string]*string, log io.Writer) (deploy.Release, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	a, err := f.get(name)
	if err != nil {
		return deploy.Release{}, err
	}
	keys := map[string]bool{}
	for _, k := range a.ConfigKeys {
		keys[k] = true
	}
	for k, v := range patch {
		keys[k] = v != nil
	}
	a.ConfigKeys = nil
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		if keys[k] {
			a.ConfigKeys = append(a.ConfigKeys, k)
		}
	}
	return deploy.Release{}, nil
}

func (f *fakePlatform) AddDomain(ctx context.Context, name, host string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	a, err := f.get(name)
	if err != nil {
		return err
	}
	a.Domains = append(a.Domains, host)
	return nil
}

func (f *fakePlatform) RemoveDomain(ctx context.Context, name, host string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	a, err := f.get(name)
	if err != nil {
		return err
	}
	a.Domains = slices.DeleteFunc(a.Domains, func(h string) bool { return h == host })
	return nil
}
