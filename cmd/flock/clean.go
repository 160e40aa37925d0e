package main

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// Everything the CLI prints that someone else wrote (an app's name, a
// pusher's name, a commit message, an app's log, a build's output) goes
// through a cleaner first: a terminal obeys escape sequences in what it
// prints, so a string with ESC in it could retitle the window, rewrite
// the clipboard (OSC 52), move the cursor to hide lines or repaint them.
// The cleaner drops escape sequences whole (CSI, OSC and the other
// string sequences, two-byte escapes), 8-bit C1 controls, other control
// characters but newline and tab, and the bidirectional overrides that
// make text read backwards; invalid UTF-8 becomes U+FFFD.

type escState int

const (
	escNone      escState = iota
	escStart              // after ESC
	escCSI                // ESC [ or CSI: parameters until a final byte
	escString             // OSC, DCS, SOS, PM, APC: until BEL or ST
	escStringEsc          // ESC inside a string: ST if "\" follows
)

// cleaner is an io.Writer that writes what it is given to w, cleaned. It
// keeps state between writes, so a sequence split across them is still
// dropped whole.
type cleaner struct {
	w    io.Writer
	st   escState
	pend []byte // the start of a UTF-8 sequence cut by the last write
	// oneLine turns newlines and tabs into spaces (for table cells).
	oneLine bool
}

func (c *cleaner) Write(p []byte) (int, error) {
	in := p
	if len(c.pend) > 0 {
		in = append(c.pend, p...)
		c.pend = nil
	}
	out := make([]byte, 0, len(in))
	for i := 0; i < len(in); {
		r, n := utf8.DecodeRune(in[i:])
		if r == utf8.RuneError && n <= 1 && !utf8.FullRune(in[i:]) {
			c.pend = append([]byte(nil), in[i:]...)
			break
		}
		i += n
		out = c.rune(out, r)
	}
	if _, err := c.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// flush writes a UTF-8 sequence left incomplete at the end as U+FFFD.
func (c *cleaner) flush() error {
	if len(c.pend) == 0 {
		return nil
	}
	c.pend = nil
	_, err := c.w.Write(c.rune(nil, utf8.RuneError))
	return err
}

// rune appends r to out if it is text, and moves through escape sequences.
func (c *cleaner) rune(out []byte, r rune) []byte {
	switch c.st {
	case escStart:
		switch {
		case r == '[':
			c.st = escCSI
		case r == ']' || r == 'P' || r == 'X' || r == '^' || r == '_':
			c.st = escString
		case r >= 0x20 && r <= 0x2f: // intermediate bytes: ESC ( B
		default:
			c.st = escNone // the final byte of a two-byte escape
		}
		return out
	case escCSI:
		if r >= 0x20 && r <= 0x3f {
			return out
		}
		c.st = escNone
		if r >= 0x40 && r <= 0x7e {
			return out
		}
		// Not part of a sequence after all: treat r as text below.
	case escString, escStringEsc:
		switch {
		case r == 0x07 || r == 0x9c || (c.st == escStringEsc && r == '\\'):
			c.st = escNone
		case r == '\n': // an unterminated string does not eat the next lines
			c.st = escNone
			return c.text(out, r)
		case r == 0x1b:
			c.st = escStringEsc
		default:
			c.st = escString
		}
		return out
	}
	switch {
	case r == 0x1b:
		c.st = escStart
	case r == 0x9b:
		c.st = escCSI
	case r == 0x90 || r == 0x98 || r == 0x9d || r == 0x9e || r == 0x9f:
		c.st = escString
	default:
		return c.text(out, r)
	}
	return out
}

func (c *cleaner) text(out []byte, r rune) []byte {
	switch {
	case r == '\n' || r == '\t':
		if c.oneLine {
			r = ' '
		}
	case r < 0x20 || (r >= 0x7f && r <= 0x9f): // C0 (CR too: it overwrites a line), DEL, C1
		return out
	case (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069) || r == 0x200e || r == 0x200f:
		return out // bidirectional overrides and marks
	}
	return utf8.AppendRune(out, r)
}

// cleanReader reads r cleaned (lines and tabs kept).
type cleanReader struct {
	r     io.Reader
	c     cleaner
	buf   bytes.Buffer
	chunk [32 << 10]byte
	err   error
}

func newCleanReader(r io.Reader) io.Reader {
	cr := &cleanReader{r: r}
	cr.c.w = &cr.buf
	return cr
}

func (cr *cleanReader) Read(p []byte) (int, error) {
	for cr.buf.Len() == 0 && cr.err == nil {
		n, err := cr.r.Read(cr.chunk[:])
		cr.c.Write(cr.chunk[:n])
		if err != nil {
			cr.c.flush()
			cr.err = err
		}
	}
	if cr.buf.Len() > 0 {
		return cr.buf.Read(p)
	}
	return 0, cr.err
}

// clean returns s fit to print in a table cell: one line, no escapes.
func clean(s string) string {
	var b strings.Builder
	c := &cleaner{w: &b, oneLine: true}
	c.Write([]byte(s))
	c.flush()
	return b.String()
}

// cleanText returns s fit to print as text: lines and tabs kept, no
// escapes.
func cleanText(s string) string {
	var b strings.Builder
	c := &cleaner{w: &b}
	c.Write([]byte(s))
	c.flush()
	return b.String()
}

// escapeC1 writes the C1 controls (U+0080 to U+009F) in JSON text as \u
// escapes: encoding/json escapes the C0 ones but prints these as they
// are, and some terminals obey them. In JSON they can only stand inside
// strings, where the escape means the same.
func escapeC1(js string) string {
	var b strings.Builder
	for _, r := range js {
		if r >= 0x80 && r <= 0x9f {
			fmt.Fprintf(&b, "\\u%04x", r)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
