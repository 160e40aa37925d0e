package builder

import (
	"bufio"
	"os"
	"path"
	"regexp"
	"strings"
)

// ignoreRule is one line of a .gitignore or .flockignore file.
type ignoreRule struct {
	base    string // folder of the ignore file, relative to the root ("" at the root)
	re      *regexp.Regexp
	negate  bool // "!pattern" re-includes
	dirOnly bool // "pattern/" matches folders only
}

// ignoreRules are the rules in effect, in file order: the last rule that
// matches decides, as in git.
type ignoreRules []ignoreRule

// load appends the rules of the ignore file name in folder base.
func (rs ignoreRules) load(root, base, name string) ignoreRules {
	f, err := os.Open(path.Join(root, base, name))
	if err != nil {
		return rs // no such file, or unreadable: nothing to honour
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if r, ok := parseIgnore(base, sc.Text()); ok {
			rs = append(rs, r)
		}
	}
	return rs
}

// parseIgnore turns one line into a rule, following gitignore(5) for the
// common cases: comments, "!" negation, a trailing "/" for folders, a "/"
// at the start or in the middle anchoring the pattern to its folder, "*",
// "?", "[...]" and "**".
func parseIgnore(base, line string) (ignoreRule, bool) {
	line = strings.TrimRight(line, "\r")
	if !strings.HasSuffix(line, `\ `) {
		line = strings.TrimRight(line, " \t")
	}
	if line == "" || strings.HasPrefix(line, "#") {
		return ignoreRule{}, false
	}
	r := ignoreRule{base: base}
	if strings.HasPrefix(line, "!") {
		r.negate, line = true, line[1:]
	} else if strings.HasPrefix(line, `\!`) || strings.HasPrefix(line, `\#`) {
		line = line[1:]
	}
	if strings.HasSuffix(line, "/") {
		r.dirOnly, line = true, strings.TrimRight(line, "/")
	}
	if line == "" {
		return ignoreRule{}, false
	}
	anchored := strings.Contains(line, "/")
	line = strings.TrimPrefix(line, "/")
	var re strings.Builder
	re.WriteString("^")
	if !anchored {
		re.WriteString("(?:.*/)?")
	}
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case strings.HasPrefix(line[i:], "**/"):
			re.WriteString("(?:.*/)?")
			i += 2
		case strings.HasPrefix(line[i:], "/**") && i+3 == len(line):
			re.WriteString("/.*")
			i += 2
		case strings.HasPrefix(line[i:], "**"):
			re.WriteString(".*")
			i++
		case c == '*':
			re.WriteString("[^/]*")
		case c == '?':
			re.WriteString("[^/]")
		case c == '[':
			j := strings.IndexByte(line[i+1:], ']')
			if j < 0 {
				re.WriteString(`\[`)
				continue
			}
			class := line[i+1 : i+1+j]
			if strings.HasPrefix(class, "!") {
				class = "^" + class[1:]
			}
			re.WriteString("[" + strings.ReplaceAll(class, `\`, `\\`) + "]")
			i += j + 1
		case c == '\\' && i+1 < len(line):
			i++
			re.WriteString(regexp.QuoteMeta(line[i : i+1]))
		default:
			re.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	re.WriteString("$")
	compiled, err := regexp.Compile(re.String())
	if err != nil {
		return ignoreRule{}, false // a pattern git would not understand either
	}
	r.re = compiled
	return r, true
}

// ignored reports whether the entry at rel (slash-separated, relative to
// the root) is left out.
func (rs ignoreRules) ignored(rel string, dir bool) bool {
	out := false
	for _, r := range rs {
		if r.dirOnly && !dir {
			continue
		}
		p := rel
		if r.base != "" {
			if !strings.HasPrefix(rel, r.base+"/") {
				continue
			}
			p = rel[len(r.base)+1:]
		}
		if r.re.MatchString(p) {
			out = !r.negate
		}
	}
	return out
}
