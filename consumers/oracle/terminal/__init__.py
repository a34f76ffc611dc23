"""``stream-al oracle label``: answer queries one card at a time in a terminal."""
