"""The leader-electing scheduler (issue 4): election, live schedule set, firing, metrics."""
