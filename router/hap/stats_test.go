package hap

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// fixtures are real HAProxy stats captures (testdata/haproxy/SOURCES.md).
const fixtures = "testdata/haproxy"

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixtures, name))
	if err != nil {
		t.Fatalf("fixture: %v", err)
	}
	return b
}

// pick returns the rows of proxy/server pairs given as "proxy/server".
func pick(t *testing.T, rows []Row, keys ...string) []Row {
	t.Helper()
	var out []Row
	for _, k := range keys {
		px, sv, _ := strings.Cut(k, "/")
		found := false
		for _, r := range rows {
			if r.Proxy == px && r.Server == sv {
				out = append(out, r)
				found = true
			}
		}
		if !found {
			t.Errorf("no row %s", k)
		}
	}
	return out
}

func TestParseStatsFixtures(t *testing.T) {
	tests := []struct {
		file string
		rows int
		want []Row
	}{
		{
			file: "show-stat-haproxy26-local-capture-scale-to-zero-backup.csv",
			rows: 9,
			want: []Row{
				{Proxy: "be_app1", Server: "app1_task1", Stot: 6, ReqTot: 6, Lbtot: 6, LastSess: 3, Status: "UP", Dumps: 1},
				{Proxy: "be_app1", Server: "waker", Stot: 2, ReqTot: 2, Lbtot: 2, LastSess: 6, Status: "no check", Backup: true, Dumps: 1},
				{Proxy: "be_app1", Server: "BACKEND", Stot: 8, ReqTot: 8, Lbtot: 8, LastSess: 3, Status: "UP", Dumps: 1},
				// The scaled-to-zero app: only the waker, and it was used.
				{Proxy: "be_app2", Server: "waker", Stot: 1, ReqTot: 1, Lbtot: 1, LastSess: 6, Status: "no check", Backup: true, Dumps: 1},
				{Proxy: "be_app2", Server: "BACKEND", Stot: 1, ReqTot: 1, Lbtot: 1, LastSess: 6, Status: "UP", Dumps: 1},
				{Proxy: "fe_http", Server: "FRONTEND", Stot: 10, ReqTot: 10, LastSess: -1, Status: "OPEN", Dumps: 1},
			},
		},
		{
			file: "show-stat-haproxy26-local-capture-after-reload-counters-reset.csv",
			rows: 9,
			want: []Row{
				{Proxy: "be_app1", Server: "BACKEND", LastSess: -1, Status: "UP", Dumps: 1},
				{Proxy: "be_app2", Server: "BACKEND", LastSess: -1, Status: "UP", Dumps: 1},
				{Proxy: "be_app2", Server: "waker", LastSess: -1, Status: "no check", Backup: true, Dumps: 1},
			},
		},
		{
			file: "show-stat-haproxy17-demo-with-backup-servers.csv",
			rows: 13,
			want: []Row{
				{Proxy: "www", Server: "bck", Stot: 1483, Lbtot: 1371, LastSess: 1036557, Status: "UP", Backup: true, Dumps: 1},
				{Proxy: "git", Server: "bck", LastSess: -1, Status: "UP", Backup: true, Dumps: 1},
				{Proxy: "demo", Server: "BACKEND", Scur: 1, Stot: 24063, ReqTot: 24062, Rate: 1, LastSess: 0, Status: "UP", Dumps: 1},
			},
		},
		{
			file: "show-stat-marathon-lb-test-two-dumps-with-maint.csv",
			rows: 18,
			want: []Row{
				// In both dumps: summed, the first dump's status.
				{Proxy: "www", Server: "BACKEND", Stot: 2 * 1345945, Lbtot: 2 * 1342328, LastSess: 3, Status: "UP", Dumps: 2},
				{Proxy: "http-in", Server: "10_0_6_25_31184", Stot: 2 * 325347, LastSess: -1, Status: "UP", Dumps: 2},
				{Proxy: "http-in", Server: "10_0_6_25_23336", Qcur: 1, Stot: 2 * 325347, LastSess: -1, Status: "MAINT", Dumps: 2},
				// Only in the first dump.
				{Proxy: "foobar_8080", Server: "local", LastSess: -1, Status: "OPEN", Dumps: 1},
				// Only in the second.
				{Proxy: "http-in", Server: "IPv6-direct", Stot: 325347, LastSess: -1, Status: "OPEN", Dumps: 1},
			},
		},
	}
	files, _ := filepath.Glob(filepath.Join(fixtures, "*.csv"))
	if len(files) != len(tests) {
		t.Errorf("%d fixtures in %s, %d tested: add a case", len(files), fixtures, len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			rows, err := ParseBytes(readFixture(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != tt.rows {
				t.Errorf("got %d rows, want %d", len(rows), tt.rows)
			}
			var keys []string
			for _, w := range tt.want {
				keys = append(keys, w.Proxy+"/"+w.Server)
			}
			if diff := cmp.Diff(tt.want, pick(t, rows, keys...)); diff != "" {
				t.Errorf("rows (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseStats(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []Row
		wantErr bool
	}{
		{
			name: "columns found by name in any order, CRLF, no trailing comma",
			in:   "# svname,stot,pxname,scur,status,bck\r\nweb1,5,be_a,2,UP,0\r\n",
			want: []Row{{Proxy: "be_a", Server: "web1", Stot: 5, Scur: 2, Status: "UP", LastSess: -1, Dumps: 1}},
		},
		{
			name: "quoted field with a comma does not shift columns",
			in:   "# pxname,svname,check_desc,stot,\nbe_a,web1,\"Layer7, wrong status\",7,\n",
			want: []Row{{Proxy: "be_a", Server: "web1", Stot: 7, LastSess: -1, Dumps: 1}},
		},
		{
			name: "module columns after the - separator never shadow the main ones",
			in:   "# pxname,svname,scur,-,scur,\nbe_a,BACKEND,3,-,99,\n",
			want: []Row{{Proxy: "be_a", Server: "BACKEND", Scur: 3, LastSess: -1, Dumps: 1}},
		},
		{
			name: "junk before the header and short lines are skipped",
			in:   "Unknown command\n# pxname,svname,stot\nbe_a\n,,\nbe_a,BACKEND,1\n",
			want: []Row{{Proxy: "be_a", Server: "BACKEND", Stot: 1, LastSess: -1, Dumps: 1}},
		},
		{
			name: "old worker's dump: sessions summed, most recent lastsess, first status",
			in: "# pxname,svname,scur,stot,lastsess,status\nbe_a,BACKEND,0,2,-1,UP\n" +
				"# pxname,svname,scur,stot,lastsess,status\nbe_a,BACKEND,1,40,12,DOWN\n" +
				"# pxname,svname,scur,stot,lastsess,status\nbe_a,BACKEND,0,9,30,DOWN\n",
			want: []Row{{Proxy: "be_a", Server: "BACKEND", Scur: 1, Stot: 51, LastSess: 12, Status: "UP", Dumps: 3}},
		},
		{
			name: "garbage numbers read as zero, garbage lastsess as unknown",
			in:   "# pxname,svname,stot,scur,lastsess\nbe_a,BACKEND,99999999999999999999,-5,x\n",
			want: []Row{{Proxy: "be_a", Server: "BACKEND", LastSess: -1, Dumps: 1}},
		},
		{name: "empty", in: "", want: nil},
		{name: "data without header", in: "be_a,BACKEND,1\n", wantErr: true},
		{name: "header without names", in: "# a,b,c\nx,y,z\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseBytes([]byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("rows (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRowUp(t *testing.T) {
	for status, want := range map[string]bool{
		"UP": true, "UP 1/3": true, "no check": true,
		"DOWN": false, "DOWN 1/2": false, "MAINT": false, "DRAIN": false, "NOLB": false, "UPX": false,
	} {
		if got := (Row{Status: status}).Up(); got != want {
			t.Errorf("Up(%q) = %v, want %v", status, got, want)
		}
	}
}

// TestMerge: dumps parsed one by one and merged give the rows of the dumps
// parsed concatenated, for real captures of one and two dumps.
func TestMerge(t *testing.T) {
	two := readFixture(t, "show-stat-marathon-lb-test-two-dumps-with-maint.csv")
	for _, dumps := range [][][]byte{
		splitDumps(two),
		{readFixture(t, "show-stat-haproxy26-local-capture-scale-to-zero-backup.csv"),
			readFixture(t, "show-stat-haproxy26-local-capture-after-reload-counters-reset.csv")},
		{readFixture(t, "show-stat-haproxy17-demo-with-backup-servers.csv")},
	} {
		checkMerge(t, dumps)
	}
	if n := len(splitDumps(two)); n != 2 {
		t.Fatalf("two-dump fixture split in %d", n)
	}
}

// splitDumps cuts data before each header line but the first.
func splitDumps(data []byte) [][]byte {
	var out [][]byte
	for {
		i := bytes.Index(data, []byte("\n#"))
		if i < 0 {
			return append(out, data)
		}
		out, data = append(out, data[:i+1]), data[i+1:]
	}
}

// checkMerge fails when Merge of each dump's rows differs from ParseBytes
// of the dumps concatenated (both must parse).
func checkMerge(t *testing.T, dumps [][]byte) {
	t.Helper()
	var each [][]Row
	for _, d := range dumps {
		rows, err := ParseBytes(d)
		if err != nil {
			return
		}
		each = append(each, rows)
	}
	want, err := ParseBytes(bytes.Join(dumps, nil))
	if err != nil {
		t.Fatalf("concatenated dumps: %v", err)
	}
	if diff := cmp.Diff(want, Merge(each...), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("Merge differs from ParseBytes (-ParseBytes +Merge):\n%s", diff)
	}
}
