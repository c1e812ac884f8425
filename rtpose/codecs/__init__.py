"""Output codecs: turning raw network outputs into boxes and keypoints (numpy references)."""
