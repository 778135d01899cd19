//go:build linux

package sandbox

import (
	"syscall"

	"github.com/tetratelabs/wazero/experimental"
)

// mmapAllocator backs each linear memory with one virtual reservation of its
// maximum size, committing pages as the memory grows. Growth never copies,
// which avoids the 100–200 ms stalls wazero's default slice growth causes for
// instances holding thousands of orchestrations.
type mmapAllocator struct{ limit uint64 }

type mmapMemory struct {
	buf       []byte // whole reservation
	committed uint64
}

func (a mmapAllocator) Allocate(capacity, max uint64) experimental.LinearMemory {
	if max == 0 {
		max = 1 << 16
	}
	if a.limit > 0 && a.limit < max {
		max = a.limit &^ (pageRound - 1) // growth past the module's limit fails
	}
	b, err := syscall.Mmap(-1, 0, int(max), syscall.PROT_NONE, syscall.MAP_PRIVATE|syscall.MAP_ANON|syscall.MAP_NORESERVE)
	if err != nil {
		return nil
	}
	m := &mmapMemory{buf: b}
	if m.Reallocate(capacity) == nil && capacity > 0 {
		m.Free()
		return nil
	}
	return m
}

const pageRound = 1 << 16

func (m *mmapMemory) Reallocate(size uint64) []byte {
	if size > uint64(len(m.buf)) {
		return nil
	}
	if size > m.committed {
		next := (size + pageRound - 1) &^ (pageRound - 1)
		if next > uint64(len(m.buf)) {
			next = uint64(len(m.buf))
		}
		if err := syscall.Mprotect(m.buf[m.committed:next], syscall.PROT_READ|syscall.PROT_WRITE); err != nil {
			return nil
		}
		m.committed = next
	}
	return m.buf[:size:size]
}

func (m *mmapMemory) Free() {
	if m.buf != nil {
		_ = syscall.Munmap(m.buf)
		m.buf = nil
	}
}

// memoryAllocator returns an allocator whose memories never grow past limit
// bytes (0: the engine's limit).
func memoryAllocator(limit uint64) experimental.MemoryAllocator { return mmapAllocator{limit: limit} }
