package web

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
)

// FuzzScaleBody feeds arbitrary bodies to the scale parser: it must never
// panic and must only accept a number from 0 to maxInstances.
func FuzzScaleBody(f *testing.F) {
	for _, seed := range []string{`{"instances":2}`, `{"instances":-1}`, `{"instances":"2"}`, `{"instances":1e3}`, `{}`, `[`, `{"instances":99999999999999999999}`, `{"instances":2,"process":"worker"}`, `{"instances":2,"process":"../x"}`} {
		f.Add(seed, "application/json")
	}
	f.Add("instances=3", formType)
	f.Fuzz(func(t *testing.T, body, ctype string) {
		c, _ := gin.CreateTestContext(httptest.NewRecorder())
		c.Request = httptest.NewRequest(http.MethodPost, "/api/v1/apps/x/scale", strings.NewReader(body))
		c.Request.Header.Set("Content-Type", ctype)
		n, process, err := instancesParam(c)
		if err == nil && (n < 0 || n > maxInstances) {
			t.Fatalf("accepted %d from %q", n, body)
		}
		if err == nil && process != "" && !processRE.MatchString(process) {
			t.Fatalf("accepted process %q from %q", process, body)
		}
	})
}
