package weir_test

import data.weir

test_tag_sets_strategy if weir.strategy == "lease" with input as {"principal": {"root": true}, "bucket": {"tags": {"concurrency": "lease"}}}

test_unknown_tag_is_ignored if not weir.strategy with input as {"principal": {"root": true}, "bucket": {"tags": {"concurrency": "pessimistic"}}}

test_no_tag_no_override if not weir.strategy with input as {"principal": {"root": true}, "bucket": {"tags": {}}}
