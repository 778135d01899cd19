//go:build !linux

package host

import "github.com/tetratelabs/wazero/experimental"

func memoryAllocator() experimental.MemoryAllocator { return nil }
