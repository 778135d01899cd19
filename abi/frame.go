package abi

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
)

// ErrMalformedFrames is returned by DecodeFrames when the input is not a valid
// frame sequence.
var ErrMalformedFrames = errors.New("abi: malformed frames")

// MaxFrameBytes is the largest single frame the decoders accept (64 MiB).
const MaxFrameBytes = 64 << 20

// AppendFrames appends each field to dst as a frame: a 4-byte little-endian
// length followed by the bytes. It returns the extended slice.
func AppendFrames(dst []byte, fields ...[]byte) []byte {
	for _, f := range fields {
		dst = binary.LittleEndian.AppendUint32(dst, uint32(len(f)))
		dst = append(dst, f...)
	}
	return dst
}

// DecodeFrames splits b into exactly n frames. The returned slices are views
// of b, not copies. It fails with ErrMalformedFrames when b holds fewer or
// more than n frames or a length runs past the end.
func DecodeFrames(b []byte, n int) ([][]byte, error) {
	out := make([][]byte, n)
	if err := splitFrames(b, out); err != nil {
		return nil, err
	}
	return out, nil
}

// splitFrames is DecodeFrames into dst, whose length is the number of
// frames: the request decoders split into arrays on the stack, since every
// allocation is expensive in a Wasm guest.
func splitFrames(b []byte, dst [][]byte) error {
	for i := range dst {
		if len(b) < 4 {
			return fmt.Errorf("%w: frame %d: need 4 length bytes, have %d", ErrMalformedFrames, i, len(b))
		}
		l := binary.LittleEndian.Uint32(b)
		b = b[4:]
		if l > MaxFrameBytes || uint64(l) > uint64(len(b)) {
			return fmt.Errorf("%w: frame %d: length %d exceeds remaining %d bytes", ErrMalformedFrames, i, l, len(b))
		}
		dst[i] = b[:l:l]
		b = b[l:]
	}
	if len(b) != 0 {
		return fmt.Errorf("%w: %d trailing bytes after %d frames", ErrMalformedFrames, len(b), len(dst))
	}
	return nil
}

// StartRequest is what the host passes to ExportOrchestratorStart, encoded as
// the frames [InstanceID, Name, Input].
type StartRequest struct {
	InstanceID string
	Name       string
	// Input is JSON text; empty means no input (null).
	Input []byte
}

// Encode returns the frame encoding of r.
func (r StartRequest) Encode() []byte {
	return AppendFrames(make([]byte, 0, 12+len(r.InstanceID)+len(r.Name)+len(r.Input)),
		[]byte(r.InstanceID), []byte(r.Name), r.Input)
}

// DecodeStartRequest decodes the frames written by StartRequest.Encode. Input
// is a view of b.
func DecodeStartRequest(b []byte) (StartRequest, error) {
	var f [3][]byte
	if err := splitFrames(b, f[:]); err != nil {
		return StartRequest{}, fmt.Errorf("decode start request: %w", err)
	}
	return StartRequest{InstanceID: string(f[0]), Name: string(f[1]), Input: f[2]}, nil
}

// ActivityRequest is what the host passes to ExportActivityRun, encoded as the
// frames [InstanceID, Name, Input, TaskID as decimal text].
type ActivityRequest struct {
	InstanceID string
	Name       string
	// Input is JSON text; empty means no input (null).
	Input []byte
	// TaskID is the id of the TaskScheduled event in the orchestration.
	TaskID int32
}

// Encode returns the frame encoding of r.
func (r ActivityRequest) Encode() []byte {
	var idBuf [11]byte
	id := strconv.AppendInt(idBuf[:0], int64(r.TaskID), 10)
	return AppendFrames(make([]byte, 0, 16+len(r.InstanceID)+len(r.Name)+len(r.Input)+len(id)),
		[]byte(r.InstanceID), []byte(r.Name), r.Input, id)
}

// DecodeActivityRequest decodes the frames written by ActivityRequest.Encode.
// Input is a view of b.
func DecodeActivityRequest(b []byte) (ActivityRequest, error) {
	var f [4][]byte
	if err := splitFrames(b, f[:]); err != nil {
		return ActivityRequest{}, fmt.Errorf("decode activity request: %w", err)
	}
	id, ok := parseInt32(f[3])
	if !ok {
		return ActivityRequest{}, fmt.Errorf("decode activity request: %w: task id %q is not a decimal int32", ErrMalformedFrames, f[3])
	}
	return ActivityRequest{InstanceID: string(f[0]), Name: string(f[1]), Input: f[2], TaskID: id}, nil
}

// parseInt32 parses the canonical decimal form of an int32, the one
// strconv.FormatInt writes: an optional '-', no '+', no leading zeros.
func parseInt32(b []byte) (int32, bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 10 || (b[0] == '0' && (len(b) > 1 || neg)) {
		return 0, false
	}
	var v int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	if neg {
		v = -v
	}
	if v < math.MinInt32 || v > math.MaxInt32 {
		return 0, false
	}
	return int32(v), true
}
