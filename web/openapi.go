package web

import (
	_ "embed"
	"net/http"

	"github.com/gin-gonic/gin"
)

// openapiJSON is the OpenAPI 3 document of everything served on the --api
// address, kept beside the routes it describes. TestOpenAPIRoutes fails
// when a route is added without it, or it names a route that is gone.
//
//go:embed openapi.json
var openapiJSON []byte

// openapi serves the document. It is a read like any other (token, session
// or --read-only-dashboard): the contract names the only public paths, and
// one rule for every read is easier to trust than exceptions.
func (s *Server) openapi(c *gin.Context) {
	c.Header("Cache-Control", "no-cache")
	c.Data(http.StatusOK, "application/json", openapiJSON)
}
