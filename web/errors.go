package web

import (
	"errors"
	"net/http"

	"github.com/flock-paas/flock/deploy"
	"github.com/gin-gonic/gin"
)

// Errors of the web layer itself; status maps them beside deploy's sentinels.
var (
	errUnauthorized = errors.New("unauthorized: send Authorization: Bearer <token>")
	errForbidden    = errors.New("forbidden: missing or wrong CSRF token")
	errTooLarge     = errors.New("upload too large")
	errMethod       = errors.New("method not allowed")
	errTooMany      = errors.New("too many wrong tokens from this address: wait and try again")
	errHost         = errors.New("misdirected request")
	errSignature    = errors.New("forbidden")
)

// status maps an error to its HTTP status. It is the one place that does.
func status(err error) int {
	switch {
	case errors.Is(err, deploy.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, deploy.ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, deploy.ErrConflict), errors.Is(err, deploy.ErrSuperseded):
		return http.StatusConflict
	case errors.Is(err, deploy.ErrUnsupported):
		return http.StatusNotImplemented
	case errors.Is(err, errUnauthorized):
		return http.StatusUnauthorized
	case errors.Is(err, errForbidden):
		return http.StatusForbidden
	case errors.Is(err, errTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, errMethod):
		return http.StatusMethodNotAllowed
	case errors.Is(err, errTooMany):
		return http.StatusTooManyRequests
	case errors.Is(err, errHost):
		return http.StatusMisdirectedRequest
	case errors.Is(err, errSignature):
		return http.StatusForbidden
	}
	return http.StatusInternalServerError
}

// fail answers err as JSON {"error": "..."} with the status it maps to, and
// stops the handler chain. Server errors are logged; client errors are not.
func (s *Server) fail(c *gin.Context, err error) {
	code := status(err)
	if code >= 500 && code != http.StatusNotImplemented {
		s.log.Error("request failed", "method", c.Request.Method, "path", c.Request.URL.Path, "err", err)
	}
	if code == http.StatusUnauthorized {
		c.Header("WWW-Authenticate", `Bearer realm="flock"`)
	}
	c.AbortWithStatusJSON(code, gin.H{"error": err.Error()})
}
