"""What a LAN client may do: password checks in fair turns, the token-endpoint calls it
may cause, refusals counted."""
