package router

import (
	"fmt"
	"hash/fnv"
	"net"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/flock-paas/flock/deploy"
	"github.com/haproxytech/config-parser/v5/params"

	"github.com/flock-paas/flock/router/hap"
)

// model is the routing state that HAProxy should have: one backend per app,
// sorted by app name. It is built from deploy.Apps by build and rendered by
// render; the runtime diff compares two models.
type model struct {
	backends []backend
	// hosts maps every lower-cased host to its backend name.
	hosts map[string]string
	// errs holds, per app, why some of its routing was refused.
	errs map[string]string
}

// backend is one app's HAProxy backend.
type backend struct {
	App     string
	Name    string   // "app_<app>"
	Hosts   []string // lower-case, sorted
	Check   check
	Servers []server // sorted by name
	// Redirect: HTTP may move to HTTPS once the host's certificate is
	// publicly trusted (deploy.Descriptor.RedirectsHTTP).
	Redirect bool
}

// check is the health check HAProxy runs against every server of a backend.
type check struct {
	Path    string // "" means a TCP check
	Inter   int    // seconds
	Timeout int    // seconds
	Fall    int
	PortIdx int // index into the instance's ports
}

// server is one instance as a HAProxy server.
type server struct {
	Name      string // from the instance ID, safe for a config line
	Addr      string // host:port
	CheckPort int    // 0: the server's port
}

var (
	hostRE     = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$`)
	serverRE   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)
	addrHostRE = regexp.MustCompile(`^[A-Za-z0-9:]([A-Za-z0-9.:-]{0,252})$`)
	dirRE      = regexp.MustCompile(`^/[A-Za-z0-9/._+-]*$`)
)

// validHost reports whether h is a lower-case host name that is safe in the
// map file: dot-separated DNS labels, at most 253 characters.
func validHost(h string) bool { return len(h) <= 253 && hostRE.MatchString(h) }

// serverName gives the HAProxy server name of an instance: its ID and port
// when the ID is a safe name, else a hash of ID, host and port, so that an
// odd ID can never break a line or a runtime command. The port is part of
// the name: an instance restarted under the same ID on a new port is a new
// server, never an old one with a changed address.
func serverName(in deploy.Instance) string {
	if serverRE.MatchString(in.ID) {
		return in.ID + "_" + strconv.Itoa(in.Port)
	}
	h := fnv.New64a()
	h.Write([]byte(in.ID))
	h.Write([]byte{0})
	h.Write([]byte(in.Host + ":" + strconv.Itoa(in.Port)))
	return fmt.Sprintf("i%016x", h.Sum64())
}

// serverAddr returns the instance's host:port, or an error when either
// part could break a config line.
func serverAddr(host string, port int) (string, error) {
	if port <= 0 || port > 65535 {
		return "", fmt.Errorf("port %d out of range", port)
	}
	if !addrHostRE.MatchString(host) {
		return "", fmt.Errorf("host %q is not an address", host)
	}
	if strings.Contains(host, ":") { // IPv6
		if net.ParseIP(host) == nil {
			return "", fmt.Errorf("host %q is not an address", host)
		}
		return "[" + host + "]:" + strconv.Itoa(port), nil
	}
	return net.JoinHostPort(host, strconv.Itoa(port)), nil
}

// resolvedAddr is host's resolved address with port, or why there is none.
func resolvedAddr(addrs map[string]hostAddr, host string, port int) (string, error) {
	a, ok := addrs[host]
	switch {
	case !ok:
		return "", fmt.Errorf("host %q not resolved yet", host)
	case a.err != nil:
		return "", fmt.Errorf("host %q does not resolve: %w", host, a.err)
	}
	return serverAddr(a.ip, port)
}

// hostNames returns the host names (not IP literals) of the apps'
// healthy instances: what build needs resolved.
func hostNames(apps []deploy.App) map[string]bool {
	out := map[string]bool{}
	for _, a := range apps {
		for _, in := range a.Instances {
			if in.Healthy && isName(in.Host) && addrHostRE.MatchString(in.Host) {
				out[in.Host] = true
			}
		}
	}
	return out
}

// build turns the desired apps into a model. Apps with invalid names are
// skipped, invalid hosts and instances are left out; every refusal is kept
// in errs so that `flock apps` can show it. drained names instances that
// must not get new traffic (app → server names). addrs holds the address
// of every host name among the instances (see resolver); an instance on a
// name it lacks, or on a name that did not resolve, is left out.
func build(apps []deploy.App, domain string, drained map[string]map[string]bool, addrs map[string]hostAddr) *model {
	m := &model{hosts: map[string]string{}, errs: map[string]string{}}
	sorted := slices.Clone(apps)
	slices.SortFunc(sorted, func(a, b deploy.App) int { return strings.Compare(a.Name, b.Name) })
	// An app's own host is its own whatever another app's domains say, so
	// every own host is claimed before any domain: a domain that names
	// another app's host never takes its traffic, however the names sort.
	for _, a := range sorted {
		if h := deploy.AppHost(a.Name, domain); deploy.ValidName(a.Name) && validHost(h) {
			if _, ok := m.hosts[h]; !ok {
				m.hosts[h] = hap.BackendName(a.Name)
			}
		}
	}
	for _, a := range sorted {
		if !deploy.ValidName(a.Name) {
			continue // no app of that name can exist; nothing to report it on
		}
		if len(m.backends) > 0 && m.backends[len(m.backends)-1].App == a.Name {
			continue
		}
		b := backend{App: a.Name, Name: hap.BackendName(a.Name), Check: checkOf(a.Descriptor), Redirect: a.Descriptor.RedirectsHTTP()}
		var problems []string
		if b.Check.Path != "" && !deploy.ValidCheckPath(b.Check.Path) {
			problems = append(problems, fmt.Sprintf("check path %q refused, using a TCP check", b.Check.Path))
			b.Check.Path = ""
		}
		if h := deploy.AppHost(a.Name, domain); m.hosts[h] == b.Name {
			b.Hosts = append(b.Hosts, h)
		}
		for _, h := range a.Domains {
			h = strings.ToLower(strings.TrimSuffix(h, "."))
			if !validHost(h) || h == "localhost" || deploy.IsAddress(h) {
				problems = append(problems, fmt.Sprintf("domain %q refused", h))
				continue
			}
			if owner, ok := m.hosts[h]; ok {
				if owner != b.Name {
					problems = append(problems, fmt.Sprintf("domain %q already routes to %s", h, strings.TrimPrefix(owner, hap.BackendPrefix)))
				}
				continue
			}
			m.hosts[h] = b.Name
			b.Hosts = append(b.Hosts, h)
		}
		slices.Sort(b.Hosts)
		seen := map[string]bool{}
		for _, in := range a.Instances {
			if !in.Healthy {
				continue
			}
			name := serverName(in)
			if seen[name] || drained[a.Name][name] {
				continue
			}
			addr, err := serverAddr(in.Host, in.Port)
			if err == nil && isName(in.Host) {
				addr, err = resolvedAddr(addrs, in.Host, in.Port)
			}
			if err != nil {
				problems = append(problems, fmt.Sprintf("instance %s refused: %v", in.ID, err))
				continue
			}
			s := server{Name: name, Addr: addr}
			if b.Check.PortIdx > 0 && b.Check.PortIdx < len(in.Ports) {
				s.CheckPort = in.Ports[b.Check.PortIdx]
			}
			seen[name] = true
			b.Servers = append(b.Servers, s)
		}
		slices.SortFunc(b.Servers, func(x, y server) int { return strings.Compare(x.Name, y.Name) })
		if len(problems) > 0 {
			m.errs[a.Name] = strings.Join(problems, "; ")
		}
		m.backends = append(m.backends, b)
	}
	return m
}

// checkOf is the backend's health check: the descriptor's routing check
// (deploy.Descriptor.RoutingCheck owns the defaults).
func checkOf(d deploy.Descriptor) check {
	dc := d.RoutingCheck()
	return check{Path: dc.Path, PortIdx: dc.PortIndex, Inter: dc.IntervalSeconds, Timeout: dc.TimeoutSeconds, Fall: dc.MaxConsecutiveFailures}
}

// serverParams are the options after "server <name> <addr>", the same in
// the file and in a runtime "add server", so a reload reproduces what the
// runtime API built.
func serverParams(c check, s server) []params.ServerOption {
	p := []params.ServerOption{
		&params.ServerOptionWord{Name: "check"},
		&params.ServerOptionValue{Name: "inter", Value: strconv.Itoa(c.Inter) + "s"},
		&params.ServerOptionValue{Name: "fall", Value: strconv.Itoa(c.Fall)},
		&params.ServerOptionValue{Name: "rise", Value: "1"},
	}
	if s.CheckPort > 0 {
		p = append(p, &params.ServerOptionValue{Name: "port", Value: strconv.Itoa(s.CheckPort)})
	}
	return p
}

// byName returns the model's backends by name.
func (m *model) byName() map[string]*backend {
	out := make(map[string]*backend, len(m.backends))
	for i := range m.backends {
		out[m.backends[i].Name] = &m.backends[i]
	}
	return out
}
