// Package samples embeds the samples guest module: the classic Durable
// Functions samples (package flows) compiled to WebAssembly by ./guest.
//
// samples.wasm is committed and rebuilt with go generate ./samples; a test
// fails when it is stale. The build flags (-trimpath, an empty build id, no
// VCS stamping) make the build reproducible byte for byte with a given Go
// toolchain.
package samples

import _ "embed"

//go:generate env GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -buildvcs=false -ldflags=-buildid= -o samples.wasm ./guest

// Wasm is the samples guest module (wasip1 reactor). It registers the
// orchestrators E1_HelloSequence, HelloWorld, E2_BackupSiteContent,
// E3_Monitor, E4_SmsPhoneVerification, Counter and E5_SubOrchestration, the
// benchmark orchestrators Hello5, FanOut, WaitOne, Steps, StepsWait,
// Hello5IO and Hello5CPU, and their activities. Do not modify the slice.
//
//go:embed samples.wasm
var Wasm []byte
