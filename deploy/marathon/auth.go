package marathon

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/flock-paas/flock/deploy"
)

// credentials are what Flock presents to Marathon: HTTP basic (Marathon's
// --http_credentials) or a DC/OS token ("Authorization: token=<t>", as the
// DC/OS admin router and go-marathon's DCOSToken send it). Nothing here is
// ever formatted into an error or a log line.
type credentials struct {
	user, password string
	tokenFile      string

	mu    sync.Mutex
	token string
	mod   time.Time // of tokenFile when token was read
}

// header returns the Authorization value, "" without credentials. The
// token file is re-read when it changes: DC/OS tokens expire and an
// operator's job rewrites the file.
func (c *credentials) header() (string, error) {
	if c == nil {
		return "", nil
	}
	if c.tokenFile != "" {
		st, err := os.Stat(c.tokenFile)
		if err != nil {
			return "", fmt.Errorf("marathon token file: %w", err)
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.token == "" || !st.ModTime().Equal(c.mod) {
			b, err := os.ReadFile(c.tokenFile)
			if err != nil {
				return "", fmt.Errorf("marathon token file: %w", err)
			}
			tok := string(bytes.TrimSpace(b))
			if tok == "" {
				return "", fmt.Errorf("marathon token file %s is empty: %w", c.tokenFile, deploy.ErrInvalid)
			}
			c.token, c.mod = tok, st.ModTime()
		}
		return "token=" + c.token, nil
	}
	if c.user != "" {
		r := http.Request{Header: http.Header{}}
		r.SetBasicAuth(c.user, c.password)
		return r.Header.Get("Authorization"), nil
	}
	return "", nil
}

// authTransport sets the Authorization header on every request, also on
// those that follow a redirect: a standby Marathon answers /v2/events
// with a redirect to the leader (Marathon ≥1.7), and Go's client drops
// the header when the redirect changes host.
type authTransport struct {
	base http.RoundTripper
	cred *credentials
}

func (t *authTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	h, err := t.cred.header()
	if err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	if h != "" {
		req = req.Clone(req.Context())
		req.Header.Set("Authorization", h)
	}
	return t.base.RoundTrip(req)
}

// errDowngrade refuses to follow a redirect from https to http with
// credentials: they would cross the network in clear.
var errDowngrade = errors.New("marathon redirected from https to http; not sending credentials in clear")

// withAuth returns a copy of hc that authenticates every request with
// cred, or hc itself without credentials.
func withAuth(hc *http.Client, cred *credentials) *http.Client {
	if cred == nil || (cred.user == "" && cred.tokenFile == "") {
		return hc
	}
	c := *hc
	base := hc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	c.Transport = &authTransport{base: base, cred: cred}
	next := hc.CheckRedirect
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) > 0 && via[0].URL.Scheme == "https" && req.URL.Scheme != "https" {
			return errDowngrade
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return errors.New("marathon: stopped after 10 redirects")
		}
		return nil
	}
	return &c
}

// splitUserinfo removes "user:password@" from a Marathon URL: the URL is
// then safe to put in errors and logs, and the credentials go into the
// Authorization header like those of --marathon-user.
func splitUserinfo(raw string) (clean string, user, password string, err error) {
	p, err := url.Parse(raw)
	if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
		if p != nil {
			p.User = nil
		}
		shown := "(unparsable)"
		if p != nil && err == nil {
			shown = p.String()
		}
		return "", "", "", fmt.Errorf("marathon: bad URL %s (want http://host:port): %w", shown, deploy.ErrInvalid)
	}
	if p.User != nil {
		user = p.User.Username()
		password, _ = p.User.Password()
		p.User = nil
	}
	return p.String(), user, password, nil
}
