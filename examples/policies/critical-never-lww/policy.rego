# Never last-writer-wins on buckets tagged critical=true: etag is forced, so every write there
# must carry If-Match, If-None-Match: * or x-weir-if-generation-match (428 otherwise).
package weir

default allow := false

allow if input.principal.root
allow if input.bucket.owner == input.principal.access_key
allow if input.action in {"s3:CreateBucket", "s3:ListAllMyBuckets"}

strategy := "etag" if {
	input.bucket.tags.critical == "true"
	input.bucket.strategy == "last-writer-wins"
}
