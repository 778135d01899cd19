//go:build !linux

package sandbox

import "github.com/tetratelabs/wazero/experimental"

func memoryAllocator(limit uint64) experimental.MemoryAllocator { return nil }
