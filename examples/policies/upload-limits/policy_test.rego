package weir_test

import data.weir

root := {"root": true}

test_small_upload if weir.allow with input as {"action": "s3:PutObject", "principal": root, "request": {"size": 10, "headers": {}}}

test_big_upload_denied if {
	not weir.allow with input as {"action": "s3:PutObject", "principal": root, "request": {"size": 2000000, "headers": {}}}
	weir.reason == "objects are limited to 1 MiB per PUT" with input as {"action": "s3:PutObject", "principal": root, "request": {"size": 2000000, "headers": {}}}
}

test_executable_denied if not weir.allow with input as {"action": "s3:PutObject", "principal": root, "request": {"size": 10, "headers": {"content-type": "application/x-msdownload"}}}

test_reads_unaffected if weir.allow with input as {"action": "s3:GetObject", "principal": root, "request": {"size": 0, "headers": {}}}

# A large executable breaks both rules: one reason, not a conflict (which would answer 500).
test_big_executable_one_reason if {
	big_exe := {"action": "s3:PutObject", "principal": root, "request": {"size": 2000000, "headers": {"content-type": "application/x-msdownload"}}}
	not weir.allow with input as big_exe
	weir.reason == "objects are limited to 1 MiB per PUT" with input as big_exe
}
