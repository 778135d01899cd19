package flows

import (
	"errors"
	"fmt"
	"hash/fnv"

	durable "github.com/durablewasm/durablewasm/guest-sdk"
)

// BackupSiteContent (E2_BackupSiteContent) is the fan-out/fan-in sample: it
// lists the files under the input directory with E2_GetFileList, copies them
// all in parallel with E2_CopyFileToBlob, and returns the total number of
// bytes copied.
func BackupSiteContent(ctx *durable.OrchestrationContext) (any, error) {
	var root string
	if err := ctx.GetInput(&root); err != nil {
		return nil, err
	}
	if root == "" {
		return nil, errors.New("a directory path is required as input")
	}
	var files []string
	if err := ctx.CallActivity("E2_GetFileList", root).Await(&files); err != nil {
		return nil, err
	}
	tasks := make([]durable.Task, len(files))
	for i, f := range files {
		tasks[i] = ctx.CallActivity("E2_CopyFileToBlob", f)
	}
	var sizes []int64
	if err := ctx.WhenAll(tasks...).Await(&sizes); err != nil {
		return nil, err
	}
	var total int64
	for _, s := range sizes {
		total += s
	}
	return total, nil
}

func hash32(s string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(s))
	return h.Sum32()
}

// FileList returns the synthetic file list E2_GetFileList reports for dir:
// 3 to 7 files, "<dir>/file-NN.dat", the count derived from a hash of dir.
func FileList(dir string) []string {
	n := 3 + int(hash32(dir)%5)
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s/file-%02d.dat", dir, i)
	}
	return out
}

// FileSize returns the synthetic size E2_CopyFileToBlob reports for path:
// 1000 to 100999 bytes, derived from a hash of path.
func FileSize(path string) int64 { return 1000 + int64(hash32(path)%100000) }

// GetFileList (activity E2_GetFileList) returns FileList of its input
// directory. The samples have no file system; the list is synthetic and
// deterministic.
func GetFileList(ctx *durable.ActivityContext) (any, error) {
	var dir string
	if err := ctx.GetInput(&dir); err != nil {
		return nil, err
	}
	ctx.Logger().Info("listing files", "dir", dir)
	return FileList(dir), nil
}

// CopyFileToBlob (activity E2_CopyFileToBlob) "copies" its input file and
// returns its size in bytes, FileSize(path).
func CopyFileToBlob(ctx *durable.ActivityContext) (any, error) {
	var path string
	if err := ctx.GetInput(&path); err != nil {
		return nil, err
	}
	return FileSize(path), nil
}
