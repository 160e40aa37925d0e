package hap

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func FuzzParseStats(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(fixtures, "*.csv"))
	for _, file := range files {
		f.Add(readFixture(f, filepath.Base(file)))
	}
	f.Add([]byte("# pxname,svname,stot,lastsess\nbe_a,BACKEND,1,-1\n# pxname,svname\nbe_a,BACKEND\n"))
	f.Add([]byte("# pxname,svname,check_desc\nbe_a,s,\"a,\"\"b\",\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		rows, err := ParseBytes(data)
		if err != nil {
			return
		}
		if dumps := splitDumps(data); bytes.HasPrefix(dumps[0], []byte("#")) {
			checkMerge(t, dumps) // every dump has its header: Merge must agree
		}
		seen := map[string]bool{}
		for _, r := range rows {
			if r.Proxy == "" || r.Server == "" || r.Dumps < 1 {
				t.Fatalf("row without name or dump: %+v", r)
			}
			if r.Qcur < 0 || r.Scur < 0 || r.Stot < 0 || r.ReqTot < 0 || r.Lbtot < 0 ||
				r.Rate < 0 || r.ReqRate < 0 || r.LastSess < -1 {
				t.Fatalf("negative value: %+v", r)
			}
			k := r.Proxy + "\x00" + r.Server
			if seen[k] {
				t.Fatalf("row %s/%s twice", r.Proxy, r.Server)
			}
			seen[k] = true
		}
	})
}

// statsFor10kApps is a `show stat` dump of HAProxy 2.6 with n apps, each
// with one instance and the waker as backup, as the router configures them.
func statsForApps(tb testing.TB, n int) []byte {
	src := string(readFixture(tb, "show-stat-haproxy26-local-capture-scale-to-zero-backup.csv"))
	lines := strings.Split(src, "\n")
	var app []string
	for _, l := range lines[1:] {
		if strings.HasPrefix(l, "be_app1,") {
			app = append(app, l)
		}
	}
	var b strings.Builder
	b.WriteString(lines[0] + "\n")
	for i := range n {
		name := fmt.Sprintf("app_app%05d,", i)
		for _, l := range app {
			b.WriteString(name + strings.TrimPrefix(l, "be_app1,") + "\n")
		}
	}
	return []byte(b.String())
}

func BenchmarkParseStats10kApps(b *testing.B) {
	data := statsForApps(b, 10000)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		rows, err := ParseBytes(data)
		if err != nil || len(rows) != 30000 {
			b.Fatalf("%d rows, %v", len(rows), err)
		}
	}
	b.ReportMetric(float64(time.Since(start).Microseconds())/1000/float64(b.N), "ms/parse")
}
