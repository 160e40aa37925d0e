package engine

import (
	"fmt"
	"strings"
	"sync"

	"github.com/flock-paas/flock/deploy"
)

// hostClaims holds the hosts of rollouts in progress, by app: two apps
// deploying at once must not both take a host that neither serves yet.
type hostClaims struct {
	mu    sync.Mutex
	byApp map[string][]string // app → its host, then its domains
}

// Host is the host an app answers at: <app>.<domain>.
func (s *Service) Host(app string) string { return deploy.AppHost(app, s.cfg.Domain) }

// hostsOf lists the hosts an app with descriptor d answers at: its own
// host first, then its domains.
func (s *Service) hostsOf(app string, d deploy.Descriptor) []string {
	return d.Hosts(app, s.cfg.Domain)
}

// checkHosts refuses a descriptor whose domains belong to someone else: an
// app's host or domain, the API's host; and a new app whose own host is
// already another app's domain. The error names the owner. A host belongs
// to one app, so an app can never take another's traffic.
func (s *Service) checkHosts(app string, d deploy.Descriptor) error {
	s.hosts.mu.Lock()
	defer s.hosts.mu.Unlock()
	return s.checkHostsLocked(app, d)
}

func (s *Service) checkHostsLocked(app string, d deploy.Descriptor) error {
	owners, isNew, err := s.ownersLocked(app)
	if err != nil {
		return fmt.Errorf("check domains of %s: %w", app, err)
	}
	key := "flock.domains"
	if d.File == "flock.json" {
		key = "domains"
	}
	for i, h := range d.Domains {
		if owner, ok := owners[h]; ok {
			return &deploy.DescriptorError{File: d.File, Key: fmt.Sprintf("%s[%d]", key, i), Rule: fmt.Sprintf("%q is %s", h, owner)}
		}
	}
	own := s.Host(app)
	if owner, ok := owners[own]; ok && isNew {
		return fmt.Errorf("app %s: its host %q is %s: %w", app, own, owner, deploy.ErrConflict)
	}
	return nil
}

// ownersLocked maps every host taken by an app other than app (its host,
// its descriptor's domains, the domains added to it, the hosts of its
// rollout in progress) and the API's hosts to what the host is to its
// owner. isNew reports that app has no release yet. The caller holds
// s.hosts.mu.
func (s *Service) ownersLocked(app string) (owners map[string]string, isNew bool, err error) {
	recs, rels, err := s.store.appsWithCurrent()
	if err != nil {
		return nil, false, err
	}
	owners = map[string]string{}
	isNew = true
	for i, rec := range recs {
		if rec.Name == app {
			isNew = rec.Current == ""
			continue
		}
		for _, h := range rels[i].Descriptor.Domains {
			owners[h] = "app " + rec.Name + "'s domain"
		}
		for _, h := range rec.Domains {
			owners[h] = "app " + rec.Name + "'s domain"
		}
	}
	for other, hosts := range s.hosts.byApp {
		if other == app {
			continue
		}
		for _, h := range hosts[1:] {
			owners[h] = "app " + other + "'s domain (being deployed)"
		}
		owners[hosts[0]] = "app " + other + "'s host"
	}
	for _, rec := range recs {
		if rec.Name != app {
			owners[s.Host(rec.Name)] = "app " + rec.Name + "'s host"
		}
	}
	for _, h := range s.cfg.APIHosts {
		owners[strings.ToLower(h)] = "the API's host"
	}
	return owners, isNew, nil
}

// claimHosts checks an app's hosts as checkHosts does and holds them until
// release is called, at the end of the rollout: a rollout of another app
// that starts meanwhile sees them as taken.
func (s *Service) claimHosts(app string, d deploy.Descriptor) (release func(), err error) {
	s.hosts.mu.Lock()
	defer s.hosts.mu.Unlock()
	if err := s.checkHostsLocked(app, d); err != nil {
		return nil, err
	}
	if s.hosts.byApp == nil {
		s.hosts.byApp = map[string][]string{}
	}
	// An app's rollouts run one at a time (its deploy queue).
	s.hosts.byApp[app] = s.hostsOf(app, d)
	return func() {
		s.hosts.mu.Lock()
		defer s.hosts.mu.Unlock()
		delete(s.hosts.byApp, app)
	}, nil
}
