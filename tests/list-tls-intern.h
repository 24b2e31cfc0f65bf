/* TLS intern cache copy: registry semantics of both eras, oracles. */
TEST_ENTRY(tls_e3_intern_dedups_and_frees)
TEST_ENTRY(tls_e3_dying_entry_is_replaced_in_place)
TEST_ENTRY(tls_e1_resurrection_is_reported)
TEST_ENTRY(tls_remove_checks_identity)
