package redisstore

import (
	"crypto/sha1"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/durablewasm/durablewasm/internal/redistest"
)

// TestScriptRegistry: every lua/*.lua file but the prelude is registered
// exactly once and every registered script has its file; each file starts
// with its documentation header; a built script is the prelude plus its file
// with no placeholder left; and no other Go file of the package builds a
// script.
func TestScriptRegistry(t *testing.T) {
	entries, err := os.ReadDir("lua")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() || path.Ext(e.Name()) != ".lua" {
			t.Errorf("lua/%s: only *.lua files belong in lua/ (go:embed lua/*.lua embeds nothing else)", e.Name())
		}
	}
	files, err := fs.Glob(luaFiles, "lua/*.lua")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != len(entries) {
		t.Errorf("%d files embedded, %d in lua/", len(files), len(entries))
	}
	want := map[string]bool{}
	for _, f := range files {
		base := path.Base(f)
		if !strings.HasPrefix(readLua(base), "-- "+base+" ") {
			t.Errorf("%s does not start with its comment header %q", f, "-- "+base+" …")
		}
		if base != preludeFile {
			want[strings.TrimSuffix(base, ".lua")] = true
		}
	}
	placeholder := regexp.MustCompile(`\$[A-Z_]+`)
	seen := map[string]bool{}
	for _, sc := range scripts {
		if seen[sc.name] {
			t.Errorf("script %s is registered twice", sc.name)
		}
		seen[sc.name] = true
		if !want[sc.name] {
			t.Errorf("script %s is registered but there is no lua/%s.lua", sc.name, sc.name)
			continue
		}
		src := sc.src
		if src != scriptSource(readLua(sc.name+".lua")) {
			t.Errorf("script %s is not the prelude plus lua/%s.lua", sc.name, sc.name)
		}
		if h := fmt.Sprintf("%x", sha1.Sum([]byte(src))); sc.script.Hash() != h {
			t.Errorf("script %s is not built from its source: digest %s, want %s", sc.name, sc.script.Hash(), h)
		}
		if !strings.HasPrefix(src, "-- "+preludeFile+" ") {
			t.Errorf("script %s does not start with the prelude", sc.name)
		}
		if p := placeholder.FindString(src); p != "" {
			t.Errorf("script %s: placeholder %s is not substituted", sc.name, p)
		}
	}
	for name := range want {
		if !seen[name] {
			t.Errorf("lua/%s.lua is not registered (lua.go: register(%q))", name, name)
		}
	}
	gofiles, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range gofiles {
		if f == "lua.go" || f == "lua_test.go" {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), "NewScript(") || strings.Contains(string(b), "register(\"") {
			t.Errorf("%s builds a Lua script: scripts are files in lua/, registered in lua.go", f)
		}
	}
}

// TestScriptsLoad: every registered script compiles (SCRIPT LOAD, whose
// digest must be the script's) on miniredis and on a real redis-server, and
// preloadScripts loads them all.
func TestScriptsLoad(t *testing.T) {
	t.Run("miniredis", func(t *testing.T) {
		testScriptsLoad(t, redistest.Miniredis(t).Addr())
	})
	t.Run("redis", func(t *testing.T) {
		if testing.Short() {
			t.Skip("real Redis skipped in -short mode")
		}
		testScriptsLoad(t, redistest.StartServer(t))
	})
}

func testScriptsLoad(t *testing.T, addr string) {
	c := redis.NewClient(&redis.Options{Addr: addr})
	t.Cleanup(func() { c.Close() })
	if len(scripts) == 0 {
		t.Fatal("no scripts registered")
	}
	hashes := make([]string, len(scripts))
	for i, sc := range scripts {
		hashes[i] = sc.script.Hash()
		sha, err := c.ScriptLoad(ctx, sc.src).Result()
		if err != nil {
			t.Errorf("script %s (lua/%s.lua) does not compile: %v", sc.name, sc.name, err)
		} else if sha != hashes[i] {
			t.Errorf("script %s: SCRIPT LOAD digest %s, want %s", sc.name, sha, hashes[i])
		}
	}
	if err := c.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	preloadScripts(ctx, c)
	ok, err := c.ScriptExists(ctx, hashes...).Result()
	if err != nil {
		t.Fatal(err)
	}
	for i, loaded := range ok {
		if !loaded {
			t.Errorf("preloadScripts did not load script %s", scripts[i].name)
		}
	}
}
