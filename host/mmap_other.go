//go:build !linux

package host

import "github.com/tetratelabs/wazero/experimental"

func memoryAllocator(limit uint64) experimental.MemoryAllocator { return nil }
