package web

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net"
	"net/http"
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
	token   bool     // sent the bearer token
	session *session // logged in to the dashboard
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

// identify works out the caller once per request.
func (s *Server) identify(c *gin.Context) caller {
	if v, ok := c.Get(keyCaller); ok {
		return v.(caller)
	}
	var who caller
	if h := c.GetHeader("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		who.token = equal(strings.TrimSpace(h[7:]), s.cfg.Token)
	}
	if ck, err := c.Request.Cookie(sessionCookie); err == nil && ck.Value != "" {
		who.session = s.sessions.get(ck.Value)
	}
	c.Set(keyCaller, who)
	return who
}

// loopback reports whether the request comes from this machine and names
// this machine in Host. The Host check keeps a web page that rebinds its
// DNS name to 127.0.0.1 from reading the API through the visitor's browser.
func loopback(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return false
	}
	name := r.Host
	if h, _, err := net.SplitHostPort(name); err == nil {
		name = h
	}
	name = strings.ToLower(strings.Trim(name, "[]"))
	if name == "localhost" || strings.HasSuffix(name, ".localhost") {
		return true
	}
	hip := net.ParseIP(name)
	return hip != nil && hip.IsLoopback()
}

// readAuth lets a read through with the token, a session, from loopback,
// or to anyone when the dashboard is read-only.
func (s *Server) readAuth(c *gin.Context) {
	who := s.identify(c)
	if who.authed() || s.cfg.ReadOnly || loopback(c.Request) {
		c.Next()
		return
	}
	s.fail(c, errUnauthorized)
}

// logsAuth is readAuth without the read-only exemption: app output may
// hold what a public status page should not show.
func (s *Server) logsAuth(c *gin.Context) {
	who := s.identify(c)
	if who.authed() || loopback(c.Request) {
		c.Next()
		return
	}
	s.fail(c, errUnauthorized)
}

// writeAuth lets a mutation through with the bearer token, or with a
// session and its CSRF token (header X-CSRF-Token or form field "csrf").
func (s *Server) writeAuth(c *gin.Context) {
	who := s.identify(c)
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
