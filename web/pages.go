package web

import (
	"bytes"
	"compress/gzip"
	"embed"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// pages holds one parsed template set per page; each set also holds the
// shared parts (top, bottom, row, live, releases).
type pages struct {
	sets map[string]*template.Template
	bufs sync.Pool
	zips sync.Pool
}

func newPages() (*pages, error) {
	base, err := template.ParseFS(templateFS, "templates/base.html", "templates/parts.html")
	if err != nil {
		return nil, fmt.Errorf("web: parse templates: %w", err)
	}
	p := &pages{sets: map[string]*template.Template{}, bufs: sync.Pool{New: func() any { return new(bytes.Buffer) }}}
	p.zips.New = func() any {
		zw, _ := gzip.NewWriterLevel(io.Discard, gzip.BestSpeed)
		return zw
	}
	for _, name := range []string{"apps", "app", "deploy", "login"} {
		t, err := template.Must(base.Clone()).ParseFS(templateFS, "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("web: parse %s page: %w", name, err)
		}
		p.sets[name] = t
	}
	p.sets["parts"] = base
	return p, nil
}

// render executes a page (or, with set "parts", a fragment) into a buffer
// first, so a template error becomes a clean 500 rather than half a page.
func (s *Server) render(c *gin.Context, code int, set, name string, data any) {
	buf := s.pages.bufs.Get().(*bytes.Buffer)
	buf.Reset()
	defer s.pages.bufs.Put(buf)
	if err := s.pages.sets[set].ExecuteTemplate(buf, name, data); err != nil {
		s.fail(c, fmt.Errorf("render %s: %w", name, err))
		return
	}
	h := c.Writer.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'")
	c.Status(code)
	if buf.Len() < 8<<10 || !strings.Contains(c.GetHeader("Accept-Encoding"), "gzip") {
		c.Writer.Write(buf.Bytes())
		return
	}
	// A page of 1,000 apps is ~2 MB of HTML and ~10 times less gzipped.
	h.Set("Content-Encoding", "gzip")
	h.Add("Vary", "Accept-Encoding")
	zw := s.pages.zips.Get().(*gzip.Writer)
	defer s.pages.zips.Put(zw)
	zw.Reset(c.Writer)
	zw.Write(buf.Bytes())
	zw.Close()
}

func (s *Server) pageRoutes(e *gin.Engine) {
	static, _ := fs.Sub(staticFS, "static")
	files := http.StripPrefix("/static/", http.FileServer(http.FS(static)))
	e.GET("/static/*file", func(c *gin.Context) {
		c.Header("Cache-Control", "public, max-age=300")
		files.ServeHTTP(c.Writer, c.Request)
	})
	e.GET("/login", s.loginPage)
	e.POST("/login", s.login)
	e.POST("/logout", s.writeAuth, s.logout)

	e.GET("/", s.pageAuth, s.appsPage)
	e.GET("/apps/:app", s.pageAuth, s.appPage)
	e.GET("/deploys/:id", s.pageAuth, s.deployPage)
	e.GET("/ui/apps/:app/row", s.fragmentAuth, s.rowFragment)
	e.GET("/ui/apps/:app/live", s.fragmentAuth, s.liveFragment)
	e.GET("/ui/apps/:app/releases", s.fragmentAuth, s.releasesFragment)

	e.POST("/apps/:app/scale", s.writeAuth, s.formScale)
	e.POST("/apps/:app/sleep", s.writeAuth, s.formAction("sleep", s.actor.Sleep))
	e.POST("/apps/:app/wake", s.writeAuth, s.formAction("wake", s.actor.Wake))
	e.POST("/apps/:app/destroy", s.writeAuth, s.formDestroy)
	e.POST("/apps/:app/rollback", s.writeAuth, s.rollback)
	e.POST("/apps/:app/config", s.writeAuth, s.formConfig)
	e.POST("/apps/:app/domains", s.writeAuth, s.formDomain)
}

// pageAuth lets a page through with a session (or when read-only) and
// sends anyone else to the login page.
func (s *Server) pageAuth(c *gin.Context) {
	if s.identify(c).session != nil || s.cfg.ReadOnly {
		c.Next()
		return
	}
	next := c.Request.URL.Path
	c.Redirect(http.StatusSeeOther, "/login?next="+template.URLQueryEscaper(next))
	c.Abort()
}

// fragmentAuth is pageAuth for the pieces the page's script fetches: they
// answer 401 rather than a redirect.
func (s *Server) fragmentAuth(c *gin.Context) {
	if s.identify(c).session != nil || s.cfg.ReadOnly {
		c.Next()
		return
	}
	s.fail(c, errUnauthorized)
}

type loginData struct {
	layout
	Next      string
	Error     string
	TokenFile string
}

func (s *Server) loginPage(c *gin.Context) {
	if s.identify(c).session != nil {
		c.Redirect(http.StatusSeeOther, safeNext(c.Query("next")))
		return
	}
	s.showLogin(c, http.StatusOK, "")
}

func (s *Server) showLogin(c *gin.Context, code int, msg string) {
	tok := randomToken()
	s.setCookie(c, loginCookie, tok, 3600)
	s.render(c, code, "login", "page", loginData{
		layout:    layout{Title: "Log in", CSRF: tok},
		Next:      safeNext(c.DefaultQuery("next", c.PostForm("next"))),
		Error:     msg,
		TokenFile: s.cfg.TokenFile,
	})
}

// login checks the token typed into the login form and starts a session.
// The form carries a random value that must match a cookie set with it
// (double submit), so another site cannot log a visitor in.
func (s *Server) login(c *gin.Context) {
	ck, err := c.Request.Cookie(loginCookie)
	if err != nil || ck.Value == "" || !equal(c.PostForm(csrfField), ck.Value) {
		s.showLogin(c, http.StatusForbidden, "The form expired. Please try again.")
		return
	}
	ip, now := clientIP(c.Request), time.Now()
	if wait := s.failed.wait(ip, now); wait > 0 {
		c.Header("Retry-After", retryAfter(wait))
		s.showLogin(c, http.StatusTooManyRequests, "Too many wrong tokens. Wait a minute and try again.")
		return
	}
	if !equal(strings.TrimSpace(c.PostForm("token")), s.cfg.Token) {
		s.failed.add(ip, now)
		s.showLogin(c, http.StatusUnauthorized, "That is not the Flock token.")
		return
	}
	se := s.sessions.create()
	s.setCookie(c, sessionCookie, se.id, int(s.sessions.ttl.Seconds()))
	s.setCookie(c, loginCookie, "", -1)
	c.Redirect(http.StatusSeeOther, safeNext(c.PostForm("next")))
}

func (s *Server) logout(c *gin.Context) {
	if se := s.identify(c).session; se != nil {
		s.sessions.drop(se.id)
	}
	s.setCookie(c, sessionCookie, "", -1)
	c.Redirect(http.StatusSeeOther, "/login")
}
