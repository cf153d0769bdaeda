# Shared by the bench scripts (sourced, not run).

# wait_up NAME URL LOG waits up to 30 s for URL to answer, else prints LOG and exits.
wait_up() {
	for _ in $(seq 150); do
		curl -sf -o /dev/null "$2" && return 0
		sleep 0.2
	done
	echo "$1 did not come up ($2); its log:" >&2
	cat "$3" >&2
	exit 1
}
