package router

import (
	"net"

	parser "github.com/haproxytech/config-parser/v5"
	"github.com/haproxytech/config-parser/v5/common"
	"github.com/haproxytech/config-parser/v5/params"
	parseractions "github.com/haproxytech/config-parser/v5/parsers/actions"
	"github.com/haproxytech/config-parser/v5/parsers/http/actions"
	"github.com/haproxytech/config-parser/v5/types"

	"github.com/flock-paas/flock/router/hap"
)

// step is one line of the configuration's head: a section, a keyword and
// its value; multi for keywords that may repeat.
type step struct {
	sec   parser.Section
	name  string
	attr  string
	data  common.ParserData
	multi bool
}

// acmeBackend is where the HTTP frontend sends ACME's HTTP-01 challenges
// when Config.ACMEAddr is set.
const acmeBackend = "be_acme"

// ACMEChallengePath is the path prefix of ACME's HTTP-01 challenges
// (RFC 8555, section 8.3); the HTTP frontend sends it to Config.ACMEAddr.
const ACMEChallengePath = "/.well-known/acme-challenge/"

// frontendSteps renders the "http" or the "https" frontend. Both route
// every app host the same way (one map lookup); they differ in the bind
// line and in what X-Forwarded-Proto says. Only the HTTP frontend
// redirects to HTTPS and answers ACME's challenges.
func frontendSteps(s settings, name string) []step {
	f := parser.Frontends
	status400 := int64(400)
	bind, proto := &types.Bind{Path: s.HTTPAddr}, "http"
	if name == "https" {
		// The certificates come and go through the runtime API (tls.go);
		// the crt-list file holds them for the next start. SNI picks a
		// certificate by its names; a client naming no known host gets
		// no handshake (strict-sni) rather than some other app's
		// certificate.
		proto = "https"
		bind = &types.Bind{Path: s.HTTPSAddr, Params: []params.BindOption{
			&params.BindOptionWord{Name: "ssl"},
			&params.BindOptionValue{Name: "crt-list", Value: s.path(crtListFile)},
			&params.BindOptionValue{Name: "alpn", Value: "h2,http/1.1"},
			&params.BindOptionWord{Name: "strict-sni"},
		}}
	}
	hostKey := "req.hdr(host),lower,word(1,:)"
	steps := []step{
		{f, name, "bind", bind, true},
		// A request names one host. A Host list ("a.localhost,b.localhost")
		// or a second Host header would let HAProxy route by one name
		// while the app reads another; hdr_cnt counts both.
		{f, name, "http-request", &actions.Deny{Status: &status400, ContentType: "text/plain", ContentFormat: "string",
			Content: badHostBody, Cond: "if", CondTest: "{ req.hdr_cnt(host) gt 1 }"}, true},
		{f, name, "http-request", &actions.DelHeader{Name: appHeader}, true},
		// Set, not added: a client cannot make an app believe a plain
		// HTTP request came over TLS. X-Forwarded-For comes from "option
		// forwardfor" in the defaults.
		{f, name, "http-request", &actions.SetHeader{Name: "X-Forwarded-Proto", Fmt: proto}, true},
	}
	if name == "http" && s.HTTPSAddr != "" {
		// Hosts in https.map (ACME certificates, the app did not opt out)
		// move to HTTPS; 308 keeps the method and the body. ACME's own
		// challenges stay on HTTP.
		steps = append(steps, step{f, name, "http-request", &actions.Redirect{
			Type: "location", Value: "https://%[" + hostKey + "]" + httpsPort(s.HTTPSAddr) + "%[capture.req.uri]", Code: "308",
			Cond: "if", CondTest: "{ " + hostKey + ",map(" + s.path(redirectFile) + ") -m found } !{ path_beg " + ACMEChallengePath + " }",
		}, true})
	}
	// One map lookup, keyed by the lower-cased host without its port,
	// picks the backend: the cost of routing does not grow with the
	// number of apps. The app's name, for the app and the waker, is the
	// backend's name without "app_".
	steps = append(steps,
		step{f, name, "http-request", &parseractions.SetVar{VarScope: "txn", VarName: "backend", Expr: common.Expression{
			Expr: []string{hostKey + ",map(" + s.path(mapFile) + ",be_default)"},
		}}, true},
		step{f, name, "http-request", &actions.SetHeader{Name: appHeader, Fmt: "%[var(txn.backend),regsub(^" + hap.BackendPrefix + ",)]",
			Cond: "if", CondTest: "{ var(txn.backend) -m beg app_ }"}, true},
	)
	if name == "http" && s.ACMEAddr != "" {
		steps = append(steps, step{f, name, "use_backend", &types.UseBackend{Name: acmeBackend,
			Cond: "if", CondTest: "{ path_beg " + ACMEChallengePath + " }"}, true})
	}
	return append(steps,
		step{f, name, "use_backend", &types.UseBackend{Name: "%[var(txn.backend)]"}, true},
		step{f, name, "default_backend", &types.StringC{Value: "be_default"}, false},
	)
}

// httpsPort is what a redirect's URL carries after the host: nothing for
// port 443.
func httpsPort(addr string) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil || port == "443" {
		return ""
	}
	return ":" + port
}
