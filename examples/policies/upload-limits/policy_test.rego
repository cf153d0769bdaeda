package weir_test

import data.weir

root := {"root": true}

upload(operation, size, headers) := {"action": "s3:PutObject", "operation": operation, "principal": root, "request": {"size": size, "headers": headers}}

test_small_upload if weir.allow with input as upload("PutObject", 10, {})

test_big_upload_denied if {
	not weir.allow with input as upload("PutObject", 2000000, {})
	weir.reason == "objects are limited to 1 MiB" with input as upload("PutObject", 2000000, {})
}

test_executable_denied if not weir.allow with input as upload("PutObject", 10, {"content-type": "application/x-msdownload"})

# A large executable breaks both rules: one reason, not a conflict (which would answer 500).
test_big_executable_one_reason if {
	big_exe := upload("PutObject", 2000000, {"content-type": "application/x-msdownload"})
	not weir.allow with input as big_exe
	weir.reason == "objects are limited to 1 MiB" with input as big_exe
}

# In parts: each part is within the limit, the object they make is not; Complete carries the
# object's size.
test_multipart_limited_at_complete if {
	weir.allow with input as upload("CreateMultipartUpload", 0, {})
	weir.allow with input as upload("UploadPart", 600000, {})
	not weir.allow with input as upload("CompleteMultipartUpload", 1200000, {})
	weir.reason == "objects are limited to 1 MiB" with input as upload("CompleteMultipartUpload", 1200000, {})
	weir.allow with input as upload("CompleteMultipartUpload", 900000, {})
}

test_big_part_denied if not weir.allow with input as upload("UploadPart", 5242880, {})

test_reads_unaffected if weir.allow with input as {"action": "s3:GetObject", "operation": "GetObject", "principal": root, "request": {"size": 0, "headers": {}}}
