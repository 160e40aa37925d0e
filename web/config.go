package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/flock-paas/flock/deploy"
	"github.com/gin-gonic/gin"
)

// maxConfigBody caps a PATCH of config vars: 1000 values of 32 KiB each
// would be more than an environment holds anyway.
const maxConfigBody = 1 << 20

// configView answers a config change: the release that carries it (""
// when the app has no release yet, or a waiting deploy takes it) and the
// app's config keys. Values are never echoed.
type configView struct {
	App        string   `json:"app"`
	Release    string   `json:"release,omitempty"`
	ConfigKeys []string `json:"configKeys"`
	Log        string   `json:"log"`
}

// domainsView is GET, POST and DELETE /api/v1/apps/:app/domains.
type domainsView struct {
	App     string          `json:"app"`
	Domains []deploy.Domain `json:"domains"`
}

// createApp is POST /api/v1/apps {"name": "..."}: an empty app.
func (s *Server) createApp(c *gin.Context) {
	var body struct {
		Name string `json:"name"`
	}
	if err := json.NewDecoder(io.LimitReader(c.Request.Body, 1<<16)).Decode(&body); err != nil || body.Name == "" {
		s.fail(c, fmt.Errorf(`create: the body must be {"name": "APP"}: %w`, deploy.ErrInvalid))
		return
	}
	a, err := s.actor.Create(c.Request.Context(), body.Name)
	if err != nil {
		s.fail(c, err) // the platform names the operation and the app
		return
	}
	c.JSON(http.StatusCreated, a)
}

// getConfig is GET /api/v1/apps/:app/config: the values, to token holders
// and sessions only (logsAuth: never on a read-only dashboard).
func (s *Server) getConfig(c *gin.Context) {
	name, err := appName(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	cfg, err := s.reader.Config(c.Request.Context(), name)
	if err != nil {
		s.fail(c, err) // the platform names the operation and the app
		return
	}
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusOK, cfg)
}

// patchConfig is PATCH /api/v1/apps/:app/config {"KEY": "value", "OLD":
// null}. It answers once the change is live (or recorded, on an app that
// has no release or sleeps).
func (s *Server) patchConfig(c *gin.Context) {
	name, err := appName(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	patch, err := decodePatch(io.LimitReader(c.Request.Body, maxConfigBody))
	if err != nil {
		s.fail(c, fmt.Errorf("config of %s: %w", name, err))
		return
	}
	s.setConfig(c, name, patch, func(v configView) { c.JSON(http.StatusOK, v) })
}

// setConfig applies patch and hands the outcome to answer.
func (s *Server) setConfig(c *gin.Context, name string, patch map[string]*string, answer func(configView)) {
	ctx := c.Request.Context()
	var log strings.Builder
	rel, err := s.actor.SetConfig(ctx, name, patch, &log)
	if err != nil {
		s.fail(c, err) // the platform names the operation and the app
		return
	}
	a, err := s.reader.App(ctx, name)
	if err != nil {
		s.fail(c, err)
		return
	}
	keys := a.ConfigKeys
	if keys == nil {
		keys = []string{}
	}
	answer(configView{App: name, Release: rel.Name, ConfigKeys: keys, Log: log.String()})
}

// decodePatch reads a JSON object whose values are strings or null.
// Anything else (a number, a nested object, two objects) is refused
// naming the key, never the value.
func decodePatch(r io.Reader) (map[string]*string, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&raw); err != nil || raw == nil || dec.More() {
		return nil, fmt.Errorf(`the body must be one JSON object, {"KEY": "value", "OLD": null}: %w`, deploy.ErrInvalid)
	}
	patch := make(map[string]*string, len(raw))
	for k, v := range raw {
		if string(bytes.TrimSpace(v)) == "null" {
			patch[k] = nil
			continue
		}
		var str string
		if err := json.Unmarshal(v, &str); err != nil {
			return nil, fmt.Errorf("config %q: the value must be a string, or null to unset it: %w", k, deploy.ErrInvalid)
		}
		patch[k] = &str
	}
	return patch, nil
}

func (s *Server) domains(c *gin.Context, name string, code int) {
	ds, err := s.reader.Domains(c.Request.Context(), name)
	if err != nil {
		s.fail(c, err) // the platform names the operation and the app
		return
	}
	c.JSON(code, domainsView{App: name, Domains: ds})
}

// listDomains is GET /api/v1/apps/:app/domains.
func (s *Server) listDomains(c *gin.Context) {
	if name, err := appName(c); err != nil {
		s.fail(c, err)
	} else {
		s.domains(c, name, http.StatusOK)
	}
}

// addDomain is POST /api/v1/apps/:app/domains {"host": "www.example.com"}.
func (s *Server) addDomain(c *gin.Context) {
	name, err := appName(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	var body struct {
		Host string `json:"host"`
	}
	if err := json.NewDecoder(io.LimitReader(c.Request.Body, 1<<16)).Decode(&body); err != nil && !errors.Is(err, io.EOF) || body.Host == "" {
		s.fail(c, fmt.Errorf(`add domain to %s: the body must be {"host": "www.example.com"}: %w`, name, deploy.ErrInvalid))
		return
	}
	if err := s.actor.AddDomain(c.Request.Context(), name, body.Host); err != nil {
		s.fail(c, err) // the platform names the operation and the app
		return
	}
	s.domains(c, name, http.StatusCreated)
}

// removeDomain is DELETE /api/v1/apps/:app/domains/:host.
func (s *Server) removeDomain(c *gin.Context) {
	name, err := appName(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	if err := s.actor.RemoveDomain(c.Request.Context(), name, c.Param("host")); err != nil {
		s.fail(c, err) // the platform names the operation and the app
		return
	}
	s.domains(c, name, http.StatusOK)
}

// formConfig is the app page's config form: set KEY to VALUE, or unset
// KEY (op=unset).
func (s *Server) formConfig(c *gin.Context) {
	name, err := appName(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	key := strings.TrimSpace(c.PostForm("key"))
	patch := map[string]*string{key: nil}
	what := "unset " + key
	if c.PostForm("op") != "unset" {
		v := c.PostForm("value")
		patch[key], what = &v, "set "+key
	}
	s.setConfig(c, name, patch, func(v configView) {
		msg := what
		if v.Release != "" {
			msg += ": " + v.Release + " is live"
		}
		s.done(c, "/apps/"+name, msg)
	})
}

// formDomain is the app page's domain forms: add the host, or remove it
// (op=remove).
func (s *Server) formDomain(c *gin.Context) {
	host := strings.TrimSpace(c.PostForm("host"))
	if c.PostForm("op") == "remove" {
		s.formAction("remove domain "+host, func(ctx context.Context, name string) error { return s.actor.RemoveDomain(ctx, name, host) })(c)
		return
	}
	s.formAction("add domain "+host, func(ctx context.Context, name string) error { return s.actor.AddDomain(ctx, name, host) })(c)
}
