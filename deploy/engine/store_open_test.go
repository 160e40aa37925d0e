package engine

import (
	"errors"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flock-paas/flock/deploy"
	"github.com/flock-paas/flock/deploy/testkit"

	bolt "go.etcd.io/bbolt"
)

// fillStore creates a store in dir with a few apps and releases and closes
// it, as a stopped Flock leaves it.
func fillStore(t *testing.T, dir string) {
	t.Helper()
	s, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, app := range []string{"a", "b", "c"} {
		if _, err := s.updateApp(app, true, func(r *appRecord) error { r.Current, r.Desired = "v1", 1; return nil }); err != nil {
			t.Fatal(err)
		}
		for v := 1; v <= 20; v++ {
			rel := deploy.Release{App: app, Name: deploy.ReleaseName(v), Version: v, Env: map[string]string{"K": strings.Repeat("x", 500)}}
			if err := s.putRelease(rel); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

// runFix runs the shell command the error tells the operator to run.
func runFix(t *testing.T, err error) {
	t.Helper()
	msg := err.Error()
	i := strings.Index(msg, "run: ")
	if i < 0 {
		t.Fatalf("error says no command to run: %v", err)
	}
	if out, err := exec.Command("sh", "-c", msg[i+len("run: "):]).CombinedOutput(); err != nil {
		t.Fatalf("recovery command: %v %s", err, out)
	}
}

func TestStoreRefusesDamageAndRestoresFromItsCopy(t *testing.T) {
	tests := []struct {
		name   string
		damage func(t *testing.T, path string)
		want   string
	}{
		{"truncated", func(t *testing.T, path string) {
			fi, _ := os.Stat(path)
			if err := os.Truncate(path, fi.Size()/2); err != nil {
				t.Fatal(err)
			}
		}, "is damaged"},
		{"empty", func(t *testing.T, path string) {
			if err := os.Truncate(path, 0); err != nil {
				t.Fatal(err)
			}
		}, "is empty (0 bytes)"},
		{"garbled meta pages", func(t *testing.T, path string) { garble(t, path, 0, 8192) }, "is damaged"},
		{"garbled data pages", func(t *testing.T, path string) { garble(t, path, 8192, -1) }, "is damaged"},
		{"garbled page header", func(t *testing.T, path string) {
			off := offsetOf(t, path, `"K":"xxx`) / 4096 * 4096
			garble(t, path, off, off+16)
		}, "is damaged"},
		{"garbled record", func(t *testing.T, path string) {
			// Old copies of the record lie in free pages: spoil them all.
			data, _ := os.ReadFile(path)
			data = []byte(strings.ReplaceAll(string(data), `{"name":"b"`, `#"name":"b"`))
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
		}, "is not JSON"},
		{"missing", func(t *testing.T, path string) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		}, "is missing but its copy"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			fillStore(t, dir)
			path := filepath.Join(dir, storeFile)
			tc.damage(t, path)

			s, err := OpenStore(dir)
			if err == nil {
				s.Close()
				t.Fatal("OpenStore accepted the store")
			}
			var se *StoreError
			if !errors.As(err, &se) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q: want a StoreError naming %s and saying %q", err, path, tc.want)
			}
			if !strings.Contains(err.Error(), "(3 apps;") {
				t.Errorf("error %q: want it to describe the copy (3 apps)", err)
			}
			// The failed start left the copy as it was.
			runFix(t, err)
			s, err = OpenStore(dir)
			if err != nil {
				t.Fatalf("after the recovery the error says: %v", err)
			}
			defer s.Close()
			recs, err := s.apps()
			if err != nil || len(recs) != 3 {
				t.Fatalf("apps after recovery: %d, %v; want 3", len(recs), err)
			}
			if rels, err := s.releases("b"); err != nil || len(rels) != 20 {
				t.Errorf("releases of b after recovery: %d, %v; want 20", len(rels), err)
			}
		})
	}
}

func offsetOf(t *testing.T, path, s string) int64 {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(string(data), s)
	if i < 0 {
		t.Fatalf("%s holds no %s", path, s)
	}
	return int64(i)
}

func garble(t *testing.T, path string, from, to int64) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if to < 0 || to > int64(len(data)) {
		to = int64(len(data))
	}
	rand.New(rand.NewSource(1)).Read(data[from:to])
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestStoreWithoutCopySaysHowToStartEmpty(t *testing.T) {
	dir := t.TempDir()
	fillStore(t, dir)
	os.Remove(filepath.Join(dir, backupFile))
	garble(t, filepath.Join(dir, storeFile), 0, 8192)
	_, err := OpenStore(dir)
	if err == nil || !strings.Contains(err.Error(), "there is no copy") || !strings.Contains(err.Error(), "mv ") {
		t.Fatalf("error %v: want it to say there is no copy and how to move the file away", err)
	}
}

func TestSecondOpenSaysAnotherFlockHoldsTheDataDir(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = OpenStore(dir)
	if err == nil || !strings.Contains(err.Error(), "another Flock holds the data dir "+dir) {
		t.Fatalf("second open: %v; want it to name the data dir another Flock holds", err)
	}
	var se *StoreError
	if errors.As(err, &se) {
		t.Errorf("a held store is not a damaged one: %v", err)
	}
}

func TestStoreCopiesChangesToItsBackup(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.updateApp("web", true, func(r *appRecord) error { return nil }); err != nil {
		t.Fatal(err)
	}
	bak := filepath.Join(dir, backupFile)
	testkit.WaitFor(t, 10*time.Second, "the new app in flock.db.bak", func() bool { return appsIn(t, bak) == 1 })
}

func appsIn(t *testing.T, path string) int {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	n := 0
	db.View(func(tx *bolt.Tx) error { n = tx.Bucket(bucketApps).Stats().KeyN; return nil })
	return n
}
