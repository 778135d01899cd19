package abi

import (
	"encoding/binary"
	"errors"
	"fmt"
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
	out := make([][]byte, 0, n)
	for i := 0; i < n; i++ {
		if len(b) < 4 {
			return nil, fmt.Errorf("%w: frame %d: need 4 length bytes, have %d", ErrMalformedFrames, i, len(b))
		}
		l := binary.LittleEndian.Uint32(b)
		b = b[4:]
		if l > MaxFrameBytes || uint64(l) > uint64(len(b)) {
			return nil, fmt.Errorf("%w: frame %d: length %d exceeds remaining %d bytes", ErrMalformedFrames, i, l, len(b))
		}
		out = append(out, b[:l:l])
		b = b[l:]
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes after %d frames", ErrMalformedFrames, len(b), n)
	}
	return out, nil
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
	f, err := DecodeFrames(b, 3)
	if err != nil {
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
	id := fmt.Sprint(r.TaskID)
	return AppendFrames(make([]byte, 0, 16+len(r.InstanceID)+len(r.Name)+len(r.Input)+len(id)),
		[]byte(r.InstanceID), []byte(r.Name), r.Input, []byte(id))
}

// DecodeActivityRequest decodes the frames written by ActivityRequest.Encode.
// Input is a view of b.
func DecodeActivityRequest(b []byte) (ActivityRequest, error) {
	f, err := DecodeFrames(b, 4)
	if err != nil {
		return ActivityRequest{}, fmt.Errorf("decode activity request: %w", err)
	}
	var id int32
	if _, err := fmt.Sscan(string(f[3]), &id); err != nil || fmt.Sprint(id) != string(f[3]) {
		return ActivityRequest{}, fmt.Errorf("decode activity request: %w: task id %q is not a decimal int32", ErrMalformedFrames, f[3])
	}
	return ActivityRequest{InstanceID: string(f[0]), Name: string(f[1]), Input: f[2], TaskID: id}, nil
}
