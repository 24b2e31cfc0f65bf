/* Bitcoin Core's HTTPServer copy: the send buffer contract of upstream's unit tests. */
TEST_ENTRY(btc_send_buffer_contract)
TEST_ENTRY(btc_send_buffer_eagain_without_review_fix)
