package webhook

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type entry struct {
	name, body, link string
	typ              byte
	mode             int64
}

func makeTar(t *testing.T, entries []entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		mode := e.mode
		if mode == 0 {
			mode = 0o644
		}
		hdr := &tar.Header{Name: e.name, Typeflag: typ, Mode: mode, Size: int64(len(e.body)), Linkname: e.link}
		if typ != tar.TypeReg {
			hdr.Size = 0
		}
		if typ == tar.TypeXGlobalHeader {
			hdr = &tar.Header{Typeflag: typ, PAXRecords: map[string]string{"comment": "0123abcd"}}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if typ == tar.TypeReg {
			tw.Write([]byte(e.body))
		}
	}
	tw.Close()
	return buf.Bytes()
}

func TestExtractTar(t *testing.T) {
	tests := []struct {
		name    string
		entries []entry
		wantErr string
	}{
		{name: "files, folders, exec bit and inner links", entries: []entry{
			{name: "pax_global_header", typ: tar.TypeXGlobalHeader},
			{name: "app/", typ: tar.TypeDir},
			{name: "app/run.sh", body: "#!/bin/sh\n", mode: 0o755},
			{name: "lib/x.js", body: "x"},
			{name: "app/lib", typ: tar.TypeSymlink, link: "../lib"},
		}},
		{name: "dot-dot name", entries: []entry{{name: "../evil", body: "x"}}, wantErr: "names must stay inside"},
		{name: "nested dot-dot", entries: []entry{{name: "a/../../evil", body: "x"}}, wantErr: "names must stay inside"},
		{name: "absolute name", entries: []entry{{name: "/tmp/evil", body: "x"}}, wantErr: "names must stay inside"},
		{name: "link to absolute", entries: []entry{{name: "l", typ: tar.TypeSymlink, link: "/etc"}}, wantErr: "points outside"},
		{name: "link up", entries: []entry{{name: "a/l", typ: tar.TypeSymlink, link: "../../etc"}}, wantErr: "points outside"},
		{name: "link through link", entries: []entry{
			{name: "a/up", typ: tar.TypeSymlink, link: ".."},
			{name: "b", typ: tar.TypeSymlink, link: "a/up/a/up/.."},
		}, wantErr: "leads outside"},
		{name: "write through link", entries: []entry{
			{name: "a", typ: tar.TypeSymlink, link: "."},
			{name: "a/../x", body: "x"},
			{name: "a/b", body: "x"},
		}},
		{name: "hard link", entries: []entry{{name: "h", typ: tar.TypeLink, link: "/etc/passwd"}}, wantErr: "not a file, folder or link"},
		{name: "device", entries: []entry{{name: "d", typ: tar.TypeChar}}, wantErr: "not a file, folder or link"},
		{name: "duplicate file", entries: []entry{{name: "f", body: "1"}, {name: "f", body: "2"}}, wantErr: "exists"},
		{name: "too big", entries: []entry{{name: "f", body: strings.Repeat("x", 2048)}}, wantErr: "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			err := extractTar(bytes.NewReader(makeTar(t, tt.entries)), dir, 1024)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestExtractTarKeepsModesAndLinks(t *testing.T) {
	dir := t.TempDir()
	err := extractTar(bytes.NewReader(makeTar(t, []entry{
		{name: "bin/run", body: "#!/bin/sh\n", mode: 0o755},
		{name: "lib/x.js", body: "module.exports = 1\n"},
		{name: "bin/lib", typ: tar.TypeSymlink, link: "../lib"},
	})), dir, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, "bin/run"))
	if err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("bin/run: %v, mode %v; want 0755", err, fi.Mode())
	}
	b, err := os.ReadFile(filepath.Join(dir, "bin/lib/x.js"))
	if err != nil || string(b) != "module.exports = 1\n" {
		t.Errorf("through link: %q, %v", b, err)
	}
}
