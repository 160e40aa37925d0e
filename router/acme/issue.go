package acme

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	legoacme "github.com/go-acme/lego/v4/acme"
	"github.com/go-acme/lego/v4/certificate"
	"github.com/go-acme/lego/v4/registration"
)

// Error is a failed Issue. Its message names the host and carries the ACME
// server's problem detail when there is one, because the certificate
// manager shows it to users on the app (CLI, API, dashboard).
type Error struct {
	// Host is the host the certificate was for, quoted when it is not a
	// valid host name (it may come from a user).
	Host string
	// Type is the ACME problem type, such as
	// "urn:ietf:params:acme:error:unauthorized"; empty when the server sent
	// no problem document (a network error, a cancelled context).
	Type string
	// Detail is the problem document's human-readable detail.
	Detail string
	// Err is the error as lego returned it.
	Err error
}

func (e *Error) Error() string {
	if e.Detail != "" {
		return fmt.Sprintf("acme: certificate for %s: %s: %s", e.Host, problemName(e.Type), oneLine(e.Detail))
	}
	return fmt.Sprintf("acme: certificate for %s: %s", e.Host, oneLine(e.Err.Error()))
}

func (e *Error) Unwrap() error { return e.Err }

const problemNS = "urn:ietf:params:acme:error:"

// problemName shortens an RFC 8555 problem type to its last word
// ("unauthorized", "connection", "rateLimited").
func problemName(typ string) string {
	if typ == "" {
		return "error"
	}
	return strings.TrimPrefix(typ, problemNS)
}

// oneLine folds lego's multi-line messages so that an error reads well in a
// table cell or a log line.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func issueError(host string, err error) error {
	e := &Error{Host: host, Err: err}
	var p *legoacme.ProblemDetails
	if errors.As(err, &p) {
		e.Type, e.Detail = p.Type, p.Detail
	}
	return e
}

// issueTimeout bounds one Issue whatever its caller's context says: every
// request of the exchange carries a context that ends then, so a CA that
// stalls (mid-body included) cannot hold an Issue for ever. A validation
// takes seconds; lego itself gives up polling one after about 8 minutes.
const issueTimeout = 5 * time.Minute

var errTimeout = fmt.Errorf("no certificate after %s", issueTimeout)

// Issue obtains a certificate for host through HTTP-01 and returns it with
// its chain (leaf first) and its new private key, both PEM. The first call
// registers the account. Cancelling ctx makes Issue return at once with
// ctx's error; the ACME exchange in flight stops at its next request. Any
// error is an *Error.
func (i *Issuer) Issue(ctx context.Context, host string) (certPEM, keyPEM []byte, err error) {
	if err := checkHost(host); err != nil {
		return nil, nil, &Error{Host: fmt.Sprintf("%q", host), Err: err}
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, &Error{Host: host, Err: err}
	}
	type result struct {
		res *certificate.Resource
		err error
	}
	// lego's calls take no context and sleep between polls; running them
	// aside lets Issue honour ctx at once rather than at the next request.
	done := make(chan result, 1)
	octx, cancel := context.WithTimeoutCause(ctx, issueTimeout, errTimeout)
	go func() {
		defer cancel()
		res, err := i.obtain(octx, host)
		if err != nil && errors.Is(context.Cause(octx), errTimeout) {
			err = fmt.Errorf("%w: %w", errTimeout, err)
		}
		done <- result{res, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return nil, nil, issueError(host, r.err)
		}
		return r.res.Certificate, r.res.PrivateKey, nil
	case <-ctx.Done():
		return nil, nil, &Error{Host: host, Err: ctx.Err()}
	}
}

// obtain runs one order. An account the server no longer knows (Pebble
// keeps accounts in memory; a CA may delete them) is registered again, once.
func (i *Issuer) obtain(ctx context.Context, host string) (*certificate.Resource, error) {
	for attempt := 0; ; attempt++ {
		reg, err := i.account(ctx)
		if err != nil {
			return nil, err
		}
		c, err := i.client(ctx, reg)
		if err != nil {
			return nil, err
		}
		res, err := c.Certificate.Obtain(obtainRequest(host))
		if err == nil {
			return res, nil
		}
		if attempt > 0 || !accountGone(err) {
			return nil, err
		}
		i.forget(reg)
	}
}

func accountGone(err error) bool {
	var p *legoacme.ProblemDetails
	return errors.As(err, &p) && p.Type == problemNS+"accountDoesNotExist"
}

// account returns the registration to act for, registering it (or updating
// its contact after a change of Config.Email) on first use and saving it in
// Config.Dir.
func (i *Issuer) account(ctx context.Context) (*registration.Resource, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.acc != nil && i.acc.Email == i.cfg.Email {
		return i.acc.Registration, nil
	}
	var reg *registration.Resource
	opts := registration.RegisterOptions{TermsOfServiceAgreed: true}
	if i.acc != nil {
		c, err := i.client(ctx, i.acc.Registration)
		if err != nil {
			return nil, fmt.Errorf("update account: %w", err)
		}
		if reg, err = c.Registration.UpdateRegistration(opts); err != nil {
			return nil, fmt.Errorf("update account: %w", err)
		}
	} else {
		c, err := i.client(ctx, nil)
		if err != nil {
			return nil, fmt.Errorf("register account: %w", err)
		}
		if reg, err = c.Registration.Register(opts); err != nil {
			return nil, fmt.Errorf("register account: %w", err)
		}
	}
	acc := &account{Directory: i.cfg.Directory, Email: i.cfg.Email, Registration: reg}
	if err := saveAccount(i.cfg.Dir, acc); err != nil {
		return nil, err
	}
	i.acc = acc
	return reg, nil
}

// forget drops reg so that the next call to account registers anew, unless
// another Issue already did.
func (i *Issuer) forget(reg *registration.Resource) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.acc != nil && i.acc.Registration == reg {
		i.acc = nil
	}
}

// checkHost refuses what no CA issues for through HTTP-01, before any
// request: an IP address, a wildcard, a port, a name that is not DNS.
func checkHost(host string) error {
	switch {
	case host == "":
		return errors.New("no host name")
	case len(host) > 253:
		return errors.New("host name longer than 253 characters")
	case net.ParseIP(host) != nil:
		return errors.New("an IP address, not a host name")
	case strings.Contains(host, "*"):
		return errors.New("wildcards need DNS-01, and Flock uses HTTP-01")
	}
	for _, label := range strings.Split(host, ".") {
		if err := checkLabel(label); err != nil {
			return err
		}
	}
	return nil
}

func checkLabel(l string) error {
	if l == "" || len(l) > 63 {
		return errors.New("a host name label is empty or longer than 63 characters")
	}
	if l[0] == '-' || l[len(l)-1] == '-' {
		return fmt.Errorf("label %q starts or ends with '-'", l)
	}
	for _, c := range l {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return fmt.Errorf("label %q: only lower-case letters, digits and '-' are allowed", l)
		}
	}
	return nil
}
