package web

import (
	"fmt"

	"github.com/flock-paas/flock/deploy"
	"github.com/gin-gonic/gin"
)

// artifacts serves slugs. A slug holds an app's source and its
// descriptor's env, so it goes only to the token's holder or to a request
// on a signed, unexpired path; neither loopback nor a dashboard session is
// enough (apps run on this machine; a session is for the dashboard).
func (s *Server) artifacts(c *gin.Context) {
	if s.cfg.Artifacts == nil {
		s.fail(c, fmt.Errorf("%s: %w", c.Request.URL.Path, deploy.ErrNotFound))
		return
	}
	if s.cfg.Signed != nil {
		plain, err := s.cfg.Signed(c.Request.URL.Path)
		if err != nil {
			s.fail(c, fmt.Errorf("%w: %v", errSignature, err))
			return
		}
		if plain != "" {
			r := c.Request.Clone(c.Request.Context())
			r.URL.Path, r.URL.RawPath = plain, ""
			s.cfg.Artifacts.ServeHTTP(c.Writer, r)
			return
		}
	}
	who := s.identify(c)
	if s.limited(c, who) {
		return
	}
	if !who.token {
		s.fail(c, fmt.Errorf("%w (or a signed URL)", errUnauthorized))
		return
	}
	s.cfg.Artifacts.ServeHTTP(c.Writer, c.Request)
}
