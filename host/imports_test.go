package host_test

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/durablewasm/durablewasm/"

// allowed lists, for each package under host, the packages of this module
// and the third-party modules it may import (the standard library is always
// allowed, except where forbidden below).
var allowed = map[string][]string{
	"host":         {"abi"},
	"host/dfjson":  {"abi", "host"},
	"host/replay":  {"abi"},
	"host/decide":  {"abi", "host", "host/replay"},
	"host/sandbox": {"abi", "host", "host/replay", "github.com/tetratelabs/wazero"},
	"host/worker":  {"abi", "host", "host/replay", "host/decide", "host/sandbox"},
	"host/client":  {"abi", "host", "host/replay", "host/sandbox"},
	"host/httpapi": {"abi", "host", "host/client", "host/dfjson"},
}

// pure packages decide without I/O: no network, files, processes or clock
// packages of the standard library.
var pure = map[string][]string{
	"host/replay": {"net", "os", "io/fs", "os/exec", "syscall", "math/rand", "time"},
	"host/decide": {"net", "os", "io/fs", "os/exec", "syscall", "math/rand", "crypto/rand"},
}

// TestImportRules checks the import direction written in the package doc:
// it reads the imports of every non-test file under host.
func TestImportRules(t *testing.T) {
	for pkg, ok := range allowed {
		dir := filepath.Join("..", pkg)
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil || len(files) == 0 {
			t.Fatalf("%s: no files (%v)", pkg, err)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			af, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, im := range af.Imports {
				path := strings.Trim(im.Path.Value, `"`)
				if bad := checkImport(pkg, path, ok); bad != "" {
					t.Errorf("%s imports %s: %s", f, path, bad)
				}
			}
		}
	}
	// Every package under host is in the table.
	err := filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() || strings.Contains(path, "testdata") {
			return err
		}
		if go_, _ := filepath.Glob(filepath.Join(path, "*.go")); len(go_) > 0 {
			rel := filepath.ToSlash(filepath.Join("host", path))
			if _, ok := allowed[rel]; !ok {
				t.Errorf("package %s is not in the import rules", rel)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// checkImport says why pkg may not import path ("" if it may).
func checkImport(pkg, path string, ok []string) string {
	if rel, in := strings.CutPrefix(path, module); in {
		for _, a := range ok {
			if rel == a {
				return ""
			}
		}
		return "not in its allowed imports " + strings.Join(ok, ", ")
	}
	if first, _, _ := strings.Cut(path, "/"); strings.Contains(first, ".") {
		for _, a := range ok {
			if path == a || strings.HasPrefix(path, a+"/") {
				return ""
			}
		}
		return "a third-party package it may not use"
	}
	for _, f := range pure[pkg] {
		if path == f || strings.HasPrefix(path, f+"/") {
			return "a pure package does no I/O and reads no clock"
		}
	}
	return ""
}
