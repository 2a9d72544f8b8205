"""Who acts: users, sessions, API tokens, SDK keys, members and their credentials."""
