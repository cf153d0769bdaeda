# The strategy comes from the bucket's tag concurrency=etag|lease|last-writer-wins; owners and
# root act as with the built-in policy.
package weir

default allow := false

allow if input.principal.root
allow if input.bucket.owner == input.principal.access_key
allow if input.action in {"s3:CreateBucket", "s3:ListAllMyBuckets"}

strategy := input.bucket.tags.concurrency if input.bucket.tags.concurrency in {"etag", "lease", "last-writer-wins"}
