package local

import (
	"regexp"
	"strings"
)

// errorLineRE matches the line of a crash that says what went wrong, in the
// forms the runtimes Flock builds print it:
//
//	Error: boom: missing DATABASE_URL                    (Node)
//	Error: Cannot find module 'express'                  (Node)
//	Error [ERR_MODULE_NOT_FOUND]: Cannot find package 'x' (Node, ESM)
//	TypeError: Cannot read properties of undefined        (Node)
//	ModuleNotFoundError: No module named 'flask'          (Python)
//	panic: runtime error: index out of range              (Go)
//	fatal error: all goroutines are asleep                (Go)
//	npm ERR! missing script: start                        (npm)
var errorLineRE = regexp.MustCompile(`^\s*(?:(?:[A-Za-z_$][\w$]*\.)*[A-Za-z_$]*(?:Error|Exception)(?: \[[A-Z0-9_]+\])?: \S|panic: |fatal error: |npm ERR! )`)

// errorLine reports whether line is the one a user needs to act on when
// an app fails at start: the error itself, not a stack frame.
func errorLine(line string) bool {
	return len(line) < 4096 && errorLineRE.MatchString(line)
}

// firstError returns the first error line of lines, "" when none is one.
// Python prints its traceback before the error, Node after it: the first
// line that states an error is the cause in both.
func firstError(lines []string) string {
	for _, l := range lines {
		if errorLine(l) {
			return strings.TrimSpace(l)
		}
	}
	return ""
}
