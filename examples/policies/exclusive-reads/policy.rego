# Exclusive reads on buckets tagged exclusive=true: GET and HEAD must carry the object's active
# lease id, so only the lease holder reads.
package weir

default allow := false

allow if input.principal.root
allow if input.bucket.owner == input.principal.access_key
allow if input.action in {"s3:CreateBucket", "s3:ListAllMyBuckets"}

read_requires_lease if input.bucket.tags.exclusive == "true"
