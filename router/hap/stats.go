package hap

import (
	"bytes"
	"errors"
	"fmt"
	"math"
)

// Names of HAProxy's pseudo servers: the rows that sum up a proxy.
const (
	Frontend = "FRONTEND"
	Backend  = "BACKEND"
)

// Row is one line of HAProxy's stats CSV (`show stat`, `/stats;csv`): a
// frontend, a backend, or one server of a backend. When the input holds
// several dumps (the current worker and the old workers still serving
// connections after a reload), the rows of one proxy and server are merged:
// counters and current values are summed, LastSess is the most recent one,
// Status is the first dump's.
//
// A column that the dump lacks (older HAProxy) reads as 0, LastSess as -1.
type Row struct {
	Proxy  string // pxname: "app_hello"
	Server string // svname: a server's name, or Frontend or Backend
	Qcur   int64  // requests queued now, waiting for a server
	Scur   int64  // sessions open now (a websocket or SSE stream is one)
	Stot   int64  // sessions since the process started (HTTP: one per request)
	ReqTot int64  // HTTP requests since the process started (frontends, backends)
	Lbtot  int64  // times a server was picked by load balancing
	Rate   int64  // sessions over the last second
	// ReqRate is HTTP requests over the last second (frontends only).
	ReqRate int64
	// LastSess is how many seconds ago the last session was assigned, -1
	// when never (or unknown). Across dumps the smallest known value wins.
	LastSess int64
	// Status is "UP", "DOWN", "MAINT", "DRAIN", "no check", "OPEN", …
	Status string
	// Backup is true for a server that only serves when no active server
	// is up (bck=1): Flock's waker.
	Backup bool
	// Dumps is how many dumps had this row.
	Dumps int
}

// WorkerStats is one HAProxy worker's `show stat` CSV, as the master
// socket returns it. After a reload the old workers keep serving the
// connections they held, each with its own counters, which start from 0
// in a new worker and leave with an old one: whoever counts requests
// across a reload must tell the workers apart by Pid.
type WorkerStats struct {
	Pid int
	// Current is false for an old worker that still serves connections it
	// held when a reload happened.
	Current bool
	CSV     []byte
}

// IsServer reports whether the row is a real server, not a FRONTEND or
// BACKEND summary.
func (r Row) IsServer() bool { return r.Server != Frontend && r.Server != Backend }

// Up reports whether a server takes new traffic: UP (possibly in a
// transition, "UP 1/3") or running without checks ("no check").
func (r Row) Up() bool {
	return r.Status == "no check" || r.Status == "UP" ||
		(len(r.Status) > 3 && r.Status[:3] == "UP ")
}

// columns are the indices of the columns ParseBytes reads, -1 if absent.
type columns struct {
	pxname, svname, qcur, scur, stot, reqTot, lbtot, rate, reqRate,
	lastsess, status, bck int
}

func newColumns(header []byte) (columns, error) {
	c := columns{-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1}
	idx := map[string]*int{
		"pxname": &c.pxname, "svname": &c.svname, "qcur": &c.qcur,
		"scur": &c.scur, "stot": &c.stot, "req_tot": &c.reqTot,
		"lbtot": &c.lbtot, "rate": &c.rate, "req_rate": &c.reqRate,
		"lastsess": &c.lastsess, "status": &c.status, "bck": &c.bck,
	}
	i := 0
	for f := range bytes.SplitSeq(header, []byte{','}) {
		name := string(bytes.TrimSpace(f))
		// The first occurrence wins: the columns after HAProxy 2.x's "-"
		// separator are per-module and must not shadow the main ones.
		if p, ok := idx[name]; ok && *p < 0 {
			*p = i
		}
		i++
	}
	if c.pxname < 0 || c.svname < 0 {
		return c, errors.New("header has no pxname or svname column")
	}
	return c, nil
}

// ParseBytes reads HAProxy stats CSV, one `show stat` dump or several
// concatenated. Columns are found by the header line (the first line that
// starts with "#"), so every HAProxy version's column set works; a new
// header starts a new dump, and the dumps are merged (see Row). Rows come
// out in the order they first appear. Lines before the first header and
// lines without a proxy name are skipped; input that has data but no
// header at all is an error.
func ParseBytes(data []byte) ([]Row, error) {
	var (
		rows    []Row
		index   = map[string]int{} // proxy "\x00" server → rows index
		cols    columns
		haveHdr bool
		sawData bool
		dump    int   // number of the current dump, from 1
		seenIn  []int // rows index → last dump that had the row
		fields  = make([][]byte, 0, 128)
		key     = make([]byte, 0, 128)
	)
	for len(data) > 0 {
		var line []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			line, data = data, nil
		}
		line = bytes.TrimRight(line, "\r")
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		if line[0] == '#' {
			c, err := newColumns(line[1:])
			if err != nil {
				return nil, fmt.Errorf("parse stats header: %w", err)
			}
			cols, haveHdr = c, true
			dump++
			continue
		}
		if !haveHdr {
			sawData = true
			continue
		}
		fields = splitCSV(line, fields[:0])
		px, sv := field(fields, cols.pxname), field(fields, cols.svname)
		if len(px) == 0 || len(sv) == 0 {
			continue
		}
		key = append(append(append(key[:0], px...), 0), sv...)
		i, ok := index[string(key)]
		if !ok {
			i = len(rows)
			index[string(key)] = i
			rows = append(rows, Row{Proxy: string(px), Server: string(sv), LastSess: -1})
			seenIn = append(seenIn, 0)
		}
		row := &rows[i]
		if seenIn[i] != dump {
			seenIn[i] = dump
			row.Dumps++
			if row.Dumps == 1 {
				row.Status = status(field(fields, cols.status))
			}
		}
		row.merge(&Row{
			Qcur:     num(field(fields, cols.qcur)),
			Scur:     num(field(fields, cols.scur)),
			Stot:     num(field(fields, cols.stot)),
			ReqTot:   num(field(fields, cols.reqTot)),
			Lbtot:    num(field(fields, cols.lbtot)),
			Rate:     num(field(fields, cols.rate)),
			ReqRate:  num(field(fields, cols.reqRate)),
			LastSess: age(field(fields, cols.lastsess)),
			Backup:   row.IsServer() && num(field(fields, cols.bck)) > 0,
		})
	}
	if !haveHdr && sawData {
		return nil, errors.New("parse stats: no header line (one starting with \"# \")")
	}
	return rows, nil
}

// merge adds r's values, the same proxy and server's in another dump, to
// row's (see Row); Status and Dumps are the caller's.
func (row *Row) merge(r *Row) {
	row.Qcur = add(row.Qcur, r.Qcur)
	row.Scur = add(row.Scur, r.Scur)
	row.Stot = add(row.Stot, r.Stot)
	row.ReqTot = add(row.ReqTot, r.ReqTot)
	row.Lbtot = add(row.Lbtot, r.Lbtot)
	row.Rate = add(row.Rate, r.Rate)
	row.ReqRate = add(row.ReqRate, r.ReqRate)
	if r.LastSess >= 0 && (row.LastSess < 0 || r.LastSess < row.LastSess) {
		row.LastSess = r.LastSess
	}
	row.Backup = row.Backup || r.Backup
}

// Merge merges the rows of several dumps, each parsed alone (one per
// HAProxy worker), as ParseBytes merges the dumps concatenated: whoever
// needs each worker's rows and the merged ones parses each dump once.
// One dump's rows are returned as they are.
func Merge(dumps ...[]Row) []Row {
	if len(dumps) == 1 {
		return dumps[0]
	}
	var (
		out   []Row
		index = map[string]int{} // proxy "\x00" server → out index, as ParseBytes
	)
	for _, rows := range dumps {
		for i := range rows {
			r := &rows[i]
			k := r.Proxy + "\x00" + r.Server
			j, ok := index[k]
			if !ok {
				index[k] = len(out)
				out = append(out, *r)
				continue
			}
			out[j].merge(r)
			out[j].Dumps += r.Dumps
		}
	}
	return out
}

// status returns b as a string, without allocating for the usual ones.
func status(b []byte) string {
	switch string(b) {
	case "UP":
		return "UP"
	case "DOWN":
		return "DOWN"
	case "no check":
		return "no check"
	case "OPEN":
		return "OPEN"
	case "MAINT":
		return "MAINT"
	case "DRAIN":
		return "DRAIN"
	}
	return string(b)
}

// splitCSV splits one CSV line into fields. HAProxy quotes a field only
// when it holds a comma or a quote (check descriptions); the quotes are
// kept, which is fine for the columns ParseBytes reads.
func splitCSV(line []byte, out [][]byte) [][]byte {
	start, quoted := 0, false
	for i, c := range line {
		switch {
		case c == '"':
			quoted = !quoted
		case c == ',' && !quoted:
			out = append(out, line[start:i])
			start = i + 1
		}
	}
	return append(out, line[start:])
}

func field(fields [][]byte, i int) []byte {
	if i < 0 || i >= len(fields) {
		return nil
	}
	return bytes.TrimSpace(fields[i])
}

// age parses a number of seconds; anything but digits (empty, "-1",
// text) is -1, unknown.
func age(b []byte) int64 {
	if len(b) == 0 {
		return -1
	}
	for _, c := range b {
		if c < '0' || c > '9' {
			return -1
		}
	}
	return num(b)
}

// num parses a decimal counter; anything else (empty, negative, text,
// overflow) is 0.
func num(b []byte) int64 {
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0
		}
		if n > (math.MaxInt64-int64(c-'0'))/10 {
			return 0
		}
		n = n*10 + int64(c-'0')
	}
	return n
}

// add sums two counters, ignoring negative ones and saturating instead of
// wrapping around.
func add(a, b int64) int64 {
	if b <= 0 {
		return a
	}
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}
