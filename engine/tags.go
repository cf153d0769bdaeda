package engine

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/weirproject/weir/engine/internal/keys"
)

// SetObjectTags replaces the tags of the key's current version (nil removes them). The data,
// ETag, generation and modification time stay, as S3's PutObjectTagging leaves them: tags
// describe a version, they do not make a new one. A leased object's tags change only for the
// lease holder (guard.LeaseID), under the same rules as a write.
func (e *Engine) SetObjectTags(ctx context.Context, bucket, key string, tags map[string]string, guard Guard) (ObjectInfo, error) {
	if err := e.check(); err != nil {
		return ObjectInfo{}, err
	}
	bl := e.bucketLock(bucket)
	bl.RLock()
	defer bl.RUnlock()
	if err := e.bucketExists(bucket); err != nil {
		return ObjectInfo{}, err
	}
	kl := e.keyLock(bucket, key)
	kl.Lock()
	defer kl.Unlock()
	m, err := e.loadMeta(e.db, bucket, key)
	if err != nil {
		return ObjectInfo{}, err
	}
	if m == nil {
		return ObjectInfo{}, e.missing(bucket, key)
	}
	lease, err := loadLease(e.db, keys.ObjectLease(bucket, key))
	if err != nil {
		return ObjectInfo{}, err
	}
	if err := checkLease(lease, objectLease, e.clock(), guard.LeaseID, guard.Strategy == Leased); err != nil {
		return ObjectInfo{}, err
	}
	if err := ctx.Err(); err != nil {
		return ObjectInfo{}, err
	}
	if len(tags) == 0 {
		tags = nil
	}
	m.Tags = tags
	val, err := json.Marshal(m)
	if err != nil {
		return ObjectInfo{}, err
	}
	if err := e.db.Set(keys.Object(bucket, key), val, pebble.Sync); err != nil {
		return ObjectInfo{}, fmt.Errorf("engine: tags of %s/%s: %w", bucket, key, err)
	}
	return e.withLease(e.db, m.info(bucket, key))
}
