package engine

// THIS FILE IS THE CONTRACT STUB: the engine helper replaces it with the real implementation
// (store.go, bucket.go, object.go, multipart.go, ...) keeping every signature below.

import (
	"context"
	"io"
)

// Engine is an open store. Its methods are safe for concurrent use.
type Engine struct{}

// Open opens (or creates) the store in opts.Dir.
func Open(opts Options) (*Engine, error) { panic("unimplemented") }

// Close flushes and closes the store. Open ObjectReaders must be closed first.
func (e *Engine) Close() error { panic("unimplemented") }

// Compact compacts the whole keyspace, so that deleted data's space is reclaimed now.
func (e *Engine) Compact() error { panic("unimplemented") }

// DiskUsage returns the bytes the store's files occupy on disk.
func (e *Engine) DiskUsage() (int64, error) { panic("unimplemented") }

// CreateBucket creates b. If the name is taken it returns the existing bucket and ErrBucketExists.
// Zero Strategy means LastWriterWins; zero Created means now.
func (e *Engine) CreateBucket(ctx context.Context, b Bucket) (Bucket, error) { panic("unimplemented") }

// GetBucket returns the bucket or ErrNoSuchBucket.
func (e *Engine) GetBucket(name string) (Bucket, error) { panic("unimplemented") }

// ListBuckets returns every bucket in name order.
func (e *Engine) ListBuckets() ([]Bucket, error) { panic("unimplemented") }

// DeleteBucket removes an empty bucket (no objects, no multipart uploads): ErrBucketNotEmpty otherwise.
func (e *Engine) DeleteBucket(ctx context.Context, name string) error { panic("unimplemented") }

// UpdateBucket applies fn to the bucket's record and stores the result atomically (tags, strategy).
func (e *Engine) UpdateBucket(ctx context.Context, name string, fn func(*Bucket) error) (Bucket, error) {
	panic("unimplemented")
}

// PutObject streams body into new chunks, then commits it as the key's new version if
// opts.Guard holds against the current version at commit time.
func (e *Engine) PutObject(ctx context.Context, bucket, key string, body io.Reader, opts PutOptions) (ObjectInfo, error) {
	panic("unimplemented")
}

// StatObject returns the current version's metadata or ErrNoSuchKey.
func (e *Engine) StatObject(bucket, key string) (ObjectInfo, error) { panic("unimplemented") }

// OpenObject opens the current version for reading from a snapshot.
func (e *Engine) OpenObject(bucket, key string) (ObjectReader, error) { panic("unimplemented") }

// DeleteObject removes the key if guard holds. Deleting a missing key succeeds (Existed false)
// unless the guard demands an existing object.
func (e *Engine) DeleteObject(ctx context.Context, bucket, key string, guard Guard) (DeleteResult, error) {
	panic("unimplemented")
}

// ListObjects returns one page of the bucket's keys.
func (e *Engine) ListObjects(bucket string, opts ListOptions) (ListResult, error) {
	panic("unimplemented")
}

// CreateMultipartUpload starts an upload and returns it with its new id.
func (e *Engine) CreateMultipartUpload(ctx context.Context, u Upload) (Upload, error) {
	panic("unimplemented")
}

// UploadPart stores a part; a part number uploaded again is replaced by the last to commit.
// opts.Guard is ignored; opts.ContentMD5, Size and Checksums apply.
func (e *Engine) UploadPart(ctx context.Context, bucket, key, uploadID string, number int, body io.Reader, opts PutOptions) (PartInfo, error) {
	panic("unimplemented")
}

// ListParts lists an upload's parts in number order.
func (e *Engine) ListParts(bucket, key, uploadID string, opts ListPartsOptions) (ListPartsResult, error) {
	panic("unimplemented")
}

// CompleteMultipartUpload commits the named parts as the key's new version if guard holds.
func (e *Engine) CompleteMultipartUpload(ctx context.Context, bucket, key, uploadID string, parts []CompletePart, guard Guard) (ObjectInfo, error) {
	panic("unimplemented")
}

// AbortMultipartUpload removes the upload and its parts' data.
func (e *Engine) AbortMultipartUpload(ctx context.Context, bucket, key, uploadID string) error {
	panic("unimplemented")
}

// ListMultipartUploads lists a bucket's uploads in (key, initiated) order.
func (e *Engine) ListMultipartUploads(bucket string, opts ListUploadsOptions) (ListUploadsResult, error) {
	panic("unimplemented")
}
