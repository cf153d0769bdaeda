package weir_test

import data.weir

test_root_may_do_anything if weir.allow with input as {"action": "s3:DeleteBucket", "principal": {"root": true, "access_key": "R"}, "bucket": {"owner": "A"}}

test_owner_may_write if weir.allow with input as {"action": "s3:PutObject", "principal": {"access_key": "A"}, "bucket": {"owner": "A"}}

test_other_user_is_denied_with_a_reason if {
	not weir.allow with input as {"action": "s3:PutObject", "principal": {"access_key": "B", "name": "bob"}, "bucket": {"owner": "A", "name": "alice-data"}}
	weir.reason == "bob may not s3:PutObject on bucket alice-data: it belongs to another user" with input as {"action": "s3:PutObject", "principal": {"access_key": "B", "name": "bob"}, "bucket": {"owner": "A", "name": "alice-data"}}
}

test_anyone_may_create_a_bucket if weir.allow with input as {"action": "s3:CreateBucket", "principal": {"access_key": "B"}}

test_no_strategy_override if not weir.strategy with input as {"action": "s3:PutObject", "principal": {"root": true}}
