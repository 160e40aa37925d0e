package router

import (
	"bytes"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	parser "github.com/haproxytech/config-parser/v5"
	"github.com/haproxytech/config-parser/v5/params"
	"github.com/haproxytech/config-parser/v5/parsers"
	"github.com/haproxytech/config-parser/v5/parsers/http"
	"github.com/haproxytech/config-parser/v5/parsers/http/actions"
	"github.com/haproxytech/config-parser/v5/parsers/simple"
	statsettings "github.com/haproxytech/config-parser/v5/parsers/stats/settings"
	"github.com/haproxytech/config-parser/v5/types"

	"github.com/flock-paas/flock/router/hap"
)

// Names of the files and sockets the router keeps in Config.Dir.
const (
	cfgFile      = "haproxy.cfg"
	mapFile      = "hosts.map"
	adminSocket  = "admin.sock"
	masterSocket = "master.sock"
	pidFile      = "haproxy.pid"
	crtListFile  = "crt-list"
	redirectFile = "https.map"
)

// defaultsName names the defaults section; every proxy names it with
// "from", as HAProxy refuses a mix of explicit and implicit use.
const defaultsName = "flock"

// appHeader tells the app and the waker which app a request is for.
const appHeader = hap.AppHeader

// defaultCheckTimeout is the defaults section's "timeout check", in
// seconds; backends only say theirs when it differs.
const defaultCheckTimeout = 5

var redispatchEvery int64 = 1

// notFoundBody is what an unknown host gets, with status 404.
const notFoundBody = `"No app answers at this address (Flock)."`

// badHostBody is what a request naming more than one host gets, with
// status 400.
const badHostBody = `"A request names one host (Flock)."`

// wakeBody is what a sleeping app's visitor gets while no waker exists.
const wakeBody = `"This app is starting, retry in a few seconds (Flock)."`

// settings are the parts of the configuration that do not depend on apps.
type settings struct {
	Dir           string
	HTTPAddr      string
	HTTPSAddr     string // "": no HTTPS frontend
	ACMEAddr      string // "": /.well-known/acme-challenge/ is routed as any path
	StatsAddr     string
	WakerAddr     string
	HardStopAfter time.Duration
}

func (s settings) path(name string) string { return filepath.Join(s.Dir, name) }

// renderer renders models to haproxy.cfg bytes. It keeps each backend's
// rendered text so that a change to one app of 10,000 re-renders one
// backend; it is not safe for concurrent use.
type renderer struct {
	s     settings
	head  []byte
	cache map[string]cachedBackend
}

type cachedBackend struct {
	b    backend
	text []byte
}

func newRenderer(s settings) (*renderer, error) {
	head, err := renderHead(s)
	if err != nil {
		return nil, err
	}
	return &renderer{s: s, head: head, cache: map[string]cachedBackend{}}, nil
}

// render returns the whole configuration for m.
func (r *renderer) render(m *model) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(len(r.head) + len(m.backends)*256)
	buf.Write(r.head)
	next := make(map[string]cachedBackend, len(m.backends))
	for _, b := range m.backends {
		c, ok := r.cache[b.Name]
		if !ok || !sameBackend(c.b, b) {
			text, err := renderBackend(r.s, b)
			if err != nil {
				return nil, fmt.Errorf("render backend %s: %w", b.Name, err)
			}
			c = cachedBackend{b: b, text: text}
		}
		next[b.Name] = c
		buf.Write(c.text)
	}
	r.cache = next
	return buf.Bytes(), nil
}

func sameBackend(a, b backend) bool {
	return a.Name == b.Name && a.App == b.App && a.Check == b.Check && slices.Equal(a.Servers, b.Servers)
}

// renderMap returns hosts.map: one "host backend" line per host, sorted.
func renderMap(m *model) []byte {
	hosts := make([]string, 0, len(m.hosts))
	for h := range m.hosts {
		hosts = append(hosts, h)
	}
	slices.Sort(hosts)
	var buf bytes.Buffer
	for _, h := range hosts {
		buf.WriteString(h)
		buf.WriteByte(' ')
		buf.WriteString(m.hosts[h])
		buf.WriteByte('\n')
	}
	return buf.Bytes()
}

// renderHead renders global, defaults, the frontends and be_default with
// config-parser's full section model.
func renderHead(s settings) ([]byte, error) {
	p, err := parser.New()
	if err != nil {
		return nil, fmt.Errorf("config parser: %w", err)
	}
	g, gn := parser.Global, parser.GlobalSectionName
	d, dn := parser.Defaults, defaultsName
	hardStop := max(s.HardStopAfter, time.Second)
	steps := []step{
		{g, gn, "master-worker", &types.Enabled{}, false},
		{g, gn, "pidfile", &types.StringC{Value: s.path(pidFile)}, false},
		{g, gn, "stats socket", &types.Socket{Path: s.path(adminSocket), Params: []params.BindOption{
			&params.BindOptionValue{Name: "mode", Value: "600"},
			&params.BindOptionValue{Name: "level", Value: "admin"},
			&params.BindOptionDoubleWord{Name: "expose-fd", Value: "listeners"},
		}}, true},
		{g, gn, "stats timeout", &types.StringC{Value: "2m"}, false},
		{g, gn, "hard-stop-after", &types.StringC{Value: durationWord(hardStop)}, false},
		{d, dn, "mode", &types.StringC{Value: "http"}, false},
		// Every retry goes to another server: a crashed instance costs a
		// refused connection, not a one-second turn-around per retry.
		{d, dn, "option redispatch", &types.OptionRedispatch{Interval: &redispatchEvery}, false},
		{d, dn, "option forwardfor", &types.OptionForwardFor{}, false},
		{d, dn, "retries", &types.Int64C{Value: 3}, false},
		{d, dn, "retry-on", &types.StringC{Value: "conn-failure empty-response"}, false},
		{d, dn, "timeout connect", &types.SimpleTimeout{Value: "5s"}, false},
		{d, dn, "timeout client", &types.SimpleTimeout{Value: "90s"}, false},
		// The waker holds a request up to 60 s while it wakes an app; the
		// server timeout must let it answer first.
		{d, dn, "timeout server", &types.SimpleTimeout{Value: "90s"}, false},
		{d, dn, "timeout http-request", &types.SimpleTimeout{Value: "10s"}, false},
		{d, dn, "timeout http-keep-alive", &types.SimpleTimeout{Value: "10s"}, false},
		{d, dn, "timeout queue", &types.SimpleTimeout{Value: "30s"}, false},
		{d, dn, "timeout tunnel", &types.SimpleTimeout{Value: "1h"}, false},
		{d, dn, "timeout check", &types.SimpleTimeout{Value: strconv.Itoa(defaultCheckTimeout) + "s"}, false},
	}
	if s.HTTPSAddr != "" {
		// The key is in each certificate's file: looking for .key, .ocsp,
		// .issuer and .sctl beside each of thousands of files at every
		// start and reload costs time for nothing.
		steps = append(steps, step{g, gn, "ssl-load-extra-files", &types.StringC{Value: "none"}, false})
	}
	if err := p.SectionsCreate(parser.Defaults, dn); err != nil {
		return nil, fmt.Errorf("defaults: %w", err)
	}
	type section struct {
		t    parser.Section
		name string
	}
	sections := []section{{parser.Frontends, "http"}, {parser.Frontends, "stats"}, {parser.Backends, "be_default"}}
	if s.HTTPSAddr != "" {
		sections = append(sections, section{parser.Frontends, "https"})
	}
	if s.ACMEAddr != "" {
		sections = append(sections, section{parser.Backends, acmeBackend})
	}
	for _, sec := range sections {
		if err := p.SectionsCreate(sec.t, sec.name); err != nil {
			return nil, fmt.Errorf("%s %s: %w", sec.t, sec.name, err)
		}
	}
	steps = append(steps, frontendSteps(s, "http")...)
	status404 := int64(404)
	f := parser.Frontends
	steps = append(steps, []step{
		{f, "stats", "bind", &types.Bind{Path: s.StatsAddr}, true},
		{f, "stats", "stats", &statsettings.OneWord{Name: "enable"}, true},
		{f, "stats", "stats", &statsettings.URI{Prefix: "/stats"}, true},
		{f, "stats", "stats", &statsettings.Refresh{Delay: "10s"}, true},
		{parser.Backends, "be_default", "http-request", &actions.Return{
			Status: &status404, ContentType: "text/plain", ContentFormat: "string", Content: notFoundBody,
		}, true},
	}...)
	if s.HTTPSAddr != "" {
		steps = append(steps, frontendSteps(s, "https")...)
	}
	if s.ACMEAddr != "" {
		steps = append(steps, step{parser.Backends, acmeBackend, "server", &types.Server{Name: "flock", Address: s.ACMEAddr}, true})
	}
	for _, st := range steps {
		if st.multi {
			err = p.Insert(st.sec, st.name, st.attr, st.data)
		} else {
			err = p.Set(st.sec, st.name, st.attr, st.data)
		}
		if err != nil {
			return nil, fmt.Errorf("%s %s %s: %w", st.sec, st.name, st.attr, err)
		}
	}
	out := "# Written by Flock's router; every change here is overwritten.\n" + p.String()
	return []byte(out), nil
}

// renderBackend renders one app's backend: its health check, its servers
// and the waker as backup. It uses config-parser's parsers
// for the few lines a backend has rather than its full section model,
// which builds ~150 parsers per section and would take most of a second
// for 10,000 apps.
func renderBackend(s settings, b backend) ([]byte, error) {
	chk := &parsers.OptionHttpchk{}
	timeout := &simple.Timeout{Name: "check"}
	srvs := &parsers.Server{}
	errs := &http.HTTPErrors{}
	seq := []parser.ParserInterface{chk, timeout, errs, srvs}
	for _, p := range seq {
		p.Init()
	}
	if b.Check.Path != "" {
		if err := chk.Set(&types.OptionHttpchk{Method: "GET", URI: b.Check.Path}, -1); err != nil {
			return nil, err
		}
	}
	if b.Check.Timeout != defaultCheckTimeout {
		if err := timeout.Set(&types.SimpleTimeout{Value: strconv.Itoa(b.Check.Timeout) + "s"}, -1); err != nil {
			return nil, err
		}
	}
	if s.WakerAddr == "" {
		// No waker yet: the 503 HAProxy answers when no server is up
		// tells the client to come back.
		status := int64(503)
		if err := errs.Insert(&actions.Status{
			Status: &status, ContentType: "text/plain", ContentFormat: "string", Content: wakeBody,
			Hdrs: []*actions.Hdr{{Name: "Retry-After", Fmt: "5"}},
		}, -1); err != nil {
			return nil, err
		}
	}
	for _, sv := range b.Servers {
		if err := srvs.Insert(&types.Server{Name: sv.Name, Address: sv.Addr, Params: serverParams(b.Check, sv)}, -1); err != nil {
			return nil, err
		}
	}
	if s.WakerAddr != "" {
		if err := srvs.Insert(&types.Server{Name: "waker", Address: s.WakerAddr, Params: []params.ServerOption{
			&params.ServerOptionWord{Name: "backup"},
		}}, -1); err != nil {
			return nil, err
		}
	}
	var buf bytes.Buffer
	buf.WriteString("\nbackend ")
	buf.WriteString(b.Name)
	buf.WriteString(" from " + defaultsName + "\n")
	for _, p := range seq {
		lines, _, err := p.ResultAll()
		if err != nil {
			continue // nothing set
		}
		for _, l := range lines {
			buf.WriteString("  ")
			buf.WriteString(l.Data)
			buf.WriteByte('\n')
		}
	}
	return buf.Bytes(), nil
}

// durationWord writes d in HAProxy's time format, in whole seconds or
// milliseconds.
func durationWord(d time.Duration) string {
	if d%time.Second == 0 {
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
	return strconv.FormatInt(int64(d/time.Millisecond), 10) + "ms"
}
