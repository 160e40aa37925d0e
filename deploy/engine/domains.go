package engine

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/flock-paas/flock/deploy"

	bolt "go.etcd.io/bbolt"
)

// maxAddedDomains bounds the domains added to one app, as the
// descriptor's domains are bounded.
const maxAddedDomains = 100

// appDomains lists the hosts an app answers at besides its own: its
// current release's descriptor domains, then those added to it, each once.
// The router routes this list (deploy.App.Domains).
func appDomains(rec appRecord, rel deploy.Release) []string {
	out := slices.Clone(rel.Descriptor.Domains)
	for _, h := range rec.Domains {
		if !slices.Contains(out, h) {
			out = append(out, h)
		}
	}
	return out
}

// Domains lists an app's domains and where each comes from.
func (s *Service) Domains(ctx context.Context, app string) ([]deploy.Domain, error) {
	rec, err := s.store.app(app)
	if err != nil {
		return nil, fmt.Errorf("domains of %s: %w", app, err)
	}
	var desc []string
	if rec.Current != "" {
		rel, err := s.store.release(app, rec.Current)
		if err != nil {
			return nil, fmt.Errorf("domains of %s: %w", app, err)
		}
		desc = rel.Descriptor.Domains
	}
	out := []deploy.Domain{}
	for _, h := range desc {
		out = append(out, deploy.Domain{Host: h, Source: deploy.DomainFromDescriptor})
	}
	for _, h := range rec.Domains {
		if !slices.Contains(desc, h) {
			out = append(out, deploy.Domain{Host: h, Source: deploy.DomainAdded})
		}
	}
	return out, nil
}

// AddDomain makes app answer at host too, at once and without a deploy
// (the router follows the "domains" event), and keeps it in the store.
// host follows the descriptor's domains rules; a host that is another
// app's (its host, a domain of its descriptor or one added to it), the
// API's host, localhost or an IP literal is refused, naming the owner.
// Adding a domain the app has already is no change.
func (s *Service) AddDomain(ctx context.Context, app, host string) error {
	host = deploy.NormalizeHost(host)
	if err := deploy.CheckDomain(host); err != nil {
		return fmt.Errorf("add domain to %s: %w", app, err)
	}
	s.hosts.mu.Lock()
	defer s.hosts.mu.Unlock()
	owners, _, err := s.ownersLocked(app)
	if err != nil {
		return fmt.Errorf("add domain to %s: %w", app, err)
	}
	if owner, ok := owners[host]; ok {
		return fmt.Errorf("add domain to %s: %q is %s: %w", app, host, owner, deploy.ErrConflict)
	}
	if host == s.Host(app) {
		return fmt.Errorf("add domain to %s: %q is the app's own host already: %w", app, host, deploy.ErrInvalid)
	}
	added := false
	_, err = s.store.updateApp(app, false, func(r *appRecord) error {
		if slices.Contains(r.Domains, host) {
			return nil
		}
		if len(r.Domains) >= maxAddedDomains {
			return fmt.Errorf("an app may have at most %d added domains: %w", maxAddedDomains, deploy.ErrInvalid)
		}
		r.Domains, added = append(r.Domains, host), true
		return nil
	})
	if err != nil {
		return fmt.Errorf("add domain to %s: %w", app, err)
	}
	if added {
		s.publish(deploy.Event{App: app, Type: "domains", Message: "domain " + host + " added"})
	}
	return nil
}

// RemoveDomain stops app answering at a domain added to it. A domain of
// the descriptor is changed by a deploy, not here (ErrConflict says so);
// one the app does not have is ErrNotFound.
func (s *Service) RemoveDomain(ctx context.Context, app, host string) error {
	host = deploy.NormalizeHost(host)
	s.hosts.mu.Lock()
	defer s.hosts.mu.Unlock()
	removed := false
	rec, err := s.store.updateApp(app, false, func(r *appRecord) error {
		if i := slices.Index(r.Domains, host); i >= 0 {
			r.Domains, removed = slices.Delete(r.Domains, i, i+1), true
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("remove domain from %s: %w", app, err)
	}
	if !removed {
		if rel, err := s.currentRelease(app); err == nil && slices.Contains(rel.Descriptor.Domains, host) {
			return fmt.Errorf("remove domain from %s: %q comes from the app's descriptor (%s): remove it there and deploy: %w",
				app, host, rel.Descriptor.File, deploy.ErrConflict)
		}
		return fmt.Errorf("remove domain from %s: %q is not one of its domains: %w", app, host, deploy.ErrNotFound)
	}
	msg := "domain " + host + " removed"
	if rel, err := s.currentRelease(rec.Name); err == nil && slices.Contains(rel.Descriptor.Domains, host) {
		msg += " (the descriptor still lists it)"
	}
	s.publish(deploy.Event{App: app, Type: "domains", Message: msg})
	return nil
}

// Create makes an empty app: no release, nothing running, so that config
// vars and domains can be set before its first deploy, which then runs
// with them. The name follows deploy.CheckNewName; an app of that name,
// or a name whose host another app holds as a domain, is ErrConflict.
func (s *Service) Create(ctx context.Context, name string) (deploy.App, error) {
	if err := deploy.CheckNewName(name); err != nil {
		return deploy.App{}, fmt.Errorf("create: %w", err)
	}
	s.hosts.mu.Lock()
	err := s.checkHostsLocked(name, deploy.Descriptor{})
	if err == nil {
		err = s.store.createApp(name)
	}
	s.hosts.mu.Unlock()
	if err != nil {
		return deploy.App{}, fmt.Errorf("create %s: %w", name, err)
	}
	s.publish(deploy.Event{App: name, Type: "state", State: deploy.StateStopped, Message: "created"})
	return s.App(ctx, name)
}

// createApp stores a fresh app record; ErrConflict if the app exists.
func (s *Store) createApp(name string) error {
	err := s.db.Update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketApps).Get([]byte(name)) != nil {
			return fmt.Errorf("an app named %s exists already: %w", name, deploy.ErrConflict)
		}
		return put(tx, bucketApps, name, appRecord{Name: name, CreatedAt: time.Now().UTC()})
	})
	if err == nil {
		s.changed()
	}
	return err
}
