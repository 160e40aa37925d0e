package deploy

import (
	"bufio"
	"bytes"
	"fmt"
	"regexp"
	"strings"
)

// procfileTypeRE is the rule for a Procfile's process type names, as
// Heroku's: letters, digits, '_' and '-'.
var procfileTypeRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,63}$`)

// ParseProcfile reads a Procfile: one "<type>: <command>" a line; blank
// lines and lines starting with '#' are skipped. A type given twice, a
// bad type name or an empty command is an error naming the line.
func ParseProcfile(data []byte) (map[string]string, error) {
	procs := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), maxDescriptorBytes)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, cmd, ok := strings.Cut(line, ":")
		name, cmd = strings.TrimSpace(name), strings.TrimSpace(cmd)
		switch {
		case !ok || !procfileTypeRE.MatchString(name):
			return nil, &DescriptorError{File: "Procfile", Rule: fmt.Sprintf("line %d must be \"<type>: <command>\" with a type of letters, digits, '_' or '-'", n)}
		case cmd == "" || strings.ContainsRune(cmd, 0):
			return nil, &DescriptorError{File: "Procfile", Rule: fmt.Sprintf("line %d: %s has no command", n, name)}
		case procs[name] != "":
			return nil, &DescriptorError{File: "Procfile", Rule: fmt.Sprintf("line %d: %s is given twice", n, name)}
		}
		procs[name] = cmd
	}
	if err := sc.Err(); err != nil {
		return nil, &DescriptorError{File: "Procfile", Rule: "cannot be read: " + err.Error()}
	}
	return procs, nil
}
