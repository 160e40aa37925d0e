package local

import (
	"strings"
	"testing"
)

// TestFirstError: the line that states why an app died is found in the
// real output of Node, Python, Go and npm crashes; stack frames, source
// lines ("throw new Error(...)") and ordinary log lines are not it.
func TestFirstError(t *testing.T) {
	for _, tc := range []struct {
		name, out, want string
	}{
		{"node throw", `/srv/app/server.js:3
throw new Error("boom: missing DATABASE_URL");
^

Error: boom: missing DATABASE_URL
    at Object.<anonymous> (/srv/app/server.js:3:7)
    at Module._compile (node:internal/modules/cjs/loader:1554:14)

Node.js v20.20.2`, "Error: boom: missing DATABASE_URL"},
		{"node missing module", `node:internal/modules/cjs/loader:1228
  throw err;
  ^

Error: Cannot find module 'express'
Require stack:
- /srv/app/server.js`, "Error: Cannot find module 'express'"},
		{"node esm", `node:internal/errors:496
Error [ERR_MODULE_NOT_FOUND]: Cannot find package 'fastify' imported from /srv/app/index.mjs`, "Error [ERR_MODULE_NOT_FOUND]: Cannot find package 'fastify' imported from /srv/app/index.mjs"},
		{"node type error", `listening on 3000
TypeError: Cannot read properties of undefined (reading 'x')
    at Server.<anonymous> (/srv/app/server.js:9:20)`, "TypeError: Cannot read properties of undefined (reading 'x')"},
		{"python", `Traceback (most recent call last):
  File "/srv/app/app.py", line 1, in <module>
    import flask
ModuleNotFoundError: No module named 'flask'`, "ModuleNotFoundError: No module named 'flask'"},
		{"go panic", `starting
panic: runtime error: index out of range [3] with length 0

goroutine 1 [running]:
main.main()`, "panic: runtime error: index out of range [3] with length 0"},
		{"nothing", "listening on 3000\nGET / 200\nclosing", ""},
		{"a word, not an error", "Errors: 0\nno Error here", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := firstError(strings.Split(tc.out, "\n")); got != tc.want {
				t.Errorf("firstError = %q, want %q", got, tc.want)
			}
		})
	}
}
