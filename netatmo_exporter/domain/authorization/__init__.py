"""The authorization: tokens, their file's one writing rule, renewal, scopes."""
