// Command guest is the samples guest module: every sample of package flows
// registered in one Wasm module. Build it with go generate ./samples (see
// samples.go), or:
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -trimpath -o samples.wasm ./samples/guest
package main

import (
	durable "github.com/durablewasm/durablewasm/guest-sdk"
	"github.com/durablewasm/durablewasm/samples/flows"
)

func init() { flows.Register(durable.DefaultRegistry) }

func main() {}
