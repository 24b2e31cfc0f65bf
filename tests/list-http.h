/* The shared HTTP/1.1 layer: request framing, error statuses, the response writer. */
TEST_ENTRY(http_requests_split_at_every_byte)
TEST_ENTRY(http_bad_requests_get_their_status)
TEST_ENTRY(http_response_format_and_echo)
