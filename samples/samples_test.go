package samples

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"

	"github.com/durablewasm/durablewasm/abi"
)

// buildGuest builds ./guest exactly as the go:generate line in samples.go
// does, into dir.
func buildGuest(t *testing.T, dir string) []byte {
	t.Helper()
	out := filepath.Join(dir, "samples.wasm")
	cmd := exec.Command(filepath.Join(runtime.GOROOT(), "bin", "go"), "build",
		"-buildmode=c-shared", "-trimpath", "-buildvcs=false", "-ldflags=-buildid=", "-o", out, "./guest")
	// GOFLAGS from the environment must not change the bytes.
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "GOFLAGS=")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build samples guest: %v\n%s", err, msg)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestWasmIsFresh rebuilds the guest and compares it with the embedded
// module. The build is reproducible byte for byte with one Go toolchain
// (-trimpath, empty build id, no VCS stamping), so any difference means the
// sources (flows, guest-sdk, abi) changed after the last go generate.
func TestWasmIsFresh(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the guest module")
	}
	got := buildGuest(t, t.TempDir())
	if !bytes.Equal(got, Wasm) {
		t.Fatalf("samples.wasm is stale: run go generate ./samples (embedded %d bytes, fresh build %d bytes, %s)",
			len(Wasm), len(got), runtime.Version())
	}
}

// TestWasmExports checks that the embedded module exports exactly the ABI's
// functions and imports only host functions the ABI defines.
func TestWasmExports(t *testing.T) {
	ctx := context.Background()
	r := wazero.NewRuntime(ctx)
	defer r.Close(ctx)
	cm, err := r.CompileModule(ctx, Wasm)
	if err != nil {
		t.Fatal(err)
	}
	var exports []string
	for name := range cm.ExportedFunctions() {
		exports = append(exports, name)
	}
	sort.Strings(exports)
	want := []string{"_initialize", abi.ExportABIVersion, abi.ExportActivityRun, abi.ExportActivityResume, abi.ExportActivityDrop, abi.ExportAlloc, abi.ExportListFunctions,
		abi.ExportOrchestratorDrop, abi.ExportOrchestratorResume, abi.ExportOrchestratorStart}
	sort.Strings(want)
	if strings.Join(exports, ",") != strings.Join(want, ",") {
		t.Errorf("exports %v, want %v", exports, want)
	}
	known := map[string]bool{}
	for _, n := range []string{abi.ImportRegister, abi.ImportScheduleActivity, abi.ImportScheduleSubOrchestrator,
		abi.ImportCreateTimer, abi.ImportWaitEvent, abi.ImportCancelTask, abi.ImportSendEvent, abi.ImportPoll,
		abi.ImportTaskResult, abi.ImportNow, abi.ImportNewGUID, abi.ImportIsReplaying, abi.ImportSetCustomStatus,
		abi.ImportContinueAsNew, abi.ImportComplete, abi.ImportLog, abi.ImportHTTPRequest} {
		known[n] = true
	}
	for _, d := range cm.ImportedFunctions() {
		mod, name, _ := d.Import()
		if mod == abi.HostModule && !known[name] {
			t.Errorf("imports unknown host function %s", name)
		}
		if mod != abi.HostModule && mod != "wasi_snapshot_preview1" {
			t.Errorf("imports from unexpected module %s.%s", mod, name)
		}
	}
}
