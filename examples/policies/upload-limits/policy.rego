# Upload limits: no object over 1 MiB, whether it is uploaded in one PUT or in parts, and no
# executables. Every upload is s3:PutObject, and input.request.size is the size it writes: a
# PUT's body, one part (UploadPart), or the whole object at CompleteMultipartUpload. So one
# rule limits both ways of uploading; input.operation tells them apart where that matters.
package weir

default allow := false

owner_or_root if input.principal.root
owner_or_root if input.bucket.owner == input.principal.access_key
owner_or_root if input.action in {"s3:CreateBucket", "s3:ListAllMyBuckets"}

too_big if {
	input.action == "s3:PutObject"
	input.request.size > 1048576
}

forbidden_type if {
	input.action == "s3:PutObject"
	input.request.headers["content-type"] in {"application/x-msdownload", "application/x-executable"}
}

allow if {
	owner_or_root
	not too_big
	not forbidden_type
}

# One reason rule with an else chain: two separate rules that are both true (a large
# executable) would be a conflict, and the request would fail with 500.
reason := "objects are limited to 1 MiB" if {
	too_big
} else := "executables may not be stored here" if {
	forbidden_type
}
