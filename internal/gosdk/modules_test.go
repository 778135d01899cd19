package gosdk_test

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// TestGuestSDKModules runs the tests of the abi and guest-sdk modules, which
// the root module's `go test ./...` does not reach (they are modules of their
// own, so that a guest depends on them alone), and checks that their go.mod
// files are tidy. So `go test ./...` from the root still covers them.
func TestGuestSDKModules(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go test in the nested modules")
	}
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	for _, dir := range []string{"abi", "guest-sdk"} {
		for _, args := range [][]string{
			{"mod", "tidy", "-diff"},
			{"vet", "./..."},
			{"test", "./..."},
		} {
			cmd := exec.Command(goBin, args...)
			cmd.Dir = filepath.Join("..", "..", dir)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("%s: go %v: %v\n%s", dir, args, err, out)
			}
		}
	}
}
