"""What a model is measured against: the pitch n-gram floor and the real-vs-real ceiling."""
