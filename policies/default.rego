# weir's built-in policy: root may do anything, other users act on the buckets they own (and
# may create buckets and list their own), and the bucket's configured strategy stands.
package weir

default allow := false

allow if input.principal.root

allow if input.bucket.owner == input.principal.access_key

allow if input.action in {"s3:CreateBucket", "s3:ListAllMyBuckets"}

reason := sprintf("%s may not %s on bucket %s: it belongs to another user", [input.principal.name, input.action, input.bucket.name]) if not allow
