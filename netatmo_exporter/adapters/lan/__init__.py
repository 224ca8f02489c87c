"""What a LAN client may do: password checks in fair turns, token-endpoint calls it may cause, refusals counted."""
