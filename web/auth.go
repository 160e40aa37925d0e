package web

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
)

const (
	sessionCookie = "flock_session"
	loginCookie   = "flock_login" // double-submit CSRF token of the login form
	csrfHeader    = "X-CSRF-Token"
	csrfField     = "csrf"
	maxSessions   = 10000
	keyCaller     = "flock.caller"
)

// caller is who made a request, as far as auth is concerned.
type caller struct {
	token   bool          // sent the bearer token
	session *session      // logged in to the dashboard
	wait    time.Duration // > 0: its address sent too many wrong tokens
}

// authed reports whether the caller proved it knows the token.
func (c caller) authed() bool { return c.token || c.session != nil }

type session struct {
	id      string
	csrf    string
	expires time.Time
}

// sessions keeps dashboard sessions in memory: a restart logs everyone out,
// which is the price of keeping no secret on disk besides the token.
type sessions struct {
	mu  sync.Mutex
	ttl time.Duration
	m   map[string]*session
}

func newSessions(ttl time.Duration) *sessions {
	return &sessions{ttl: ttl, m: make(map[string]*session)}
}

func (ss *sessions) create() *session {
	now := time.Now()
	s := &session{id: randomToken(), csrf: randomToken(), expires: now.Add(ss.ttl)}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if len(ss.m) >= maxSessions {
		for id, o := range ss.m {
			if now.After(o.expires) || len(ss.m) >= maxSessions {
				delete(ss.m, id)
			}
		}
	}
	ss.m[s.id] = s
	return s
}

func (ss *sessions) get(id string) *session {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s := ss.m[id]
	if s == nil {
		return nil
	}
	if time.Now().After(s.expires) {
		delete(ss.m, id)
		return nil
	}
	return s
}

func (ss *sessions) drop(id string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	delete(ss.m, id)
}

func randomToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic("web: no randomness: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// equal compares secrets in constant time, also over their lengths.
func equal(a, b string) bool {
	ha, hb := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(ha[:], hb[:]) == 1
}

// identify works out the caller once per request. A bearer token is
// compared only while its client address is under the limit of wrong
// tokens; each wrong one counts against that address.
func (s *Server) identify(c *gin.Context) caller {
	if v, ok := c.Get(keyCaller); ok {
		return v.(caller)
	}
	var who caller
	if h := c.GetHeader("Authorization"); len(h) >= 7 && strings.EqualFold(h[:7], "bearer ") {
		ip, now := clientIP(c.Request), time.Now()
		if who.wait = s.failed.wait(ip, now); who.wait == 0 {
			who.token = equal(strings.TrimSpace(h[7:]), s.cfg.Token)
			if !who.token {
				s.failed.add(ip, now)
			}
		}
	}
	if ck, err := c.Request.Cookie(sessionCookie); err == nil && ck.Value != "" {
		who.session = s.sessions.get(ck.Value)
	}
	c.Set(keyCaller, who)
	return who
}

// limited answers 429 with Retry-After when the caller's address sent too
// many wrong tokens, and reports whether it did.
func (s *Server) limited(c *gin.Context, who caller) bool {
	if who.wait <= 0 {
		return false
	}
	c.Header("Retry-After", retryAfter(who.wait))
	s.fail(c, errTooMany)
	return true
}

// readAuth lets a read through with the token or a session, or to anyone
// when the dashboard is read-only. Loopback is no exemption: every app
// runs on this machine too.
func (s *Server) readAuth(c *gin.Context) {
	who := s.identify(c)
	if s.limited(c, who) {
		return
	}
	if who.authed() || s.cfg.ReadOnly {
		c.Next()
		return
	}
	s.fail(c, errUnauthorized)
}

// logsAuth is readAuth without the read-only exemption: app output may
// hold what a public status page should not show.
func (s *Server) logsAuth(c *gin.Context) {
	who := s.identify(c)
	if s.limited(c, who) {
		return
	}
	if who.authed() {
		c.Next()
		return
	}
	s.fail(c, errUnauthorized)
}

// writeAuth lets a mutation through with the bearer token, or with a
// session and its CSRF token (header X-CSRF-Token or form field "csrf").
func (s *Server) writeAuth(c *gin.Context) {
	who := s.identify(c)
	if s.limited(c, who) {
		return
	}
	if who.token {
		c.Next()
		return
	}
	if who.session == nil {
		s.fail(c, errUnauthorized)
		return
	}
	if !s.csrfOK(c, who.session) {
		s.fail(c, errForbidden)
		return
	}
	c.Next()
}

func (s *Server) csrfOK(c *gin.Context, se *session) bool {
	got := c.GetHeader(csrfHeader)
	if got == "" && strings.HasPrefix(c.ContentType(), "application/x-www-form-urlencoded") {
		got = c.PostForm(csrfField)
	}
	return got != "" && equal(got, se.csrf)
}

func (s *Server) setCookie(c *gin.Context, name, value string, maxAge int) {
	http.SetCookie(c.Writer, &http.Cookie{
		Name:     name,
		Value:    value,
		Path:     "/",
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   c.Request.TLS != nil,
		SameSite: http.SameSiteStrictMode,
	})
}

// safeNext keeps the redirect after login on this site: it passes only a
// plain path ("/apps/hello"), nothing a browser could read as another
// host. Browsers drop tabs and newlines from URLs and read "\" as "/", so
// "/\t/evil.com" and "/\evil.com" would become "//evil.com", a link to
// evil.com; any control character, backslash or non-ASCII byte is
// refused, and so is "//" and anything with a scheme or host.
func safeNext(p string) string {
	if p == "" || p[0] != '/' || len(p) > 2048 || strings.HasPrefix(p, "//") {
		return "/"
	}
	for i := 0; i < len(p); i++ {
		if b := p[i]; b < 0x21 || b > 0x7e || b == '\\' {
			return "/"
		}
	}
	u, err := url.Parse(p)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" || !strings.HasPrefix(u.Path, "/") {
		return "/"
	}
	return p
}
