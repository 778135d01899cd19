package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/durablewasm/durablewasm/abi"
	"github.com/durablewasm/durablewasm/host/worker"
)

// readmeGoSection returns the shell commands (continuation lines joined)
// and the Go file of the README's "Writing orchestrations in Go" section, in
// the order the section gives them.
func readmeGoSection(t *testing.T) (shell [][]string, mainGo string) {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "## Writing orchestrations in Go\n")
	if i < 0 {
		t.Fatal("README has no section \"Writing orchestrations in Go\"")
	}
	s = s[i:]
	if j := strings.Index(s[3:], "\n## "); j >= 0 {
		s = s[:j+3]
	}
	blocks := strings.Split(s, "```")
	for k := 1; k < len(blocks); k += 2 {
		lang, body, _ := strings.Cut(blocks[k], "\n")
		switch lang {
		case "go":
			if mainGo == "" {
				mainGo = body
			}
		case "sh":
			if len(shell) > 0 {
				continue // the first block builds; the second deploys
			}
			joined := strings.ReplaceAll(body, "\\\n", " ")
			for _, line := range strings.Split(joined, "\n") {
				if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
					shell = append(shell, strings.Fields(line))
				}
			}
		}
	}
	if len(shell) == 0 || mainGo == "" {
		t.Fatal("the README's Go section has no build commands or no Go file")
	}
	return shell, mainGo
}

// TestDurableGuestOwnModule builds a guest in a module of its own, in a
// temporary directory outside this repository, following the README's
// "Writing orchestrations in Go" alone: its commands (mkdir, cd, go mod
// init, go mod edit with the replace directives, go mod tidy, go build) and
// its main.go. The replace directives point at this checkout, as the README
// says to do while the SDK is unpublished; GOWORK=off and GOPROXY=off prove
// that the module needs nothing else (no go.work, no download). The module
// is then deployed and its Hello orchestration run.
func TestDurableGuestOwnModule(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	shell, mainGo := readmeGoSection(t)
	dir := t.TempDir()
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	env := append(os.Environ(), "GOWORK=off", "GOPROXY=off", "GOFLAGS=")
	var wasmPath string
	for _, args := range shell {
		for k, a := range args {
			args[k] = strings.ReplaceAll(a, "/path/to/durablewasm", root)
		}
		var envAdd []string
		for len(args) > 0 && strings.Contains(args[0], "=") {
			envAdd, args = append(envAdd, args[0]), args[1:]
		}
		switch args[0] {
		case "mkdir":
			dir = filepath.Join(dir, args[1])
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		case "cd":
			continue // into the directory just made
		case "go":
		default:
			t.Fatalf("README command %q: the test does not know how to run it", strings.Join(args, " "))
		}
		if args[1] == "mod" && args[2] == "tidy" {
			// "write main.go (below), then:"
			if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(mainGo), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		for k, a := range args {
			if a == "-o" && k+1 < len(args) {
				wasmPath = filepath.Join(dir, args[k+1])
			}
		}
		cmd := exec.Command(goBin, args[1:]...)
		cmd.Dir, cmd.Env = dir, append(append([]string(nil), env...), envAdd...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	goMod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	// The guest's module graph holds the SDK and abi, nothing of the runtime.
	cmd := exec.Command(goBin, "list", "-m", "all")
	cmd.Dir, cmd.Env = dir, env
	mods, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list -m all: %v\n%s", err, mods)
	}
	if got := strings.Fields(string(mods)); len(got) != 1+2*4 || strings.Contains(string(mods), "wazero") || strings.Contains(string(mods), "redis") {
		t.Fatalf("the guest's modules are not the SDK and abi alone:\n%s\ngo.mod:\n%s", mods, goMod)
	}
	if wasmPath == "" {
		t.Fatal("the README's build command has no -o")
	}
	wasm, err := os.ReadFile(wasmPath)
	if err != nil {
		t.Fatal(err)
	}

	e := newEnv(t, miniURL(t))
	e.deploy("hello", wasm)
	e.worker(worker.Options{})
	e.start("Hello", "own-module", `["Tokyo","Seattle"]`)
	st := e.wait("own-module", 30*time.Second)
	var out []string
	if st.Status != abi.StatusCompleted || json.Unmarshal([]byte(st.Output), &out) != nil ||
		strings.Join(out, "|") != "Hello Tokyo!|Hello Seattle!" {
		t.Fatalf("status %s output %s failure %+v", st.Status, st.Output, st.Failure)
	}
	// An application error reaches the client with its type.
	e.start("Hello", "own-module-bad", `[""]`)
	st = e.wait("own-module-bad", 30*time.Second)
	if st.Status != abi.StatusFailed || st.Failure == nil || st.Failure.Inner == nil || st.Failure.Inner.Type != "InvalidName" || !st.Failure.Inner.NonRetryable {
		t.Fatalf("status %s failure %+v", st.Status, st.Failure)
	}
}
