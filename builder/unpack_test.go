package builder

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestUnpack(t *testing.T) {
	archive := tarGz(t,
		entry{name: "./", typ: tar.TypeDir, mode: 0o755},
		entry{name: "app/", typ: tar.TypeDir, mode: 0o700},
		entry{name: "app/run.sh", body: "#!/bin/sh\n", mode: 0o4755},
		entry{name: "deep/er/file.txt", body: "created with its folders"},
		entry{name: "node_modules/.bin/x", typ: tar.TypeSymlink, link: "../x/bin/x.js"},
		entry{name: "node_modules/x/bin/x.js", body: "js"},
		entry{name: "self", typ: tar.TypeSymlink, link: "."},
		entry{name: "dup", body: "first"},
		entry{name: "dup", body: "second"},
	)
	dst := t.TempDir()
	if err := Unpack(bytes.NewReader(archive), dst, 1<<20); err != nil {
		t.Fatalf("Unpack: %v", err)
	}
	want := []string{"app/run.sh", "deep/er/file.txt", "dup", "node_modules/.bin/x -> ../x/bin/x.js", "node_modules/x/bin/x.js", "self -> ."}
	if diff := cmp.Diff(want, files(t, dst)); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
	fi, err := os.Stat(filepath.Join(dst, "app/run.sh"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode() != 0o755 {
		t.Errorf("run.sh mode = %v, want -rwxr-xr-x (setuid dropped)", fi.Mode())
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "dup")); string(b) != "second" {
		t.Errorf("dup = %q, want the last entry's content", b)
	}
}

func TestUnpackRejects(t *testing.T) {
	gz := func(data string) []byte {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		zw.Write([]byte(data))
		zw.Close()
		return buf.Bytes()
	}
	good := tarGz(t, entry{name: "a.txt", body: strings.Repeat("x", 1000)})
	tests := []struct {
		name    string
		data    []byte
		max     int64
		wantErr string
	}{
		{"empty", nil, 0, "unpack: the archive is empty"},
		{"not gzip", []byte("PK\x03\x04 a zip file"), 0, "unpack: not a gzip archive (expected a .tar.gz)"},
		{"plain tar", []byte("a.txt\x00\x00\x00\x00"), 0, "unpack: not a gzip archive (expected a .tar.gz)"},
		{"gzip but not tar", gz(strings.Repeat("hello ", 200)), 0, "unpack: not a valid tar.gz archive"},
		{"truncated", good[:len(good)/2], 0, "unpack: "},
		{"parent path", tarGz(t, entry{name: "../evil", body: "x"}), 0, `unpack: entry "../evil": path escapes the target folder`},
		{"parent path inside", tarGz(t, entry{name: "a/../../evil", body: "x"}), 0, `unpack: entry "a/../../evil": path escapes the target folder`},
		{"absolute path", tarGz(t, entry{name: "/tmp/evil", body: "x"}), 0, `unpack: entry "/tmp/evil": absolute paths are not allowed`},
		{"absolute link", tarGz(t, entry{name: "l", typ: tar.TypeSymlink, link: "/etc/passwd"}), 0, `unpack: entry "l": symbolic link to "/etc/passwd" points outside the folder`},
		{"link up", tarGz(t, entry{name: "a/l", typ: tar.TypeSymlink, link: "../../x"}), 0, `unpack: entry "a/l": symbolic link to "../../x" points outside the folder`},
		{"link through link", tarGz(t,
			entry{name: "sub/b", typ: tar.TypeSymlink, link: "../a"},
			entry{name: "sub/l", typ: tar.TypeSymlink, link: "b/../.."}), 0, `unpack: entry "sub/l": symbolic link to "b/../.." points outside the folder`},
		{"write through link", tarGz(t,
			entry{name: "d", typ: tar.TypeSymlink, link: "."},
			entry{name: "d/l", typ: tar.TypeSymlink, link: ".."}), 0, `unpack: entry "d/l": path goes through the symbolic link "d"`},
		{"hard link", tarGz(t, entry{name: "a", body: "x"}, entry{name: "h", typ: tar.TypeLink, link: "a"}), 0, `unpack: entry "h": hard links are not allowed`},
		{"device", tarGz(t, entry{name: "null", typ: tar.TypeChar}), 0, `unpack: entry "null": devices are not allowed`},
		{"block device", tarGz(t, entry{name: "sda", typ: tar.TypeBlock}), 0, `unpack: entry "sda": devices are not allowed`},
		{"fifo", tarGz(t, entry{name: "p", typ: tar.TypeFifo}), 0, `unpack: entry "p": fifos are not allowed`},
		{"too big", good, 999, `unpack: entry "a.txt": the archive's files add up to more than 999 bytes`},
		{"too big in sum", tarGz(t, entry{name: "a", body: "12345"}, entry{name: "b", body: "12345"}), 8, `unpack: entry "b": the archive's files add up to more than 8 bytes`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parent := t.TempDir()
			dst := filepath.Join(parent, "dst")
			err := Unpack(bytes.NewReader(tt.data), dst, tt.max)
			if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want %q", err, tt.wantErr)
			}
			entries, _ := os.ReadDir(parent)
			for _, e := range entries {
				if e.Name() != "dst" {
					t.Errorf("Unpack wrote %s outside its folder", e.Name())
				}
			}
		})
	}
}

// FuzzUnpack checks that no archive panics Unpack or writes outside its
// folder.
func FuzzUnpack(f *testing.F) {
	f.Add(tarGz(f, entry{name: "a/b.txt", body: "hi"}, entry{name: "l", typ: tar.TypeSymlink, link: "a/b.txt"}))
	f.Add(tarGz(f, entry{name: "../x", body: "hi"}))
	f.Fuzz(func(t *testing.T, data []byte) {
		parent := t.TempDir()
		_ = Unpack(bytes.NewReader(data), filepath.Join(parent, "dst"), 1<<20)
		entries, _ := os.ReadDir(parent)
		for _, e := range entries {
			if e.Name() != "dst" {
				t.Fatalf("Unpack wrote %s outside its folder", e.Name())
			}
		}
		filepath.Walk(filepath.Join(parent, "dst"), func(p string, fi os.FileInfo, err error) error {
			if err == nil && fi.Mode()&os.ModeSymlink != 0 {
				target, _ := os.Readlink(p)
				if filepath.IsAbs(target) {
					t.Fatalf("absolute link %s -> %s", p, target)
				}
			}
			if err == nil && !fi.IsDir() && !fi.Mode().IsRegular() && fi.Mode()&os.ModeSymlink == 0 {
				t.Fatalf("special file %s (%v)", p, fi.Mode())
			}
			return nil
		})
	})
}
