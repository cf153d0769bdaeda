package weir_test

import data.weir

test_exclusive_bucket if weir.read_requires_lease with input as {"bucket": {"tags": {"exclusive": "true"}}}

test_other_bucket if not weir.read_requires_lease with input as {"bucket": {"tags": {}}}
