"""What a run leaves for people to look at: the topology drawn, reports."""
